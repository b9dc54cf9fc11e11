"""Memory of created (not started) containers, N alive at once (issue 21).

For each runtime (pyrunc, runc, crun), creates --count containers (default
30) running `sleep` from one busybox bundle (../shared/tools/mkbundle.sh),
`create` only, then, with all of them alive, measures per container and
reports the medians:

  charge      the container's memory cgroup: memory.usage_in_bytes, and
              memory.stat rss + cache (this cgroup's own pages, exact).
              cgroupsPath puts each container under a parent made here
              (/pyrunc-bench-mem-PID/RUNTIME/ID, inside the cgroup sandbox).
  caller      the charge left in a memory cgroup made for the `create` call
              alone (the caller's cgroup: the bench moves a shell there, which
              execs the create).  cgroup v1 charges a page to the cgroup of
              the task that first faults it and never moves it (no
              move_charge_at_immigrate): what the init touched before it joined
              its cgroup stays charged here for as long as the init holds it.
              charge + caller is the whole charge the container costs.
  USS, PSS    of the waiting init, from /proc/PID/smaps_rollup (USS =
              Private_Clean + Private_Dirty).  With N inits alive, the
              runtime's own file pages (interpreter, Go binary) are shared
              among them and leave the USS.
  create peak the `create` command's peak RSS: ru_maxrss from wait4, taken
              by GNU time (/usr/bin/time -f %M), which forks from its own
              small process; a child spawned by this Python process would
              inherit this process's high-water mark.  ru_maxrss covers the
              command and the children it reaped (the stages).

Everything created is deleted afterwards (delete --force by id, the cgroup
dirs removed), also on failure, Ctrl-C or SIGTERM.  Root, inside the cgroup
sandbox (`make bench-memory` does both); cgroup v1 memory controller.

usage: memory.py [--count N] [--runtime NAME=PATH ...] [--json FILE]
Writes bench/results/memory.json (every sample; or --json FILE) and memory.md.
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
MKBUNDLE = os.path.join(os.path.dirname(REPO), "shared", "tools", "mkbundle.sh")
MEMCG = "/sys/fs/cgroup/memory"
GNU_TIME = "/usr/bin/time"
DEFAULT_RUNTIMES = [
    ("pyrunc", os.path.join(REPO, ".venv", "bin", "pyrunc")),
    ("runc", "/usr/sbin/runc"),
    ("crun", "/usr/bin/crun"),
]


def median(vals):
    vals = sorted(v for v in vals if v is not None)
    if not vals:
        return None
    mid = len(vals) // 2
    return vals[mid] if len(vals) % 2 else (vals[mid - 1] + vals[mid]) / 2


def smaps_kb(pid):
    """(RSS, PSS, USS) of a live process in KiB."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                out[key] = int(rest.split()[0])
    return out["Rss"], out["Pss"], out["Private_Clean"] + out["Private_Dirty"]


def memcg_kb(path):
    """(usage_in_bytes, stat rss + cache) of a v1 memory cgroup, KiB."""
    with open(os.path.join(path, "memory.usage_in_bytes")) as f:
        usage = int(f.read()) // 1024
    own = {}
    with open(os.path.join(path, "memory.stat")) as f:
        for line in f:
            k, v = line.split()
            own[k] = int(v)
    return usage, (own["rss"] + own["cache"]) // 1024


def hierarchies():
    """The cgroup v1 hierarchies mounted under /sys/fs/cgroup (inside the sandbox)."""
    out = []
    for name in sorted(os.listdir("/sys/fs/cgroup")):
        p = os.path.join("/sys/fs/cgroup", name)
        if (
            os.path.isdir(p)
            and not os.path.islink(p)
            and name != "unified"
            and os.path.exists(os.path.join(p, "cgroup.procs"))
        ):
            out.append(p)
    return out


def remove_tree(rel):
    """rmdir <hierarchy>/rel and everything below it, deepest first, in
    every hierarchy (the runtimes make the cgroupsPath in all of them)."""
    for h in hierarchies():
        top = os.path.join(h, rel.strip("/"))
        if not os.path.isdir(top):
            continue
        for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            try:
                os.rmdir(dirpath)
            except OSError as e:
                print(f"memory.py: cannot remove {dirpath}: {e.strerror}", file=sys.stderr)


