"""End to end through the engines: `run --rm IMAGE true`, pyrunc against runc.

For each engine, after --warmup runs per runtime, times --rounds runs per
runtime interleaved (pyrunc, runc, pyrunc, runc, ...: the machine is shared,
noise hits both alike) of the wall time of one engine CLI call:

  podman   podman ... run --runtime PATH --rm IMAGE true      (conmon)
  docker   docker run --rm [--runtime pyrunc] IMAGE true      (dockerd ->
           containerd -> containerd-shim-runc-v2; runc is Docker's default)
  ctr      ctr run --rm --runtime io.containerd.runc.v2 --runc-binary PATH
           --runc-root DIR IMAGE ID true                      (containerd's shim)

IMAGE is the engine tests' busybox image.  The engines are set up exactly as
`make test-engines` sets them up, by the fixtures of
tests/integration/engines/conftest.py (called here as context managers):
every daemon, storage directory and cgroup lives in a temporary directory
and is torn down at the end, also on failure, Ctrl-C or SIGTERM.

--per-call: every runtime is registered through a wrapper (a bash script
named like the runtime) that runs the real runtime and appends to a log the
start and end time of the call ($EPOCHREALTIME, no fork), its exit status,
its argv and the names of its environment variables.  The engine runs are
the same; the table then lists, per engine and runtime, which runtime
commands each container costs and their medians.  The wrapper's own start
(bash, about 2 ms per call) is inside the end-to-end times of this mode but
outside the per-call times.  (Docker's runc is found through PATH: the
wrapper's directory goes first in the PATH containerd, hence the shim, gets.)

Root, inside the cgroup sandbox (`make bench-engines` does both).

usage: engines.py [--rounds N] [--warmup N] [--engines podman,docker,ctr]
                  [--pyrunc PATH] [--per-call]
Writes bench/results/engines.json and engines.md (--per-call:
engines-calls.json and engines-calls.md); bench/report.py puts the
markdown into docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS = os.path.join(HERE, "results")
ENGINE_TESTS = os.path.join(REPO, "tests", "integration", "engines")
os.environ.pop("PYRUNC_ENGINE_ARGV_LOG", None)  # the fixtures' own argv log: not here
sys.path.insert(0, ENGINE_TESTS)
import conftest  # noqa: E402  (the engine tests' fixtures)
import enginelib as el  # noqa: E402

ENGINES = ("podman", "docker", "ctr")
RUNTIME_ORDER = ("pyrunc", "runc")
DEFAULT_ROOTS = {"pyrunc": "/run/pyrunc", "runc": "/run/runc"}  # where podman's runtimes keep their state
# runc's global options that take a value (the verb is the first other word)
GLOBAL_WITH_VALUE = {"--root", "--log", "--log-format", "--criu", "--rootless"}


def median(vals):
    vals = sorted(vals)
    if not vals:
        return None
    n = len(vals)
    return vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def version(argv):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
        return p.stdout.strip().splitlines()[0] if p.stdout.strip() else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


@contextlib.contextmanager
def fixture(name, *args):
    """A session fixture of the engine tests' conftest.py as a context
    manager, torn down the way pytest does it: the generator is resumed after
    its yield, never has an exception thrown into it (some fixtures tear down
    in plain code after the yield, not in a finally)."""
    gen = inspect.unwrap(getattr(conftest, name))(*args)
    value = next(gen)
    try:
        yield value
    finally:
        with contextlib.suppress(StopIteration):
            next(gen)


# ---------------------------------------------------------------- the per-call wrapper

WRAPPER = """#!/bin/bash
# bench/engines.py --per-call: time one call of {real}, then log it
t0=$EPOCHREALTIME
{real} "$@"
rc=$?
t1=$EPOCHREALTIME
# the CPU time of the runtime and the children it reaped (bash's `times`, no fork)
times > {tmp}.$$
{{ read -r _; read -r cu cs; }} < {tmp}.$$
names=$(compgen -e)
printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "$t0" "$t1" "$rc" "$cu" "$cs" "${{names//$'\\n'/,}}" "$*" >> {log}
exit $rc
"""


def timing_wrapper(directory, real, log):
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, os.path.basename(real))
    with open(path, "w") as f:
        f.write(WRAPPER.format(real=shlex.quote(real), log=shlex.quote(log), tmp=shlex.quote(log + ".times")))
    os.chmod(path, 0o755)
    return path


def read_calls(log):
    """[(t0, t1, rc, env names, argv, CPU ms)] from a wrapper's log (times in seconds)."""
    calls = []
    try:
        with open(log) as f:
            for line in f:
                t0, t1, rc, cu, cs, names, args = line.rstrip("\n").split("\t", 6)
                cpu = sum(bash_seconds(x) for x in (cu, cs)) * 1000
                calls.append((float(t0), float(t1), int(rc), names, args.split(" "), cpu))
    except FileNotFoundError:
        pass
    return calls


