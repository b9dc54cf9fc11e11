"""Run the side-by-side runtime benchmark and keep its results.

Runs the shared harness (../shared/bench/lifecycle.py, standard library
only) when it is present, comparing runc, crun and the installed pyrunc;
otherwise falls back to bench/mini.py, a smaller harness of our own with
the same output format (run, lifecycle phases, state).  Must run as root
inside the cgroup sandbox (``make bench`` does both).

Writes:
  bench/results/latest.json   the harness's --json output (every raw sample)
  bench/results/latest.txt    the harness's table, exactly as printed
then ``bench/report.py`` turns them into docs/benchmarks.md and the chart.

usage: run.py [--rounds N] [--pyrunc PATH] [extra harness args...]
"""

import os
import shlex
import subprocess
import sys

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
    cmd = ["/usr/bin/python3", harness] + runtimes(pyrunc) + ["--rounds", rounds,
                                                              "--json", json_path] + extra
    print("+ " + " ".join(shlex.quote(c) for c in cmd), file=sys.stderr, flush=True)
    # the table goes to stdout; progress to our stderr
    res = subprocess.run(cmd, stdout=subprocess.PIPE, cwd=REPO)
    text = res.stdout.decode(errors="replace")
    sys.stdout.write(text)
    with open(os.path.join(RESULTS, "latest.txt"), "w") as f:
        f.write(text)
    return res.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
