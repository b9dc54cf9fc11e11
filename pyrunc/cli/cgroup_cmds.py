"""pause, resume, ps, update, events: the verbs that work on the
container's cgroup, with runc's flags and outputs.  argv -> Runtime
(pyrunc/runtime.py, which owns the logic and the state writes) -> output."""

import sys

from ..errors import PyruncError, UsageError
from . import BOOL, INT, STR, Flag, parse


def _one_id(args, verb):
    if len(args) != 1:
        raise UsageError(f'"{verb}" requires exactly 1 argument')
    return args[0]


def cmd_pause(g, argv):
    _, args = parse((), argv)
    g.runtime().pause(_one_id(args, "pause"))
    return 0


def cmd_resume(g, argv):
    _, args = parse((), argv)
    g.runtime().resume(_one_id(args, "resume"))
    return 0


def cmd_ps(g, argv):
    opts, args = parse((Flag("format|f", STR, "table", "table or json"),), argv, stop_at_positional=True)
    if not args:
        raise UsageError('"ps" requires a minimum of 1 argument')
    # A stopped container is listed too, as runc does: whatever is left in
    # its cgroup (normally nothing), not an error.  A live one without a
    # cgroup (rootless) is an error, as in runc.
    pids = g.runtime().ps(args[0])
    if opts["format"] == "json":
        from ..fastjson import dumps

        # runc's encoding: one compact line; no pids is a nil slice, `null`
        sys.stdout.write((dumps(pids, compact=True) if pids else "null") + "\n")
        return 0
    if opts["format"] != "table":
        raise UsageError(f"invalid format option {opts['format']!r}")
    import subprocess

    ps_args = args[1:] or ["-ef"]
    out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    if out.returncode != 0:
        raise PyruncError(f"ps: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    if not lines:
        return 0
    header = lines[0]
    cols = header.split()
    if "PID" not in cols:
        raise PyruncError("couldn't find PID field in ps output")
    idx = cols.index("PID")
    wanted = set(pids)
    sys.stdout.write(header + "\n")
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > idx and fields[idx].isdigit() and int(fields[idx]) in wanted:
            sys.stdout.write(line + "\n")
    return 0


UPDATE_FLAGS = (
    Flag("resources|r", STR, None, "LinuxResources JSON file, or - for stdin"),
    Flag("blkio-weight", INT, None),
    Flag("cpu-period", INT, None),
    Flag("cpu-quota", INT, None),
    Flag("cpu-share", INT, None),
    Flag("cpu-rt-period", INT, None),
    Flag("cpu-rt-runtime", INT, None),
    Flag("cpuset-cpus", STR, None),
    Flag("cpuset-mems", STR, None),
    Flag("cpu-idle", INT, None),
    Flag("cpu-burst", INT, None),
    Flag("memory", STR, None),
    Flag("memory-reservation", STR, None),
    Flag("memory-swap", STR, None),
    Flag("kernel-memory", STR, None),
    Flag("kernel-memory-tcp", STR, None),
    Flag("pids-limit", INT, None),
    Flag("l3-cache-schema", STR, None),
    Flag("mem-bw-schema", STR, None),
)


def _bytes(text, flag):
    """runc accepts sizes like 512m; -1 means unlimited."""
    t = text.strip().lower()
    if t == "-1":
        return -1
    mult = 1
    for suffix, m in (("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40)):
        if t.endswith(suffix + "b") or t.endswith(suffix):
            t = t[: -len(suffix + "b")] if t.endswith(suffix + "b") else t[:-1]
            mult = m
            break
    try:
        return int(float(t) * mult)
    except ValueError:
        raise UsageError(f"invalid value for --{flag}: {text!r}") from None


def _resources_from_flags(opts):
    """The LinuxResources object of update's flags: --resources (a file or
    - for stdin) with the single-value flags on top."""
    res = {}
    if opts["resources"] is not None:
        from ..config.validate import parse_json

        src = opts["resources"]
        if src == "-":
            data = sys.stdin.buffer.read()
        else:
            with open(src, "rb") as f:
                data = f.read()
        res = parse_json(data, label="resources")
        if not isinstance(res, dict):
            raise PyruncError("resources: must be a JSON object (LinuxResources)")
    mem = {}
    for flag, key in (
        ("memory", "limit"),
        ("memory_reservation", "reservation"),
        ("memory_swap", "swap"),
        ("kernel_memory", "kernel"),
        ("kernel_memory_tcp", "kernelTCP"),
    ):
        if opts[flag] is not None:
            mem[key] = _bytes(opts[flag], flag.replace("_", "-"))
    if mem:
        res.setdefault("memory", {}).update(mem)
    cpu = {}
    for flag, key in (
        ("cpu_period", "period"),
        ("cpu_quota", "quota"),
        ("cpu_share", "shares"),
        ("cpu_rt_period", "realtimePeriod"),
        ("cpu_rt_runtime", "realtimeRuntime"),
        ("cpuset_cpus", "cpus"),
        ("cpuset_mems", "mems"),
        ("cpu_idle", "idle"),
        ("cpu_burst", "burst"),
    ):
        if opts[flag] is not None:
            cpu[key] = opts[flag]
    if cpu:
        res.setdefault("cpu", {}).update(cpu)
    if opts["blkio_weight"] is not None:
        res.setdefault("blockIO", {})["weight"] = opts["blkio_weight"]
    if opts["pids_limit"] is not None:
        res["pids"] = {"limit": opts["pids_limit"]}
    return res


def cmd_update(g, argv):
    opts, args = parse(UPDATE_FLAGS, argv)
    cid = _one_id(args, "update")
    rt = g.runtime()
    rt.store.load(cid)  # "container does not exist" before reading --resources
    rt.update(cid, _resources_from_flags(opts))
    return 0


def cmd_events(g, argv):
    opts, args = parse(
        (
            Flag("interval", STR, "5s", "stats collection interval"),
            Flag("stats", BOOL, False, "display the container's stats then exit"),
        ),
        argv,
    )
    from ..fastjson import dumps  # json.dumps, without the json package (~5 ms)

    cid = _one_id(args, "events")
    rt = g.runtime()
    if opts["stats"]:
        sys.stdout.write(dumps(rt.stats(cid).to_dict()) + "\n")
        return 0
    for event in rt.events(cid, _duration(opts["interval"])):
        sys.stdout.write(dumps(event.to_dict()) + "\n")
        sys.stdout.flush()
    return 0


def _duration(text):
    """Go durations as runc takes them: 5s, 500ms, 1m, 1m30s."""
    total, num = 0.0, ""
    units = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = text[i : i + 2] if text[i : i + 2] in units else ch
        if unit not in units or not num:
            raise UsageError(f"invalid duration {text!r}")
        total += float(num) * units[unit]
        num = ""
        i += len(unit)
    if num or total <= 0:
        raise UsageError(f"invalid duration {text!r}: must be positive with a unit")
    return total