def bash_seconds(text):
    """`times`' 1m2.345s -> 62.345"""
    minutes, _, seconds = text.rstrip("s").partition("m")
    return int(minutes) * 60 + float(seconds)


def verb_of(args):
    """The runtime command of an argv (global options skipped) and its own options."""
    i = 0
    while i < len(args):
        a = args[i]
        if a in GLOBAL_WITH_VALUE:
            i += 2
        elif a.startswith("-"):
            i += 1
        else:
            opts = [x.split("=", 1)[0] for x in args[i + 1 :] if x.startswith("-")]
            return a, opts
    return "?", []


BENCH_ENV = set(os.environ)  # the env names an engine passes on from ours: not listed
HEX_ID = re.compile(r"\b[0-9a-f]{64}\b")


def shape_of(args):
    """An argv with ids and paths replaced, to group identical calls."""
    out = []
    for a in args:
        a = HEX_ID.sub("<id>", a)
        if "/" in a:
            a = "<path>"
        elif re.fullmatch(r"b-[0-9a-f]{10}", a):
            a = "<id>"
        out.append(a)
    return " ".join(out)


# ---------------------------------------------------------------- the engines


class Bench:
    def __init__(self, stack, pyrunc, per_call):
        self.stack, self.per_call = stack, per_call
        self.real = {"pyrunc": pyrunc, "runc": el.RUNC}
        self.logs = {}
        if per_call:
            self.wrap_dir = el.new_workdir("pyeng-bench-wrap-")
            stack.callback(lambda: subprocess.run(["rm", "-rf", self.wrap_dir]))
            wrapped = {}
            for name, real in self.real.items():
                self.logs[name] = os.path.join(self.wrap_dir, f"calls-{name}.log")
                wrapped[name] = timing_wrapper(os.path.join(self.wrap_dir, name), real, self.logs[name])
            el.RUNTIMES.clear()
            el.RUNTIMES.update(wrapped)
            # Docker's default runtime is "runc" looked up in the shim's PATH
            os.environ["PATH"] = os.path.join(self.wrap_dir, "runc") + ":" + os.environ.get("PATH", "/usr/bin:/bin")
        else:
            el.RUNTIMES.clear()
            el.RUNTIMES.update(self.real)
        self.images = None
        self._engines = {}

    def engine(self, name):
        """(argv-maker: runtime name -> callable returning a CompletedProcess)."""
        if self.images is None:
            self.images = self.stack.enter_context(fixture("images"))
        if name == "podman":
            where = []  # podman's directory, once its fixture has made it
            self.stack.callback(lambda: where and self.delete_strays(where[0]))  # after the fixture's teardown
            eng = self.stack.enter_context(fixture("podman", self.images))
            where.append(eng.workdir)
            return lambda rt: eng("run", *eng.runtime_args(rt), "--rm", conftest.BUSYBOX_IMAGE, "true")
        if name in ("docker", "ctr") and "containerd" not in self._engines:
            self._engines["containerd"] = self.stack.enter_context(fixture("containerd", self.images))
        c = self._engines.get("containerd")
        if name == "docker":
            eng = self.stack.enter_context(fixture("docker", self.images, c))
            return lambda rt: eng("run", "--rm", *eng.runtime_args(rt), conftest.BUSYBOX_IMAGE, "true")
        if name == "ctr":
            roots = {}
            for rt in RUNTIME_ORDER:
                roots[rt] = os.path.join(c.workdir, "ctr-root-" + rt)
                os.makedirs(roots[rt], exist_ok=True)

            def ctr_run(rt):
                cid = "b-" + uuid.uuid4().hex[:10]
                cg = ["--runc-systemd-cgroup", "--cgroup", f"system.slice:ctr:{cid}"] if el.SYSTEMD else []
                return c.ctr(
                    "run",
                    "--snapshotter",
                    "native",
                    "--runtime",
                    "io.containerd.runc.v2",
                    "--runc-binary",
                    c.runtime_paths[rt],
                    "--runc-root",
                    roots[rt],
                    *cg,
                    "--rm",
                    conftest.BUSYBOX_IMAGE,
                    cid,
                    "true",
                )

            return ctr_run
        raise ValueError(f"unknown engine {name!r}: one of {', '.join(ENGINES)}")

    def delete_strays(self, workdir):
        """Containers of ours left in the runtimes' default roots.  podman 4.3
        does not pass containers.conf's runtime_flags (the fixture's --root)
        to the runtime, so its runtimes keep their state in /run/runc and
        /run/pyrunc, outside podman's directory; a run cut short inside
        `create` (Ctrl-C, a timeout) leaves a container there that podman's
        own teardown does not know.  Ours name ``workdir`` in their state."""
        for rt, path in self.real.items():
            root = DEFAULT_ROOTS[rt]
            try:
                ids = os.listdir(root)
            except OSError:
                continue
            for cid in ids:
                try:
                    with open(os.path.join(root, cid, "state.json"), errors="replace") as f:
                        ours = workdir in f.read()
                except OSError:
                    continue
                if ours:
                    subprocess.run(
                        [path, "--root", root, "delete", "--force", cid],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        timeout=60,
                    )

    def versions(self):
        out = {rt: version([p, "--version"]) for rt, p in self.real.items()}
        out["podman"] = version(["podman", "--version"])
        out["docker"] = version(["/usr/bin/docker", "--version"])
        out["containerd"] = version(["containerd", "--version"])
        out["conmon"] = version(["conmon", "--version"])
        return out


