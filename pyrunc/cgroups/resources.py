"""Pure logic on OCI LinuxResources: validation, v1->v2 conversions, device rules.

No file system access here, so everything is unit-testable.
"""

import math

from pyrunc.errors import CgroupError

F = "linux.resources"

# Top-level LinuxResources keys a manager understands.
KNOWN_KEYS = {"devices", "memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "rdma", "unified"}


def check_object(resources, field=F) -> dict:
    if resources is None:
        return {}
    if not isinstance(resources, dict):
        raise CgroupError(f"{field}: must be an object")
    return resources


def get_int(obj: dict, key: str, field: str, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
    """obj[key] as int, None when absent/null; bools and non-integers are errors."""
    v = obj.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise CgroupError(f"{field}.{key}: {v!r} is not an integer")
    if minimum is not None and v < minimum:
        raise CgroupError(f"{field}.{key}: {v} is below the minimum {minimum}")
    if maximum is not None and v > maximum:
        raise CgroupError(f"{field}.{key}: {v} is above the maximum {maximum}")
    return v


def get_bool(obj: dict, key: str, field: str) -> bool | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, bool):
        raise CgroupError(f"{field}.{key}: {v!r} is not a boolean")
    return v


def get_str(obj: dict, key: str, field: str) -> str | None:
    v = obj.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise CgroupError(f"{field}.{key}: {v!r} is not a string")
    return v


def get_list(obj: dict, key: str, field: str) -> list:
    v = obj.get(key)
    if v is None:
        return []
    if not isinstance(v, list):
        raise CgroupError(f"{field}.{key}: must be an array")
    return v


# --- conversions v1 -> v2 (the formulas runc uses) --------------------------


def cpu_shares_to_weight(shares: int) -> int:
    """cpu.shares [2..262144] (default 1024) -> cpu.weight [1..10000] (default 100).

    A quadratic in log space through (2, 1), (1024, 100) and (262144, 10000),
    so that the default maps to the default (the old linear formula gave 39).
    0 means "unset".
    """
    if shares == 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    lg = math.log2(shares)
    exponent = (lg * lg + 125 * lg) / 612.0 - 7.0 / 34.0
    return int(math.ceil(10**exponent))


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight [10..1000] -> io.weight [1..10000]; 0 means unset."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def swap_to_v2(swap: int, limit: int | None) -> int | None:
    """OCI ``memory.swap`` is memory+swap (v1 memsw); v2's memory.swap.max is swap alone.

    Returns the memory.swap.max value (-1 = max) or None for "do not write".
    """
    limit = limit or 0
    if limit == -1 and swap == 0:
        return -1  # unlimited memory and swap left unset: unlimited swap too, as on v1
    if swap == -1:
        return -1
    if swap == 0:
        return None
    if limit in (0, -1):
        raise CgroupError(f"{F}.memory.swap: a swap limit needs a memory limit")
    if swap < limit:
        raise CgroupError(f"{F}.memory.swap: {swap} must be >= memory.limit ({limit})")
    return swap - limit


_PAGE_SIZE = r"^[1-9][0-9]*[KMGTP]?B$"


def check_page_size(page_size, field: str) -> str:
    import re  # here, not at import: `delete` and `kill` load this module too

    if not isinstance(page_size, str) or not re.match(_PAGE_SIZE, page_size):
        raise CgroupError(f"{field}.pageSize: {page_size!r} is not a size like 2MB, 1GB or 64KB")
    return page_size


def v2_limit(value: int) -> str:
    return "max" if value == -1 else str(value)


# --- device rules -----------------------------------------------------------

WILDCARD = -1

# Allowed on top of the container's own rules, in this order (runc's list):
# mknod of any char/block device, the standard character devices, the pty
# master multiplexer and slaves, and tun/tap.
DEFAULT_ALLOWED_DEVICES = [
    {"allow": True, "type": "c", "major": WILDCARD, "minor": WILDCARD, "access": "m"},
    {"allow": True, "type": "b", "major": WILDCARD, "minor": WILDCARD, "access": "m"},
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},  # /dev/null
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},  # /dev/random
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},  # /dev/full
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},  # /dev/tty
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},  # /dev/zero
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},  # /dev/urandom
    {"allow": True, "type": "c", "major": 136, "minor": WILDCARD, "access": "rwm"},  # /dev/pts/*
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},  # /dev/ptmx
    {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"},  # /dev/net/tun
]


