"""A small side-by-side harness, used by bench/run.py when the shared one
(../shared/bench/lifecycle.py) is absent.  Standard library only, root,
inside the cgroup sandbox.

Measures, per runtime and round (the runtime order rotating per round):
  run                wall time of `run` of a container running `true`
  lifecycle.*        create / start / wait (until the init exits) / delete, and the sum
  state              `state` of a created container (5 calls per round)
(no memory metrics: ru_maxrss of a child spawned by a Python process reports
the parent's high-water mark; the shared harness reads taskstats) and writes the same table and --json layout as the shared harness, so
bench/report.py renders either.

usage: mini.py --runtime NAME=PATH [...] [--rounds N] [--json FILE]
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MKBUNDLE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "shared", "tools", "mkbundle.sh")
METRICS = (
    ("run", "run `true`", "ms"),
    ("lifecycle.create", "lifecycle: create", "ms"),
    ("lifecycle.start", "lifecycle: start", "ms"),
    ("lifecycle.wait", "lifecycle: wait exit", "ms"),
    ("lifecycle.delete", "lifecycle: delete", "ms"),
    ("lifecycle.total", "lifecycle: sum", "ms"),
    ("state", "state (created)", "ms"),
)


class Spawner:
    def __init__(self, work):
        self.null = os.open(os.devnull, os.O_RDWR)
        self.err = os.open(os.path.join(work, "stderr"), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)

    def call(self, argv):
        """Wall time in ms; raises with the runtime's stderr on failure."""
        os.ftruncate(self.err, 0)
        fa = [
            (os.POSIX_SPAWN_DUP2, self.null, 0),
            (os.POSIX_SPAWN_DUP2, self.null, 1),
            (os.POSIX_SPAWN_DUP2, self.err, 2),
        ]
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=fa)
        _, status = os.waitpid(pid, 0)
        ms = (time.perf_counter_ns() - t0) / 1e6
        if status != 0:
            os.lseek(self.err, 0, 0)
            raise RuntimeError(f"{' '.join(argv[-3:])}: {os.read(self.err, 600).decode(errors='replace')}")
        return ms


def wait_gone(pid, timeout=10):
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        import select

        p = select.poll()
        p.register(fd, select.POLLIN)
        p.poll(timeout * 1000)
    finally:
        os.close(fd)


def bundle(work, base_cfg, cid, args):
    d = os.path.join(work, "b", cid)
    os.makedirs(d)
    cfg = dict(
        base_cfg,
        process=dict(base_cfg["process"], args=args),
        linux=dict(base_cfg["linux"], cgroupsPath=f"bench/{cid}"),
    )
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    return d


def main(argv):
    runtimes, rounds, json_path = [], 20, None
    while argv:
        a = argv.pop(0)
        if a == "--runtime":
            name, _, path = argv.pop(0).partition("=")
            runtimes.append((name, path))
        elif a == "--rounds":
            rounds = int(argv.pop(0))
        elif a == "--json":
            json_path = argv.pop(0)
        else:
            raise SystemExit(__doc__)
    work = tempfile.mkdtemp(prefix="pyrunc-mini-")
    samples = {n: {k: [] for k, _, _ in METRICS} for n, _ in runtimes}
    fails = {n: 0 for n, _ in runtimes}
    sp = Spawner(work)
    live = []
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t_all = time.monotonic()
    try:
        base = os.path.join(work, "base")
        subprocess.run([MKBUNDLE, base, "true"], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(base, "config.json")) as f:
            base_cfg = json.load(f)
        base_cfg["root"] = {"path": os.path.join(base, "rootfs"), "readonly": True}
        for rnd in range(rounds):
            order = runtimes[rnd % len(runtimes) :] + runtimes[: rnd % len(runtimes)]
            for name, path in order:
                root = os.path.join(work, "state", name)
                cmd = lambda *a: [path, "--root", root, *a]  # noqa: E731
                s = samples[name]
                try:
                    cid = f"{name}-r{rnd}"
                    s["run"].append(sp.call(cmd("run", "--bundle", bundle(work, base_cfg, cid, ["true"]), cid)))
                    cid = f"{name}-l{rnd}"
                    pidfile = os.path.join(work, cid + ".pid")
                    live.append((cmd, cid))
                    c_ms = sp.call(
                        cmd("create", "--bundle", bundle(work, base_cfg, cid, ["true"]), "--pid-file", pidfile, cid)
                    )
                    for _ in range(5):
                        s["state"].append(sp.call(cmd("state", cid)))
                    with open(pidfile) as f:
                        pid = int(f.read())
                    st_ms = sp.call(cmd("start", cid))
                    t0 = time.perf_counter_ns()
                    wait_gone(pid)
                    w_ms = (time.perf_counter_ns() - t0) / 1e6
                    d_ms = sp.call(cmd("delete", cid))
                    live.remove((cmd, cid))
                    for k, v in (
                        ("create", c_ms),
                        ("start", st_ms),
                        ("wait", w_ms),
                        ("delete", d_ms),
                        ("total", c_ms + st_ms + w_ms + d_ms),
                    ):
                        s["lifecycle." + k].append(v)
                except (RuntimeError, OSError) as e:
                    fails[name] += 1
                    print(f"[{name}] round {rnd + 1}: {e}", file=sys.stderr)
            print(f"round {rnd + 1}/{rounds}", file=sys.stderr, flush=True)
    finally:
        for cmd, cid in live:
            subprocess.run(cmd("delete", "--force", cid), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)
    ref = runtimes[0][0]
    summary = {}
    for key, _, unit in METRICS:
        for name, _ in runtimes:
            vals = sorted(samples[name][key])
            if vals:
                summary.setdefault(key, {})[name] = {
                    "unit": unit,
                    "n": len(vals),
                    "fail": 0,
                    "median": vals[len(vals) // 2],
                    "min": vals[0],
                    "p90": vals[int(len(vals) * 0.9)],
                }
        rmed = summary.get(key, {}).get(ref, {}).get("median")
        for s in summary.get(key, {}).values():
            s["x_ref"] = s["median"] / rmed if rmed else None
    for name in fails:
        if fails[name] and "run" in summary and name in summary["run"]:
            summary["run"][name]["fail"] = fails[name]
    out = [
        "# " + " ".join(["bench/mini.py"] + sys.argv[1:]),
        f"# {os.cpu_count()} cpus, load {os.getloadavg()[0]:.2f}, {rounds} rounds in {time.monotonic() - t_all:.1f} s",
        f"{'metric':<27} {'unit':<4} {'runtime':<8} {'n':>4} {'median':>9} {'min':>9} {'p90':>9} {'x ' + ref:>8}",
    ]
    for key, label, unit in METRICS:
        first = True
        for name, _ in runtimes:
            s = summary.get(key, {}).get(name)
            if s:
                out.append(
                    f"{label if first else '':<27} {unit if first else '':<4} {name:<8} {s['n']:>4} "
                    f"{s['median']:>9.2f} {s['min']:>9.2f} {s['p90']:>9.2f} "
                    f"{s['x_ref'] if s['x_ref'] is not None else 0:>8.2f}"
                )
                first = False
    print("\n".join(out))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(
                {
                    "meta": {
                        "started": started,
                        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                        "cpus": os.cpu_count(),
                        "loadavg_end": os.getloadavg(),
                    },
                    "rounds": [{"round": r} for r in range(rounds)],
                    "reference": ref,
                    "summary": summary,
                    "samples": samples,
                },
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