def in_cgroup_sandbox():
    """cgroup-sandbox mounts the cgroup hierarchies afresh with the source
    name "sandbox" (../shared/tools/cgroup-sandbox)."""
    with open("/proc/self/mountinfo") as f:
        return any(
            line.split(" - ", 1)[1].split()[:2] in (["cgroup", "sandbox"], ["cgroup2", "sandbox"])
            for line in f
            if " - " in line
        )


def sandbox_cpu_ns():
    """CPU time used so far by everything in the cgroup sandbox (this script,
    the engines' CLIs and daemons, the runtimes, the containers), or None
    outside a cgroup namespace (the root cgroup would count the whole machine)."""
    if not in_cgroup_sandbox():
        return None
    for path in ("/sys/fs/cgroup/cpuacct/cpuacct.usage", "/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage"):
        try:
            with open(path) as f:
                return int(f.read())
        except OSError:
            pass
    try:
        with open("/sys/fs/cgroup/cpu.stat") as f:
            for line in f:
                if line.startswith("usage_usec "):
                    return int(line.split()[1]) * 1000
    except OSError:
        pass
    return None


def timed(call, rt):
    """(start, end) wall-clock seconds of one engine run, and the CPU ms the
    whole sandbox used meanwhile (None when not measurable)."""
    c0 = sandbox_cpu_ns()
    t0 = time.time()
    p = call(rt)
    t1 = time.time()
    c1 = sandbox_cpu_ns()
    if p.returncode != 0:
        raise RuntimeError(f"{rt}: exit {p.returncode}\nstdout: {p.stdout[-500:]}\nstderr: {p.stderr[-800:]}")
    return (t0, t1), (None if c0 is None or c1 is None else (c1 - c0) / 1e6)