class DeviceRule:
    """One normalized rule: type in 'a','b','c'; major/minor int or WILDCARD; access ⊆ 'rwm'."""

    __slots__ = ("allow", "type", "major", "minor", "access")

    def __init__(self, allow, type_, major, minor, access):
        self.allow, self.type, self.major, self.minor, self.access = allow, type_, major, minor, access

    def is_everything(self) -> bool:
        return self.type == "a" and self.major == WILDCARD and self.minor == WILDCARD and set(self.access) == set("rwm")

    def v1_line(self) -> str:
        """devices.allow/deny syntax: "c 1:3 rwm"."""
        if self.is_everything():
            return "a"

        def num(n):
            return "*" if n == WILDCARD else str(n)

        return f"{self.type} {num(self.major)}:{num(self.minor)} {self.access}"

    def __eq__(self, other):
        return isinstance(other, DeviceRule) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    def __repr__(self):
        return f"DeviceRule({'allow' if self.allow else 'deny'} {self.v1_line()})"


def normalize_device_rules(rules, field: str = F + ".devices") -> list[DeviceRule]:
    """OCI LinuxDeviceCgroup list -> DeviceRule list.

    A rule of type "a" that is not the full wildcard is split into "b" and "c"
    rules: the kernel's v1 interface treats any "a" line as "reset to allow or
    deny everything".
    """
    if rules is None:
        return []
    if not isinstance(rules, list):
        raise CgroupError(f"{field}: must be an array")
    out = []
    for i, r in enumerate(rules):
        f = f"{field}[{i}]"
        if hasattr(r, "to_dict"):  # a config.model.DeviceRule
            r = r.to_dict()
        if not isinstance(r, dict):
            raise CgroupError(f"{f}: must be an object")
        allow = r.get("allow")
        if not isinstance(allow, bool):
            raise CgroupError(f"{f}.allow: is required and must be a boolean")
        type_ = r.get("type") or "a"
        if type_ not in ("a", "b", "c", "u", "p"):
            raise CgroupError(f"{f}.type: {type_!r} is not one of a, b, c")
        if type_ in ("u", "p"):
            raise CgroupError(f"{f}.type: {type_!r} devices cannot be used in cgroup rules")
        nums = []
        for key in ("major", "minor"):
            v = r.get(key)
            if v is None:
                v = WILDCARD
            elif isinstance(v, bool) or not isinstance(v, int) or v < WILDCARD:
                raise CgroupError(f"{f}.{key}: {v!r} is not a device number")
            nums.append(v)
        access = r.get("access")
        if access is None or access == "":
            access = "rwm"
        if not isinstance(access, str) or not set(access) <= set("rwm"):
            raise CgroupError(f"{f}.access: {access!r} must be made of r, w and m")
        access = "".join(c for c in "rwm" if c in access)
        rule = DeviceRule(allow, type_, nums[0], nums[1], access)
        if type_ == "a" and not rule.is_everything():
            out.append(DeviceRule(allow, "b", nums[0], nums[1], access))
            out.append(DeviceRule(allow, "c", nums[0], nums[1], access))
        else:
            out.append(rule)
    return out


def effective_device_rules(spec_rules) -> tuple[bool, list[DeviceRule]]:
    """(default_allow, rules) for the container.

    Starts from deny-everything, applies the container's rules then runc's
    default allow-list (later rules win); everything before the last
    allow/deny-everything rule is irrelevant and dropped.
    """
    rules = normalize_device_rules(spec_rules) + normalize_device_rules(DEFAULT_ALLOWED_DEVICES)
    default_allow = False
    start = 0
    for i, r in enumerate(rules):
        if r.is_everything():
            default_allow = r.allow
            start = i + 1
    return default_allow, rules[start:]


def device_allowed(
    default_allow: bool, rules: list[DeviceRule], type_: str, major: int, minor: int, access: str
) -> bool:
    """Reference semantics of a rule list (the last matching rule decides), used by
    tests to check the eBPF program and v1 lists against the same truth."""
    for r in reversed(rules):
        if r.type != "a" and r.type != type_:
            continue
        if r.major != WILDCARD and r.major != major:
            continue
        if r.minor != WILDCARD and r.minor != minor:
            continue
        if r.allow:
            if set(access) <= set(r.access):
                return True
        elif set(access) & set(r.access):
            return False
    return default_allow


