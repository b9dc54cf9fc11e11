"""Scale: up to 1,000 containers created and not started, runtimes side by side.

The runtimes (default pyrunc and runc) grow together: at each count of
--counts, every runtime has that many containers in status created (one
busybox bundle per container, one shared rootfs, `sleep` as the process),
and then, the runtimes alternating call by call (the machine is shared:
noise hits them alike), the bench times
  state      `state ID` of the container created last (--calls calls)
  list       `list` (--list-calls calls)
  list json  `list --format json` (--list-calls calls)
and measures memory per container:
  charge     (memcg charge of the runtime's containers' parent cgroup + what
             is left in the memcg the runtime's `create` calls ran in) / n:
             everything the kernel charges for a created container, wherever
             it landed (cgroup v1 never moves a charge: pages an init touched
             before it joined its cgroup stay with the caller's cgroup)
  USS, PSS   mean over the waiting inits (/proc/PID/smaps_rollup)
Before it starts, the bench checks MemAvailable against the largest count
(--mem-per-container MiB per container and runtime, default 8) and stops
at the largest count that fits with 4 GiB to spare, saying so.

Everything is deleted afterwards (delete --force by id, then the cgroup
dirs), also on failure, Ctrl-C or SIGTERM.  Root, inside the cgroup sandbox
(`make bench-scale` does both).

usage: scale.py [--runtime NAME=PATH ...] [--counts 10,100,250,500,1000]
                [--calls 15] [--list-calls 5] [--mem-per-container MIB]
Writes bench/results/scale.json and scale.md (a markdown table).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from memory import MEMCG, MKBUNDLE, median, memcg_kb, remove_tree, smaps_kb  # noqa: E402


def spawn_ms(argv, out=None, cpu=False):
    """Wall time of one CLI call in ms (with cpu=True: (wall, CPU) ms, the
    CPU time user + system of the command and the children it reaped, less
    sensitive to a busy machine than the wall time); stdout to /dev/null (or
    `out`, a file), stderr to a file (never a pipe: a created init inherits it)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter_ns()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out or subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        ms = (time.perf_counter_ns() - t0) / 1e6
        proc.returncode = rc = os.waitstatus_to_exitcode(status)
        if rc != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(argv)}: exit {rc}: {err.read().decode(errors='replace')[-300:]}")
    return (ms, (usage.ru_utime + usage.ru_stime) * 1e3) if cpu else ms


def mem_available_mib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return 0