def bench_engine(bench, name, rounds, warmup):
    call = bench.engine(name)
    for _ in range(warmup):
        for rt in RUNTIME_ORDER:
            timed(call, rt)
    time.sleep(1)  # let an engine's asynchronous cleanup of the warm-up finish
    for log in bench.logs.values():
        open(log, "w").close()
    runs = {rt: [] for rt in RUNTIME_ORDER}
    cpu = {rt: [] for rt in RUNTIME_ORDER}
    load_before = loadavg()
    for i in range(rounds):
        for rt in RUNTIME_ORDER:
            window, cpu_ms = timed(call, rt)
            runs[rt].append(window)
            cpu[rt].append(cpu_ms)
        print(
            f"  {name} round {i + 1}/{rounds}: "
            + ", ".join(f"{rt} {(runs[rt][-1][1] - runs[rt][-1][0]) * 1000:.0f} ms" for rt in RUNTIME_ORDER),
            file=sys.stderr,
            flush=True,
        )
    time.sleep(1)  # calls an engine makes after its CLI returned
    row = {"engine": name, "load_before": load_before, "load_after": loadavg()}
    for rt in RUNTIME_ORDER:
        ms = [(t1 - t0) * 1000 for t0, t1 in runs[rt]]
        row[rt] = {"median_ms": median(ms), "samples_ms": ms}
        if None not in cpu[rt]:
            row[rt].update(cpu_median_ms=median(cpu[rt]), cpu_samples_ms=cpu[rt])
    row["ratio"] = row["pyrunc"]["median_ms"] / row["runc"]["median_ms"]
    row["diff_ms"] = row["pyrunc"]["median_ms"] - row["runc"]["median_ms"]
    # each round's pyrunc run against the runc run right after it: a busy
    # phase of the machine hits both runs of a pair, so these medians
    # move less than the ratio of the two medians
    pairs = list(zip(row["pyrunc"]["samples_ms"], row["runc"]["samples_ms"]))
    row["paired_ratio"] = median([p / r for p, r in pairs])
    row["paired_diff_ms"] = median([p - r for p, r in pairs])
    if "cpu_median_ms" in row["runc"]:
        row["cpu_ratio"] = row["pyrunc"]["cpu_median_ms"] / row["runc"]["cpu_median_ms"]
    if bench.per_call:
        calls = {rt: read_calls(bench.logs[rt]) for rt in RUNTIME_ORDER}
        row["calls"] = {rt: per_call_table(calls[rt], runs[rt]) for rt in RUNTIME_ORDER}
        row["timeline"] = {
            rt: [
                {
                    "segment": label,
                    "runs": len(ms),
                    "median_ms": median(ms),
                    "samples_ms": ms,
                    **({"cpu_median_ms": median(cpu), "cpu_samples_ms": cpu} if cpu else {}),
                }
                for label, ms, cpu in timeline(calls[rt], runs[rt])
            ]
            for rt in RUNTIME_ORDER
        }
    return row


def call_label(args):
    verb, opts = verb_of(args)
    return " ".join([verb, *opts])


def timeline(calls, runs):
    """Each run cut at the runtime calls it made, in order: the engine's own
    time before, between and after the calls, and the calls themselves.
    [(segment, [wall ms per run], [CPU ms per run, calls only])] in the order
    of the first run; the wall medians add up to about the end-to-end median."""
    segments = {}
    starts = [s for s, _ in runs]
    for k, (start, end) in enumerate(runs):
        stop = min(end, starts[k + 1] if k + 1 < len(starts) else end)
        mine = sorted((c for c in calls if start <= c[0] < stop), key=lambda c: c[0])
        seen = {}
        prev_end, prev = start, "CLI starts"
        items = []
        for t0, t1, _, _, args, cpu in mine:
            label = call_label(args)
            seen[label] = seen.get(label, 0) + 1
            if seen[label] > 1:
                label += f" #{seen[label]}"
            items.append((f"engine: {prev} -> `{label}`", t0 - prev_end, None))
            items.append((f"`{label}`", t1 - t0, cpu))
            prev_end, prev = t1, f"`{label}`"
        items.append((f"engine: {prev} -> CLI returns", end - prev_end, None))
        for label, dt, cpu in items:
            wall, cpus = segments.setdefault(label, ([], []))
            wall.append(dt * 1000)
            if cpu is not None:
                cpus.append(cpu)
    return [(label, wall, cpus) for label, (wall, cpus) in segments.items()]