# --- the typed record (config.model.Resources), validated once -----------------


def _dev_numbers(entry, field) -> tuple[int, int]:
    if not isinstance(entry, dict):
        raise CgroupError(f"{field}: must be an object")
    maj = get_int(entry, "major", field, minimum=0)
    mnr = get_int(entry, "minor", field, minimum=0)
    if maj is None or mnr is None:
        raise CgroupError(f"{field}: major and minor are required")
    return maj, mnr


def parse_resources(resources, field=F):
    """OCI LinuxResources -> ``config.model.Resources``, every value checked
    (CgroupError naming the field) once, at conversion: the managers take
    the record as it is.  None stays None."""
    from pyrunc.config import model as M

    if resources is None:
        return None
    r = check_object(resources, field)
    kw: dict[str, object] = {}
    if "devices" in r and r["devices"] is not None:
        normalize_device_rules(r["devices"], field + ".devices")  # the checks; the rules as given
        kw["devices"] = [
            M.DeviceRule(
                allow=d["allow"], type=d.get("type"), major=d.get("major"), minor=d.get("minor"), access=d.get("access")
            )
            for d in r["devices"]
        ]
    if r.get("memory") is not None:
        kw["memory"] = _memory(check_object(r["memory"], field + ".memory"), field + ".memory")
    if r.get("cpu") is not None:
        kw["cpu"] = _cpu(check_object(r["cpu"], field + ".cpu"), field + ".cpu")
    if r.get("pids") is not None:
        pids = check_object(r["pids"], field + ".pids")
        kw["pids"] = M.Pids(limit=get_int(pids, "limit", field + ".pids"))
    if r.get("blockIO") is not None:
        kw["blockIO"] = _block_io(check_object(r["blockIO"], field + ".blockIO"), field + ".blockIO")
    if r.get("hugepageLimits") is not None:
        kw["hugepageLimits"] = _hugepages(get_list(r, "hugepageLimits", field), field + ".hugepageLimits")
    if r.get("network") is not None:
        kw["network"] = _network(check_object(r["network"], field + ".network"), field + ".network")
    if r.get("rdma") is not None:
        kw["rdma"] = _rdma(check_object(r["rdma"], field + ".rdma"), field + ".rdma")
    if r.get("unified") is not None:
        unified = check_object(r["unified"], field + ".unified")
        for key, value in unified.items():
            ff = f"{field}.unified.{key}"
            if not isinstance(value, str):
                raise CgroupError(f"{ff}: value must be a string")
            if "/" in key or key in ("", ".", "..") or key.startswith("cgroup."):
                if key not in ("cgroup.max.depth", "cgroup.max.descendants", "cgroup.type"):
                    raise CgroupError(f"{ff}: not a cgroup interface file the container may set")
        kw["unified"] = dict(unified)
    return M.Resources(**kw)


def _memory(mem, f):
    from pyrunc.config.model import Memory

    return Memory(
        limit=get_int(mem, "limit", f, minimum=-1),
        swap=get_int(mem, "swap", f, minimum=-1),
        reservation=get_int(mem, "reservation", f, minimum=-1),
        swappiness=get_int(mem, "swappiness", f, minimum=0, maximum=100),
        kernelTCP=get_int(mem, "kernelTCP", f, minimum=-1),
        kernel=get_int(mem, "kernel", f, minimum=-1),
        disableOOMKiller=get_bool(mem, "disableOOMKiller", f),
        useHierarchy=get_bool(mem, "useHierarchy", f),
        checkBeforeUpdate=get_bool(mem, "checkBeforeUpdate", f),
    )


def _cpu(cpu, f):
    from pyrunc.config.model import Cpu

    out = Cpu(
        shares=get_int(cpu, "shares", f, minimum=0),
        quota=get_int(cpu, "quota", f, minimum=-1),
        period=get_int(cpu, "period", f, minimum=0),
        burst=get_int(cpu, "burst", f, minimum=0),
        realtimeRuntime=get_int(cpu, "realtimeRuntime", f, minimum=-1),
        realtimePeriod=get_int(cpu, "realtimePeriod", f, minimum=0),
        idle=get_int(cpu, "idle", f, minimum=0, maximum=1),
        cpus=get_str(cpu, "cpus", f),
        mems=get_str(cpu, "mems", f),
    )
    if out.burst and out.quota and out.quota > 0 and out.burst > out.quota:
        raise CgroupError(f"{f}.burst: {out.burst} must not be larger than quota ({out.quota})")
    return out


