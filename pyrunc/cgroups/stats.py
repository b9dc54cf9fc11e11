"""The ``data`` object of ``events --stats``, shaped like runc's JSON.

Go's encoding drops zero numbers/empty lists marked omitempty but always
writes nested structs; ``prune`` reproduces that so output matches runc's.
"""

# scalar keys that Go writes even when zero (no omitempty)
_ALWAYS = {
    "kernel",
    "user",
    "cpu_exclusive",
    "mem_hardwall",
    "mem_exclusive",
    "memory_migrate",
    "memory_spread_page",
    "memory_spread_slab",
    "memory_pressure",
    "sched_load_balance",
    "sched_relax_domain_level",
    "limit",
    "failcnt",
}
# dict-valued keys that are omitempty maps/pointers in Go (the others are structs, always written)
_OMIT_EMPTY_DICTS = {"raw", "psi"}


def memory_entry(limit=0, usage=0, max_=0, failcnt=0) -> dict:
    return {"limit": limit, "usage": usage, "max": max_, "failcnt": failcnt}


def skeleton() -> dict:
    return {
        "cpu": {
            "usage": {"total": 0, "percpu": [], "percpu_kernel": [], "percpu_user": [], "kernel": 0, "user": 0},
            "throttling": {"periods": 0, "throttledPeriods": 0, "throttledTime": 0},
        },
        "cpuset": {
            "cpus": [],
            "cpu_exclusive": 0,
            "mems": [],
            "mem_hardwall": 0,
            "mem_exclusive": 0,
            "memory_migrate": 0,
            "memory_spread_page": 0,
            "memory_spread_slab": 0,
            "memory_pressure": 0,
            "sched_load_balance": 0,
            "sched_relax_domain_level": 0,
        },
        "memory": {
            "cache": 0,
            "usage": memory_entry(),
            "swap": memory_entry(),
            "kernel": memory_entry(),
            "kernelTCP": memory_entry(),
            "raw": {},
            "event_count": {"low": 0, "high": 0, "max": 0, "oom": 0, "oom_kill": 0},
        },
        "pids": {"current": 0, "limit": 0},
        "blkio": {},
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": None,
    }


def prune(obj: dict, top: bool = True, always=_ALWAYS) -> dict:
    """Drop zero/empty values the way Go's omitempty does (see _ALWAYS)."""
    out: dict[str, object] = {}
    for k, v in obj.items():
        if isinstance(v, dict):
            # pids.limit is omitempty although other "limit"s are not
            pv = v if k in ("event_count", "psi") else prune(v, False, set() if k == "pids" else _ALWAYS)
            if k in _OMIT_EMPTY_DICTS and not pv:
                continue
            out[k] = pv
        elif isinstance(v, list):
            if v or top:
                out[k] = [prune(x, False) if isinstance(x, dict) else x for x in v]
        elif top or k in always or v not in (0, "", None):
            out[k] = v
    return out


def parse_psi(path: str) -> dict | None:
    """cpu.pressure-style file -> {"some": {...}, "full": {...}} or None."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    out = {}
    for line in lines:
        kind, *fields = line.split()
        d = {}
        for fld in fields:
            k, _, v = fld.partition("=")
            d[k] = int(v) if k == "total" else float(v)
        out[kind] = d
    for kind in ("some", "full"):
        out.setdefault(kind, {"avg10": 0.0, "avg60": 0.0, "avg300": 0.0, "total": 0})
    return out


def blkio_entries(lines, ops=True) -> list[dict]:
    """v1 blkio files: "8:0 Read 123" (or "8:0 123") lines -> BlkioEntry list."""
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) < 2 or ":" not in parts[0]:
            continue
        major, _, minor = parts[0].partition(":")
        if ops and len(parts) == 3:
            out.append({"major": int(major), "minor": int(minor), "op": parts[1], "value": int(parts[2])})
        elif len(parts) == 2:
            out.append({"major": int(major), "minor": int(minor), "op": "", "value": int(parts[1])})
    return out
