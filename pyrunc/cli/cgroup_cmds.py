"""pause, resume, ps, update, events: the verbs that work on the
container's cgroup (cli-contract.md §1.1, §5.3, §5.4)."""

import os
import sys
import time

from ..errors import ContainerNotRunning, InvalidState, PyruncError, UsageError
from .flags import BOOL, INT, STR, Flag, parse


def _load(g, args, verb):
    if len(args) != 1:
        raise UsageError(f'"{verb}" requires exactly 1 argument')
    from ..container import Container
    return Container.load(g.store(), args[0])


def _manager(c):
    mgr = c.cgroup_manager()
    if mgr is None or not mgr.exists():
        raise PyruncError("container's cgroup does not exist")
    return mgr


def cmd_pause(g, argv):
    _, args = parse((), argv)
    store = g.store()
    with store.lock(args[0] if args else ""):
        c = _load(g, args, "pause")
        status = c.status
        if status not in ("running", "created"):
            raise ContainerNotRunning()
        _manager(c).freeze()
        c.state.paused = True
        store.save(c.state)
    return 0


def cmd_resume(g, argv):
    _, args = parse((), argv)
    store = g.store()
    with store.lock(args[0] if args else ""):
        c = _load(g, args, "resume")
        if c.status != "paused":
            raise InvalidState("container not paused")
        _manager(c).thaw()
        c.state.paused = False
        store.save(c.state)
    return 0


def cmd_ps(g, argv):
    opts, args = parse((Flag("format|f", STR, "table", "table or json"),), argv,
                       stop_at_positional=True)
    if not args:
        raise UsageError('"ps" requires a minimum of 1 argument')
    c = _load(g, args[:1], "ps")
    # A stopped container is listed too, as runc does: whatever is left in
    # its cgroup (normally nothing), not an error.
    mgr = c.cgroup_manager()
    pids = mgr.pids() if mgr is not None and mgr.exists() else []
    if opts["format"] == "json":
        from ..fastjson import dumps
        # runc's encoding: one compact line; no pids is a nil slice, `null`
        sys.stdout.write((dumps(pids, compact=True) if pids else "null") + "\n")
        return 0
    if opts["format"] != "table":
        raise UsageError(f"invalid format option {opts['format']!r}")
    import subprocess
    ps_args = args[1:] or ["-ef"]
    out = subprocess.run(["ps", *ps_args], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
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
    Flag("blkio-weight", INT, None), Flag("cpu-period", INT, None), Flag("cpu-quota", INT, None),
    Flag("cpu-share", INT, None), Flag("cpu-rt-period", INT, None), Flag("cpu-rt-runtime", INT, None),
    Flag("cpuset-cpus", STR, None), Flag("cpuset-mems", STR, None), Flag("cpu-idle", INT, None),
    Flag("cpu-burst", INT, None),
    Flag("memory", STR, None), Flag("memory-reservation", STR, None), Flag("memory-swap", STR, None),
    Flag("kernel-memory", STR, None), Flag("kernel-memory-tcp", STR, None),
    Flag("pids-limit", INT, None), Flag("l3-cache-schema", STR, None), Flag("mem-bw-schema", STR, None),
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


def cmd_update(g, argv):
    opts, args = parse(UPDATE_FLAGS, argv)
    store = g.store()
    if len(args) != 1:
        raise UsageError('"update" requires exactly 1 argument')
    with store.lock(args[0]):
        c = _load(g, args, "update")
        if c.status == "stopped":
            raise ContainerNotRunning()
        res = {}
        if opts["resources"] is not None:
            from ..config.validate import parse_json
            src = opts["resources"]
            data = sys.stdin.buffer.read() if src == "-" else open(src, "rb").read()
            res = parse_json(data, label="resources")
            if not isinstance(res, dict):
                raise PyruncError("resources: must be a JSON object (LinuxResources)")
        mem = {}
        for flag, key in (("memory", "limit"), ("memory_reservation", "reservation"),
                          ("memory_swap", "swap"), ("kernel_memory", "kernel"),
                          ("kernel_memory_tcp", "kernelTCP")):
            if opts[flag] is not None:
                mem[key] = _bytes(opts[flag], flag.replace("_", "-"))
        if mem:
            res.setdefault("memory", {}).update(mem)
        cpu = {}
        for flag, key in (("cpu_period", "period"), ("cpu_quota", "quota"), ("cpu_share", "shares"),
                          ("cpu_rt_period", "realtimePeriod"), ("cpu_rt_runtime", "realtimeRuntime"),
                          ("cpuset_cpus", "cpus"), ("cpuset_mems", "mems"), ("cpu_idle", "idle"),
                          ("cpu_burst", "burst")):
            if opts[flag] is not None:
                cpu[key] = opts[flag]
        if cpu:
            res.setdefault("cpu", {}).update(cpu)
        if opts["blkio_weight"] is not None:
            res.setdefault("blockIO", {})["weight"] = opts["blkio_weight"]
        if opts["pids_limit"] is not None:
            res["pids"] = {"limit": opts["pids_limit"]}
        # the update and the container's resources merged, through the converter
        from ..config.convert import merge_resources
        cfg = store.load_config(c.id)
        update, merged = merge_resources(cfg.resources, res)
        _manager(c).set(update)
        # keep the persisted config in step, so `inspect` shows what is asked now
        from ..state import CONFIG_FILE, write_atomic
        from json import dumps
        write_atomic(os.path.join(store.dir(c.id), CONFIG_FILE),
                     dumps(cfg.replace(resources=merged).to_dict()).encode())
    return 0


def cmd_events(g, argv):
    opts, args = parse((Flag("interval", STR, "5s", "stats collection interval"),
                        Flag("stats", BOOL, False, "display the container's stats then exit")), argv)
    from json import dumps
    c = _load(g, args, "events")
    if c.status == "stopped":
        raise ContainerNotRunning(f"container with id {c.id} is not running")
    mgr = _manager(c)
    if opts["stats"]:
        sys.stdout.write(dumps({"type": "stats", "id": c.id, "data": mgr.stats()}) + "\n")
        return 0
    interval = _duration(opts["interval"])
    ooms = mgr.oom_kill_count()
    while True:
        if c.status == "stopped":
            return 0
        n = mgr.oom_kill_count()
        if n > ooms:
            sys.stdout.write(dumps({"type": "oom", "id": c.id}) + "\n")
            ooms = n
        sys.stdout.write(dumps({"type": "stats", "id": c.id, "data": mgr.stats()}) + "\n")
        sys.stdout.flush()
        time.sleep(interval)


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
        unit = text[i:i + 2] if text[i:i + 2] in units else ch
        if unit not in units or not num:
            raise UsageError(f"invalid duration {text!r}")
        total += float(num) * units[unit]
        num = ""
        i += len(unit)
    if num or total <= 0:
        raise UsageError(f"invalid duration {text!r}: must be positive with a unit")
    return total