def _block_io(bio, f):
    from pyrunc.config.model import BlockIO, ThrottleDevice, WeightDevice

    kw: dict[str, object] = dict(
        weight=get_int(bio, "weight", f, minimum=0, maximum=1000),
        leafWeight=get_int(bio, "leafWeight", f, minimum=0, maximum=1000),
    )
    if bio.get("weightDevice") is not None:
        devs = []
        for i, wd in enumerate(get_list(bio, "weightDevice", f)):
            ff = f"{f}.weightDevice[{i}]"
            maj, mnr = _dev_numbers(wd, ff)
            devs.append(
                WeightDevice(
                    major=maj,
                    minor=mnr,
                    weight=get_int(wd, "weight", ff, minimum=0, maximum=1000),
                    leafWeight=get_int(wd, "leafWeight", ff, minimum=0, maximum=1000),
                )
            )
        kw["weightDevice"] = devs
    for key in BlockIO.THROTTLE_KEYS:
        if bio.get(key) is None:
            continue
        entries = []
        for i, td in enumerate(get_list(bio, key, f)):
            ff = f"{f}.{key}[{i}]"
            maj, mnr = _dev_numbers(td, ff)
            rate = get_int(td, "rate", ff, minimum=0)
            if rate is None:
                raise CgroupError(f"{ff}.rate: is required")
            entries.append(ThrottleDevice(major=maj, minor=mnr, rate=rate))
        kw[key] = entries
    return BlockIO(**kw)


def _hugepages(limits, f):
    from pyrunc.config.model import HugepageLimit

    out = []
    for i, h in enumerate(limits):
        ff = f"{f}[{i}]"
        if not isinstance(h, dict):
            raise CgroupError(f"{ff}: must be an object")
        size = check_page_size(h.get("pageSize"), ff)
        limit = get_int(h, "limit", ff, minimum=0)
        if limit is None:
            raise CgroupError(f"{ff}.limit: is required")
        out.append(HugepageLimit(pageSize=size, limit=limit))
    return out


def _network(net, f):
    from pyrunc.config.model import Network, NetPriority

    prios = None
    if net.get("priorities") is not None:
        prios = []
        for i, p in enumerate(get_list(net, "priorities", f)):
            ff = f"{f}.priorities[{i}]"
            name = get_str(p, "name", ff) if isinstance(p, dict) else None
            prio = get_int(p, "priority", ff, minimum=0) if isinstance(p, dict) else None
            if not name or prio is None:
                raise CgroupError(f"{ff}: needs a name and a priority")
            prios.append(NetPriority(name=name, priority=prio))
    return Network(classID=get_int(net, "classID", f, minimum=0, maximum=0xFFFFFFFF), priorities=prios)


def _rdma(rdma, f):
    from pyrunc.config.model import RdmaLimit

    out = {}
    for dev, lim in rdma.items():
        ff = f"{f}.{dev}"
        if not isinstance(lim, dict):
            raise CgroupError(f"{ff}: must be an object")
        h = get_int(lim, "hcaHandles", ff, minimum=0)
        o = get_int(lim, "hcaObjects", ff, minimum=0)
        if h is None and o is None:
            raise CgroupError(f"{ff}: needs hcaHandles or hcaObjects")
        out[dev] = RdmaLimit(hcaHandles=h, hcaObjects=o)
    return out


def rdma_lines(rdma) -> list:
    """{device: RdmaLimit} -> [("mlx5_1 hca_handle=3 hca_object=max", field)]."""
    out = []
    for dev, lim in rdma.items():
        parts = [dev]
        if lim.hcaHandles is not None:
            parts.append(f"hca_handle={lim.hcaHandles}")
        if lim.hcaObjects is not None:
            parts.append(f"hca_object={lim.hcaObjects}")
        out.append((" ".join(parts), f"{F}.rdma.{dev}"))
    return out


def as_record(resources):
    """The managers' input: a Resources record as it is; a LinuxResources
    dict (tests, callers outside the model) parsed first; None -> empty."""
    from pyrunc.config.model import Resources

    if resources is None:
        return Resources()
    if isinstance(resources, Resources):
        return resources
    return parse_resources(resources)