class Runtime:
    def __init__(self, name, path, work, parent):
        self.name, self.path = name, path
        self.root = os.path.join(work, "state", name)
        self.cg_rel = f"{parent}/{name}"  # the containers' cgroups: /PARENT/NAME/ID
        self.caller = os.path.join(MEMCG, parent, name + "-caller")  # the create calls' memcg
        os.makedirs(self.caller)
        self.ids, self.pids = [], []
        self.serial = 0

    def create(self, work, cfg):
        cid = f"s{self.serial}"
        self.serial += 1
        d = os.path.join(work, "bundles", self.name, cid)
        os.makedirs(d)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(dict(cfg, linux=dict(cfg["linux"], cgroupsPath=f"/{self.cg_rel}/{cid}")), f)
        pidfile = os.path.join(d, "pid")
        self.ids.append(cid)  # before: a failed create may have left state behind
        ms = spawn_ms(
            [
                "/bin/sh",
                "-c",
                'echo $$ > "$1/cgroup.procs" && shift && exec "$@"',
                "sh",
                self.caller,
                self.path,
                "--root",
                self.root,
                "create",
                "--bundle",
                d,
                "--pid-file",
                pidfile,
                cid,
            ]
        )
        with open(pidfile) as f:
            self.pids.append(int(f.read()))
        return ms

    def memory(self):
        n = len(self.ids)
        _, own = memcg_kb(os.path.join(MEMCG, self.cg_rel))
        with open(os.path.join(MEMCG, self.cg_rel, "memory.stat")) as f:
            total = {k: int(v) for k, v in (line.split() for line in f)}
        charged = (total["total_rss"] + total["total_cache"]) // 1024  # the containers' cgroups
        _, caller = memcg_kb(self.caller)
        mems = [smaps_kb(p) for p in self.pids]
        return {
            "charge_kb": (charged + caller) / n,
            "container_cg_kb": charged / n,
            "caller_cg_kb": caller / n,
            "rss_kb": sum(m[0] for m in mems) / n,
            "pss_kb": sum(m[1] for m in mems) / n,
            "uss_kb": sum(m[2] for m in mems) / n,
        }

    def delete_all(self):
        for cid in self.ids:
            subprocess.run(
                [self.path, "--root", self.root, "delete", "--force", cid],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        self.ids, self.pids = [], []


def run(runtimes, counts, calls, list_calls, work, cfg):
    rows = []
    create_ms = {rt.name: [] for rt in runtimes}
    for step, n in enumerate(counts):
        order = runtimes if step % 2 == 0 else runtimes[::-1]
        while len(order[0].ids) < n:  # grow the runtimes together
            for rt in order:
                create_ms[rt.name].append(rt.create(work, cfg))
        time.sleep(1)
        timings = {rt.name: {"state": [], "list": [], "list_json": []} for rt in runtimes}
        for i in range(calls):
            for rt in order if i % 2 == 0 else order[::-1]:
                timings[rt.name]["state"].append(spawn_ms([rt.path, "--root", rt.root, "state", rt.ids[-1]], cpu=True))
        with tempfile.TemporaryFile() as out:
            for i in range(list_calls):
                for rt in order if i % 2 == 0 else order[::-1]:
                    timings[rt.name]["list"].append(spawn_ms([rt.path, "--root", rt.root, "list"], out, cpu=True))
                    timings[rt.name]["list_json"].append(
                        spawn_ms([rt.path, "--root", rt.root, "list", "--format", "json"], out, cpu=True)
                    )
        for rt in runtimes:
            t = timings[rt.name]
            row = {
                "runtime": rt.name,
                "containers": n,
                **{f"{k}_ms": median([w for w, _ in v]) for k, v in t.items()},
                **{f"{k}_cpu_ms": median([c for _, c in v]) for k, v in t.items()},
                "create_ms": median(create_ms[rt.name][-50:]),
                **rt.memory(),
            }
            rows.append(row)
            print(
                f"{rt.name:7} n={n:4}  state {row['state_ms']:6.2f}  list {row['list_ms']:7.2f}  "
                f"list json {row['list_json_ms']:7.2f} ms (CPU {row['state_cpu_ms']:.1f}, "
                f"{row['list_cpu_ms']:.1f}, {row['list_json_cpu_ms']:.1f})  "
                f"per container: charge {row['charge_kb']:5.0f} "
                f"USS {row['uss_kb']:5.0f} PSS {row['pss_kb']:5.0f} KiB",
                file=sys.stderr,
                flush=True,
            )
    return rows


def table(rows, note):
    out = [
        note + ". Times: medians, wall (CPU) ms.",
        "",
        "| runtime | containers | state | list | list CPU per container "
        "| list json | create | charge/container (KiB) | USS/init (KiB) | PSS/init (KiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["runtime"] != "pyrunc", r["runtime"], r["containers"])):
        out.append(
            f"| {r['runtime']} | {r['containers']} | {r['state_ms']:.1f} ({r['state_cpu_ms']:.1f}) "
            f"| {r['list_ms']:.1f} ({r['list_cpu_ms']:.1f}) | {r['list_cpu_ms'] / r['containers']:.3f} "
            f"| {r['list_json_ms']:.1f} ({r['list_json_cpu_ms']:.1f}) "
            f"| {r['create_ms']:.0f} | {r['charge_kb']:.0f} | {r['uss_kb']:.0f} | {r['pss_kb']:.0f} |"
        )
    return "\n".join(out) + "\n"


def main(argv):
    runtimes, counts, calls, list_calls, per_ctr = [], [10, 100, 250, 500, 1000], 15, 5, 8
    while argv:
        a = argv.pop(0)
        if a == "--runtime":
            name, _, path = argv.pop(0).partition("=")
            runtimes.append((name, path))
        elif a == "--counts":
            counts = sorted(int(x) for x in argv.pop(0).split(","))
        elif a == "--calls":
            calls = int(argv.pop(0))
        elif a == "--list-calls":
            list_calls = int(argv.pop(0))
        elif a == "--mem-per-container":
            per_ctr = float(argv.pop(0))
        else:
            raise SystemExit(__doc__)
    if not runtimes:
        runtimes = [("pyrunc", os.path.join(REPO, ".venv", "bin", "pyrunc")), ("runc", "/usr/sbin/runc")]
    avail = mem_available_mib()
    fits = int((avail - 4096) / (per_ctr * len(runtimes)))
    note = (
        f"MemAvailable at start: {avail} MiB; budget {per_ctr:g} MiB per container and runtime "
        f"leaves room for {fits} containers each"
    )
    if counts[-1] > fits:
        counts = [c for c in counts if c <= fits] + ([fits] if fits > 0 else [])
        note += f": counts cut to {counts}"
    print(note, file=sys.stderr, flush=True)

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(signum)

    signal.signal(signal.SIGTERM, interrupted)  # the finally clause deletes what exists
    work = tempfile.mkdtemp(prefix="pyrunc-scale-")
    parent = f"pyrunc-bench-scale-{os.getpid()}"
    rts, rows = [], []
    try:
        os.makedirs(os.path.join(MEMCG, parent))
        base = os.path.join(work, "base")
        subprocess.run([MKBUNDLE, base, "sleep", "100000"], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(base, "config.json")) as f:
            cfg = json.load(f)
        cfg["root"] = {"path": os.path.join(base, "rootfs"), "readonly": True}
        for name, path in runtimes:
            rts.append(Runtime(name, path, work, parent))
        for rt in rts:  # warm-up: pyrunc's first create binds its interpreter copy read-only
            rt.create(work, cfg)
            rt.delete_all()
        rows = run(rts, counts, calls, list_calls, work, cfg)
    finally:
        for rt in rts:
            rt.delete_all()
        remove_tree(parent)
        shutil.rmtree(work, ignore_errors=True)
    results = os.path.join(HERE, "results")
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "scale.json"), "w") as f:
        json.dump({"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "note": note, "rows": rows}, f, indent=1)
    text = table(rows, note)
    with open(os.path.join(results, "scale.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
