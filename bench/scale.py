"""Scale: many containers created and not started.

For each runtime, creates containers one by one (a busybox bundle per
container sharing one rootfs, cgroupsPath scale/<id>) and at each count of
--counts measures:
  state     median wall time of `state <first id>` (--calls calls)
  list      median wall time of `list` (5 calls)
  mem/ctr   memory per waiting init: mean RSS, PSS and USS (smaps_rollup),
            and the drop of MemAvailable per container since the start
Then deletes everything (also on failure or Ctrl-C).  Root, inside the
cgroup sandbox (the Makefile target `bench-scale` does both).

usage: scale.py [--runtime NAME=PATH ...] [--counts 1,100,500] [--calls 20]
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
MKBUNDLE = os.path.join(os.path.dirname(REPO), "shared", "tools", "mkbundle.sh")


def spawn_ms(argv):
    """Wall time of one CLI call in ms, stdin/stdout on /dev/null, stderr to a
    file (never a pipe: a created init inherits it and would hold it open);
    raises on failure."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter_ns()
        rc = subprocess.call(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        ms = (time.perf_counter_ns() - t0) / 1e6
        if rc != 0:
            err.seek(0)
            raise RuntimeError(f"{' '.join(argv)}: exit {rc}: {err.read().decode(errors='replace')[-300:]}")
    return ms


def median(vals):
    vals = sorted(vals)
    return vals[len(vals) // 2]


def mem_kb(pid):
    rss = pss = uss = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key == "Rss":
                rss = int(rest.split()[0])
            elif key == "Pss":
                pss = int(rest.split()[0])
            elif key in ("Private_Clean", "Private_Dirty"):
                uss += int(rest.split()[0])
    return rss, pss, uss


def mem_available_kb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    return 0


def make_base(work):
    base = os.path.join(work, "base")
    subprocess.run([MKBUNDLE, base, "sleep", "1000"], check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(base, "config.json")) as f:
        cfg = json.load(f)
    cfg["root"] = {"path": os.path.join(base, "rootfs"), "readonly": True}
    return cfg


def bundle_for(work, cfg, cid):
    d = os.path.join(work, "b", cid)
    os.makedirs(d)
    cfg = dict(cfg, linux=dict(cfg["linux"], cgroupsPath=f"scale/{cid}"))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    return d


def measure_runtime(name, path, counts, calls, work, cfg):
    root = os.path.join(work, "state", name)
    ids, rows = [], []
    mem0 = mem_available_kb()
    pids = []
    try:
        create_ms = []
        for n in range(1, max(counts) + 1):
            cid = f"s{n}"
            b = bundle_for(work, cfg, f"{name}-{cid}")
            pidfile = os.path.join(work, f"{name}-{cid}.pid")
            create_ms.append(spawn_ms([path, "--root", root, "create", "--bundle", b,
                                       "--pid-file", pidfile, cid]))
            ids.append(cid)
            with open(pidfile) as f:
                pids.append(int(f.read()))
            if n in counts:
                state = median([spawn_ms([path, "--root", root, "state", ids[0]]) for _ in range(calls)])
                lst = median([spawn_ms([path, "--root", root, "list"]) for _ in range(5)])
                mems = [mem_kb(p) for p in pids]
                row = {"runtime": name, "containers": n, "state_ms": state, "list_ms": lst,
                       "create_ms": median(create_ms[-min(len(create_ms), 50):]),
                       "rss_kb": sum(m[0] for m in mems) / n, "pss_kb": sum(m[1] for m in mems) / n,
                       "uss_kb": sum(m[2] for m in mems) / n,
                       "avail_drop_kb": (mem0 - mem_available_kb()) / n}
                rows.append(row)
                print(f"{name:7} n={n:4}  state {state:6.2f} ms  list {lst:7.2f} ms  per init: "
                      f"PSS {row['pss_kb']:6.0f} USS {row['uss_kb']:6.0f} KiB, "
                      f"MemAvailable -{row['avail_drop_kb']:6.0f} KiB", file=sys.stderr, flush=True)
    finally:
        for cid in ids:
            subprocess.run([path, "--root", root, "delete", "--force", cid],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return rows


def table(rows):
    out = ["| runtime | containers | state (ms) | list (ms) | create (ms) | RSS/init (KiB) "
           "| PSS/init (KiB) | USS/init (KiB) | MemAvailable drop/container (KiB) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['runtime']} | {r['containers']} | {r['state_ms']:.2f} | {r['list_ms']:.1f} "
                   f"| {r['create_ms']:.1f} | {r['rss_kb']:.0f} | {r['pss_kb']:.0f} | {r['uss_kb']:.0f} "
                   f"| {r['avail_drop_kb']:.0f} |")
    return "\n".join(out) + "\n"


def main(argv):
    runtimes, counts, calls = [], [1, 100, 500], 20
    while argv:
        a = argv.pop(0)
        if a == "--runtime":
            name, _, path = argv.pop(0).partition("=")
            runtimes.append((name, path))
        elif a == "--counts":
            counts = sorted(int(x) for x in argv.pop(0).split(","))
        elif a == "--calls":
            calls = int(argv.pop(0))
        else:
            raise SystemExit(__doc__)
    if not runtimes:
        runtimes = [("pyrunc", os.path.join(REPO, ".venv", "bin", "pyrunc")), ("runc", "/usr/sbin/runc")]
    def interrupted(signum, _frame):
        raise KeyboardInterrupt(signum)
    signal.signal(signal.SIGTERM, interrupted)  # the finally clauses delete what exists
    work = tempfile.mkdtemp(prefix="pyrunc-scale-")
    rows = []
    try:
        cfg = make_base(work)
        for name, path in runtimes:
            rows += measure_runtime(name, path, counts, calls, work, cfg)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = os.path.join(HERE, "results")
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "scale.json"), "w") as f:
        json.dump({"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "rows": rows}, f, indent=1)
    text = table(rows)
    with open(os.path.join(results, "scale.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
