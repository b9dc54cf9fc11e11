"""Run the side-by-side runtime benchmark and keep its results.

Runs the shared harness (../shared/bench/lifecycle.py, standard library
only) when it is present, comparing runc, crun and the installed pyrunc;
otherwise falls back to bench/mini.py, a smaller harness of our own with
the same output format (run, lifecycle phases, state).  Must run as root
inside the cgroup sandbox (``make bench`` does both).

Writes:
  bench/results/latest.json   the harness's --json output (every raw sample)
  bench/results/latest.txt    the harness's table, exactly as printed
  bench/results/floor.json    the interpreter floor (`<launcher's python> -IS -c pass`),
                              measured before and after the harness
then ``bench/report.py`` turns them into docs/benchmarks.md and the chart.

usage: run.py [--rounds N] [--pyrunc PATH] [extra harness args...]
"""

import json
import os
import shlex
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SHARED = os.path.join(os.path.dirname(REPO), "shared", "bench", "lifecycle.py")
RESULTS = os.path.join(HERE, "results")


def runtimes(pyrunc):
    out = []
    for name, path in (("runc", "/usr/sbin/runc"), ("crun", "/usr/bin/crun")):
        if os.access(path, os.X_OK):
            out += ["--runtime", f"{name}={path}"]
    return out + ["--runtime", f"pyrunc={pyrunc}"]


def launcher_interpreter(pyrunc):
    """The interpreter on the launcher's #! line (the installation's copy)."""
    with open(pyrunc, "rb") as f:
        first = f.readline()
    return first[2:].split()[0].decode() if first.startswith(b"#!") else sys.executable


def interpreter_floor(interpreter, n):
    """Wall times (ms) of ``interpreter -IS -c pass``: the least any
    command of a CPython runtime costs (issue 21's floor)."""
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([interpreter, "-IS", "-c", "pass"], check=True)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main(argv):
    rounds, pyrunc, extra = "20", os.path.join(REPO, ".venv", "bin", "pyrunc"), []
    while argv:
        a = argv.pop(0)
        if a == "--rounds":
            rounds = argv.pop(0)
        elif a == "--pyrunc":
            pyrunc = os.path.abspath(argv.pop(0))
        else:
            extra.append(a)
    os.makedirs(RESULTS, exist_ok=True)
    harness = SHARED if os.path.exists(SHARED) else os.path.join(HERE, "mini.py")
    json_path = os.path.join(RESULTS, "latest.json")
    # the system interpreter, as the command line uses it
    cmd = ["/usr/bin/python3", harness] + runtimes(pyrunc) + ["--rounds", rounds, "--json", json_path] + extra
    print("+ " + " ".join(shlex.quote(c) for c in cmd), file=sys.stderr, flush=True)
    interpreter = launcher_interpreter(pyrunc)
    floor = interpreter_floor(interpreter, int(rounds))
    # the table goes to stdout; progress to our stderr
    res = subprocess.run(cmd, stdout=subprocess.PIPE, cwd=REPO)
    floor += interpreter_floor(interpreter, int(rounds))  # the same minutes: before and after
    floor.sort()
    with open(os.path.join(RESULTS, "floor.json"), "w") as f:
        json.dump(
            {
                "interpreter": interpreter,
                "command": f"{interpreter} -IS -c pass",
                "samples_ms": floor,
                "median_ms": floor[len(floor) // 2],
            },
            f,
            indent=1,
        )
    text = res.stdout.decode(errors="replace")
    sys.stdout.write(text)
    with open(os.path.join(RESULTS, "latest.txt"), "w") as f:
        f.write(text)
    return res.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
