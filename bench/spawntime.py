"""Median wall time of spawning a command N times (posix_spawn + wait).

usage: spawntime.py [-n N] [--label L] -- CMD [ARGS...]   (repeatable groups
separated by ';;' are not supported: one command per call)

Prints "label  median_ms  min_ms  p90_ms  n".  Used by docs/performance.md
measurements (the interpreter start-up floor, per-subcommand costs).
"""

import os
import sys
import time


def measure(argv, n, env=None):
    devnull = os.open(os.devnull, os.O_RDWR)
    fa = [(os.POSIX_SPAWN_DUP2, devnull, 0), (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
    out = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, env if env is not None else os.environ, file_actions=fa)
        _, status = os.waitpid(pid, 0)
        out.append((time.perf_counter_ns() - t0) / 1e6)
        if status != 0:
            raise SystemExit(f"{argv}: exit status {os.waitstatus_to_exitcode(status)}")
    os.close(devnull)
    out.sort()
    return out[len(out) // 2], out[0], out[int(len(out) * 0.9)]


def main(argv):
    n, label = 50, None
    while argv and argv[0] != "--":
        opt = argv.pop(0)
        if opt == "-n":
            n = int(argv.pop(0))
        elif opt == "--label":
            label = argv.pop(0)
        else:
            raise SystemExit(__doc__)
    cmd = argv[1:]
    med, lo, p90 = measure(cmd, n)
    print(f"{label or ' '.join(cmd):<40} {med:8.2f} {lo:8.2f} {p90:8.2f} {n:5d}")


if __name__ == "__main__":
    main(sys.argv[1:])