def per_call_table(calls, runs):
    """Per runtime command: calls per container, median and total ms; the
    distinct argv shapes and env names; calls that ran after the engine's
    CLI call returned (asynchronous cleanup)."""
    n = len(runs)
    ends = [t1 for _, t1 in runs]
    starts = [t0 for t0, _ in runs]
    table = {}
    for t0, t1, rc, names, args, cpu in calls:
        verb = call_label(args)
        entry = table.setdefault(
            verb, {"ms": [], "cpu": [], "rc": [], "shapes": {}, "env": set(), "after_return": 0, "first": t0}
        )
        entry["ms"].append((t1 - t0) * 1000)
        entry["cpu"].append(cpu)
        entry["rc"].append(rc)
        shape = shape_of(args)
        entry["shapes"][shape] = entry["shapes"].get(shape, 0) + 1
        entry["env"].update(x for x in names.split(",") if x and x not in BENCH_ENV)
        # the run this call belongs to: the last one started before it
        k = max((i for i, s in enumerate(starts) if s <= t0), default=None)
        if k is not None and t0 > ends[k]:
            entry["after_return"] += 1
    out = []
    for verb, e in sorted(table.items(), key=lambda kv: kv[1]["first"]):
        out.append(
            {
                "command": verb,
                "per_container": len(e["ms"]) / n,
                "median_ms": median(e["ms"]),
                "total_ms_per_container": sum(e["ms"]) / n,
                "samples_ms": e["ms"],
                "cpu_median_ms": median(e["cpu"]),
                "cpu_samples_ms": e["cpu"],
                "exit_codes": sorted(set(e["rc"])),
                "after_return": e["after_return"],
                "argv_shapes": e["shapes"],
                "env_names_not_ours": sorted(e["env"]),
            }
        )
    return out


# ---------------------------------------------------------------- output