class Bench:
    def __init__(self, work, count):
        self.work = work
        self.count = count
        self.parent = f"pyrunc-bench-mem-{os.getpid()}"  # cgroup parent, relative to each hierarchy
        os.makedirs(os.path.join(MEMCG, self.parent))
        base = os.path.join(work, "base")
        subprocess.run([MKBUNDLE, base, "sleep", "100000"], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(base, "config.json")) as f:
            self.cfg = json.load(f)
        self.cfg["root"] = {"path": os.path.join(base, "rootfs"), "readonly": True}
        self.created = []  # (runtime path, root, id) still to delete

    def bundle(self, rt, cid):
        d = os.path.join(self.work, "bundles", rt, cid)
        os.makedirs(d)
        cfg = dict(self.cfg, linux=dict(self.cfg["linux"], cgroupsPath=f"/{self.parent}/{rt}/{cid}"))
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f)
        return d

    def create(self, name, path, root, cid):
        """One `create`, run by a shell that first moved itself into a memory
        cgroup of its own (the caller's); returns (peak RSS KiB, ms)."""
        bundle = self.bundle(name, cid)
        caller = os.path.join(MEMCG, self.parent, name + "-callers", cid)
        os.makedirs(caller)
        pidfile = os.path.join(self.work, f"{name}-{cid}.pid")
        peak = os.path.join(self.work, f"{name}-{cid}.peak")
        argv = [
            "/bin/sh",
            "-c",
            'echo $$ > "$1/cgroup.procs" && shift && exec "$@"',
            "sh",
            caller,
            GNU_TIME,
            "-o",
            peak,
            "-f",
            "%M",
            path,
            "--root",
            root,
            "create",
            "--bundle",
            bundle,
            "--pid-file",
            pidfile,
            cid,
        ]
        with tempfile.TemporaryFile() as err:  # a file, never a pipe: the init inherits stderr
            t0 = time.perf_counter()
            rc = subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            ms = (time.perf_counter() - t0) * 1e3
            self.created.append((path, root, cid))
            if rc != 0:
                err.seek(0)
                raise RuntimeError(f"{name} create {cid}: exit {rc}: {err.read().decode(errors='replace')[-400:]}")
        with open(peak) as f:
            kb = int(f.read().split()[-1])
        os.unlink(peak)  # its page cache was charged to the caller's cgroup
        with open(pidfile) as f:
            pid = int(f.read())
        os.unlink(pidfile)
        return pid, kb, ms

    def measure(self, name, path):
        root = os.path.join(self.work, "state", name)
        # one create + delete first: the first create after the sandbox starts
        # binds pyrunc's interpreter copy read-only (and re-executes once), and
        # reads the files every later create finds in the page cache
        pid, _, _ = self.create(name, path, root, "warmup")
        self.delete(path, root, "warmup")
        rows = []
        for i in range(self.count):
            cid = f"m{i}"
            pid, peak, ms = self.create(name, path, root, cid)
            rows.append({"id": cid, "pid": pid, "create_peak_kb": peak, "create_ms": ms})
        time.sleep(1)  # let the last create's exit settle (per-cpu charge batches)
        for r in rows:
            cg = os.path.join(MEMCG, self.parent, name, r["id"])
            r["cg_usage_kb"], r["cg_stat_kb"] = memcg_kb(cg)
            r["caller_usage_kb"], r["caller_stat_kb"] = memcg_kb(
                os.path.join(MEMCG, self.parent, name + "-callers", r["id"])
            )
            r["rss_kb"], r["pss_kb"], r["uss_kb"] = smaps_kb(r["pid"])
            r["total_stat_kb"] = r["cg_stat_kb"] + r["caller_stat_kb"]
        for cid in [r["id"] for r in rows]:
            self.delete(path, root, cid)
        return rows

    def delete(self, path, root, cid):
        subprocess.run(
            [path, "--root", root, "delete", "--force", cid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.created = [c for c in self.created if c[2] != cid or c[0] != path]

    def cleanup(self):
        for path, root, cid in list(self.created):
            self.delete(path, root, cid)
        remove_tree(self.parent)


FIELDS = [
    ("cg_stat_kb", "memcg charge: stat rss+cache"),
    ("cg_usage_kb", "memcg charge: usage_in_bytes"),
    ("caller_stat_kb", "left in the caller's memcg"),
    ("total_stat_kb", "charge + caller"),
    ("uss_kb", "init USS"),
    ("pss_kb", "init PSS"),
    ("rss_kb", "init RSS"),
    ("create_peak_kb", "create peak RSS"),
    ("create_ms", "create wall (ms, noisy)"),
]


def table(results, count):
    names = list(results)
    out = [
        f"Medians over {count} created containers alive at once (KiB unless noted); ratio = pyrunc / runc.",
        "",
        "| metric | " + " | ".join(names) + (" | pyrunc / runc |" if "pyrunc" in names and "runc" in names else " |"),
        "|---|" + "---:|" * len(names) + ("---:|" if "pyrunc" in names and "runc" in names else ""),
    ]
    for key, label in FIELDS:
        meds = {n: median([r[key] for r in results[n]]) for n in names}
        cells = [f"{meds[n]:.0f}" if meds[n] is not None else "-" for n in names]
        if "pyrunc" in meds and "runc" in meds:
            ratio = meds["pyrunc"] / meds["runc"] if meds["runc"] else float("nan")
            cells.append(f"{ratio:.2f}x")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def main(argv):
    count, runtimes, json_out = 30, [], None
    while argv:
        a = argv.pop(0)
        if a == "--count":
            count = int(argv.pop(0))
        elif a == "--runtime":
            name, _, path = argv.pop(0).partition("=")
            runtimes.append((name, path))
        elif a == "--json":
            json_out = argv.pop(0)
        else:
            raise SystemExit(__doc__)
    runtimes = runtimes or [(n, p) for n, p in DEFAULT_RUNTIMES if os.access(p, os.X_OK)]
    if not os.path.exists(os.path.join(MEMCG, "memory.stat")):
        raise SystemExit("memory.py: needs the cgroup v1 memory controller at " + MEMCG)

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(signum)

    signal.signal(signal.SIGTERM, interrupted)  # the finally clause deletes what exists
    work = tempfile.mkdtemp(prefix="pyrunc-mem-")
    bench = None
    results = {}
    try:
        bench = Bench(work, count)
        for name, path in runtimes:
            results[name] = bench.measure(name, path)
            print(f"{name}: done", file=sys.stderr, flush=True)
    finally:
        if bench is not None:
            bench.cleanup()
        else:
            remove_tree(f"pyrunc-bench-mem-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
    text = table(results, count)
    out_dir = os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(json_out or os.path.join(out_dir, "memory.json"), "w") as f:
        json.dump({"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "count": count, "results": results}, f, indent=1)
    with open(os.path.join(out_dir, "memory.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