def markdown(doc):
    per_call = doc["per_call"]
    out = [
        f"{doc['finished']}, {doc['rounds']} interleaved runs per runtime after {doc['warmup']} warm-up, "
        f"load {doc['load_start']} -> {doc['load_end']}"
        + (" (every runtime call through the timing wrapper)" if per_call else "")
        + ". Command (inside `../shared/tools/cgroup-sandbox`):",
        "",
        "```",
        doc["command"],
        "```",
        "",
        "| engine | pyrunc (ms) | runc (ms) | pyrunc / runc | paired ratio | paired difference "
        "| CPU, pyrunc (ms) | CPU, runc (ms) | CPU pyrunc / runc |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["rows"]:
        cpu = (
            f"{r['pyrunc']['cpu_median_ms']:.0f} | {r['runc']['cpu_median_ms']:.0f} | {r['cpu_ratio']:.2f}x"
            if "cpu_ratio" in r
            else "- | - | -"
        )
        out.append(
            f"| {r['engine']} | {r['pyrunc']['median_ms']:.0f} | {r['runc']['median_ms']:.0f} | "
            f"{r['ratio']:.2f}x | {r['paired_ratio']:.2f}x | {r['paired_diff_ms']:+.0f} ms | {cpu} |"
        )
    out += [
        "",
        "Medians of the wall time of one `run --rm IMAGE true` CLI call, and of the CPU time the",
        "whole cgroup sandbox (CLI, daemons, shims, conmon, runtime, container) used meanwhile.",
        "Paired: the median over the rounds of pyrunc's run against the runc run right after it",
        "(a busy phase of the shared machine hits both runs of a pair).",
    ]
    if not per_call:
        out += [
            "The engines are set up as `make test-engines` sets them up",
            "(tests/integration/engines/conftest.py): podman with conmon and vfs storage; dockerd",
            "(vfs) on a private containerd that logs at debug level; ctr with the native snapshotter.",
            "So the absolute times are those of that setup (no overlayfs, no network); the",
            "difference per container is the runtime's.",
        ]
    if per_call:
        out = [
            "### Per runtime call (`--per-call`)",
            "",
            "Every runtime call went through a timing wrapper; each run is cut at the calls it made.",
            "A call's cell is its median wall time and, in parentheses, the CPU time of the runtime",
            "and the children it reaped (not the container's init, where runc does part of its",
            "`create`, the seccomp filter among it); `engine:` rows are the engine's own time",
            "between them.  The wrapper adds a bash start (about 2 ms) per call to the `engine:`",
            "rows, for both runtimes alike.  The `engine:` rows are where the shared machine's",
            "noise lands; the calls' row is the runtime's own share.",
            "",
            *out,
        ]
        for r in doc["rows"]:
            out += [
                "",
                f"{r['engine']}, one container from the CLI call to its return: the runtime calls "
                "(median wall time of each, ms, and the CPU time of the runtime and the children it reaped; "
                "the wrapper's own start excluded) and the engine's time around them",
                "",
                "| segment | pyrunc | runc | pyrunc - runc |",
                "|---|---:|---:|---:|",
            ]
            by = {rt: {seg["segment"]: seg for seg in r["timeline"][rt]} for rt in RUNTIME_ORDER}
            labels = list(by["runc"]) + [x for x in by["pyrunc"] if x not in by["runc"]]
            tot = {rt: 0.0 for rt in RUNTIME_ORDER}
            calls_tot = {rt: 0.0 for rt in RUNTIME_ORDER}
            for label in labels:
                cells = []
                for rt in RUNTIME_ORDER:
                    seg = by[rt].get(label)
                    full = seg and seg["runs"] == len(r[rt]["samples_ms"])
                    tot[rt] += seg["median_ms"] if seg else 0.0
                    if seg and not label.startswith("engine:"):
                        calls_tot[rt] += seg["median_ms"]
                    if not seg:
                        cells.append("-")
                        continue
                    cell = f"{seg['median_ms']:.1f}"
                    if "cpu_median_ms" in seg:
                        cell += f" (CPU {seg['cpu_median_ms']:.0f})"
                    cells.append(cell + ("" if full else f" ({seg['runs']} runs)"))
                a, b = (by[rt].get(label) for rt in RUNTIME_ORDER)
                diff = f"{a['median_ms'] - b['median_ms']:+.1f}" if a and b else "-"
                out.append(f"| {label} | {cells[0]} | {cells[1]} | {diff} |")
            out.append(
                f"| sum of the medians | {tot['pyrunc']:.0f} | {tot['runc']:.0f} | {tot['pyrunc'] - tot['runc']:+.1f} |"
            )
            out.append(
                f"| the runtime calls alone | {calls_tot['pyrunc']:.0f} | {calls_tot['runc']:.0f} | "
                f"{calls_tot['pyrunc'] - calls_tot['runc']:+.1f} |"
            )
            late = {rt: sum(c["after_return"] for c in r["calls"][rt]) for rt in RUNTIME_ORDER}
            if any(late.values()):
                out.append("")
                out.append(
                    "Calls made after the CLI returned (not in the table): "
                    + ", ".join(f"{rt} {n}" for rt, n in late.items())
                    + "."
                )
    return "\n".join(out) + "\n"


def interrupted(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv):
    rounds, warmup, engines, per_call = 10, 2, list(ENGINES), False
    pyrunc = os.path.join(REPO, ".venv", "bin", "pyrunc")
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--rounds":
            rounds = int(args.pop(0))
        elif a == "--warmup":
            warmup = int(args.pop(0))
        elif a == "--engines":
            engines = [e for e in args.pop(0).split(",") if e]
        elif a == "--pyrunc":
            pyrunc = os.path.abspath(args.pop(0))
        elif a == "--per-call":
            per_call = True
        else:
            print(__doc__, file=sys.stderr)
            return 2
    for e in engines:
        if e not in ENGINES:
            print(f"engines.py: unknown engine {e!r}: one of {', '.join(ENGINES)}", file=sys.stderr)
            return 2
    # SIGTERM unwinds like Ctrl-C: the fixtures' teardown runs
    signal.signal(signal.SIGTERM, interrupted)
    command = " ".join(shlex.quote(x) for x in [os.path.relpath(sys.executable, REPO), "bench/engines.py", *argv])
    doc = {
        "command": command,
        "rounds": rounds,
        "warmup": warmup,
        "per_call": per_call,
        "load_start": loadavg(),
        "pyrunc": pyrunc,
        "rows": [],
    }
    print(f"+ {command} (load {doc['load_start']})", file=sys.stderr, flush=True)
    try:
        with contextlib.ExitStack() as stack:
            bench = Bench(stack, pyrunc, per_call)
            doc["versions"] = bench.versions()
            for e in engines:
                doc["rows"].append(bench_engine(bench, e, rounds, warmup))
    except KeyboardInterrupt as e:
        print(f"engines.py: interrupted ({e or 'Ctrl-C'}); the engines are torn down", file=sys.stderr)
        return 130
    doc["load_end"] = loadavg()
    doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    stem = "engines-calls" if per_call else "engines"
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, stem + ".json"), "w") as f:
        json.dump(doc, f, indent=1)
    text = markdown(doc)
    with open(os.path.join(RESULTS, stem + ".md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
