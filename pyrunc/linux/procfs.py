"""One parser per kernel file of /proc (and the /sys lists in its format).

Every module that reads mountinfo, a cgroup membership, a status field or a
CPU/node list goes through here, so each format is parsed (and unescaped)
the same way everywhere.  Imported on every runtime invocation through the
cgroups package, so it imports nothing those commands have not loaded.
"""

from pyrunc.lightos import fsdecode, read_file

# the ranges a cpu or node list may span ("0-4294967295" would be a huge set)
_MAX_RANGE = 1 << 16


def read_text(path: str) -> str:
    """The whole file, decoded as a path is (the kernel's files hold paths:
    bytes that are not UTF-8 come back as ``os.fsdecode`` gives them), read
    with the few system calls of ``lightos.read_file``."""
    return fsdecode(read_file(path))


# --------------------------------------------------------------------------
# /proc/<pid>/mountinfo


def unescape(field: str) -> str:
    """Undo mountinfo's octal escapes: ``\\040`` space, ``\\011`` tab,
    ``\\012`` newline, ``\\134`` backslash (any ``\\ooo`` in fact)."""
    if "\\" not in field:
        return field
    out, i, n = [], 0, len(field)
    while i < n:
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str, where=None) -> list[dict]:
    """/proc/<pid>/mountinfo -> one dict per mount, in mount order:
    id, parent (ints), dev, root, mountpoint, options (list), optional (the
    tagged fields before the ``-`` separator: ``shared:5``, ``master:2``...),
    fstype, source, super_options (list).  Paths are unescaped; lines the
    kernel could not have written are skipped.  ``where``: only the mounts
    whose (unescaped) mount point it accepts; the others cost a split and a
    call, not a dict (a busy host has hundreds of mounts, ~3 us each)."""
    mounts = []
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) < 9:  # the fewest a mount has: 6, "-", type, source
            continue
        mountpoint = unescape(fields[4])
        if where is not None and not where(mountpoint):
            continue
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        right = fields[sep + 1 :]
        if len(right) < 2:
            continue
        try:
            mount_id, parent = int(fields[0]), int(fields[1])
        except ValueError:
            continue
        mounts.append(
            {
                "id": mount_id,
                "parent": parent,
                "dev": fields[2],
                "root": unescape(fields[3]),
                "mountpoint": mountpoint,
                "options": fields[5].split(","),
                "optional": fields[6:sep],
                "fstype": right[0],
                "source": unescape(right[1]),
                "super_options": right[2].split(",") if len(right) > 2 else [],
            }
        )
    return mounts


def mounts(pid="self", where=None) -> list[dict]:
    """``parse_mountinfo`` of /proc/<pid>/mountinfo (``where``: see there)."""
    return parse_mountinfo(read_text(f"/proc/{pid}/mountinfo"), where)


# --------------------------------------------------------------------------
# /proc/<pid>/cgroup


def parse_cgroup(text: str) -> list[tuple[str, str, str]]:
    """/proc/<pid>/cgroup -> [(hierarchy id, controllers, path)]; the v2
    line is ("0", "", path); named v1 hierarchies keep ``name=x``."""
    out = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            out.append((parts[0], parts[1], parts[2]))
    return out


def cgroups(pid="self") -> list[tuple[str, str, str]]:
    """``parse_cgroup`` of /proc/<pid>/cgroup."""
    return parse_cgroup(read_text(f"/proc/{pid}/cgroup"))


# --------------------------------------------------------------------------
# /proc/<pid>/status


def parse_status(text: str) -> dict[str, str]:
    """/proc/<pid>/status -> {field: value} (values stripped, as text)."""
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def status(pid="self") -> dict[str, str]:
    """``parse_status`` of /proc/<pid>/status."""
    return parse_status(read_text(f"/proc/{pid}/status"))


def cap_mask(value: str) -> set[int]:
    """A status capability field (``CapBnd: 000001ffffffffff``) -> the set of
    capability numbers in it."""
    mask = int(value, 16)
    return {n for n in range(mask.bit_length()) if mask >> n & 1}


# --------------------------------------------------------------------------
# cpu and memory-node lists (cpuset.cpus, /sys/devices/system/cpu/online,
# Cpus_allowed_list, the spec's execCPUAffinity and memoryPolicy.nodes)


# mount options of a cgroup v1 mount that are not controller names
_CGROUP_V1_NOT_CONTROLLERS = frozenset(
    (
        "rw",
        "ro",
        "noprefix",
        "clone_children",
        "xattr",
        "cpuset_v2_mode",
        "favordynmods",
        "nosuid",
        "nodev",
        "noexec",
        "relatime",
    )
)


def cgroup_v1_hierarchy_names(mount: dict) -> list[str]:
    """What names a cgroup v1 hierarchy among a mount's super options (a
    ``mounts()`` entry): its controllers, ``name=...`` and
    ``release_agent=...`` (callers keep what they need)."""
    return [o for o in mount["super_options"] if o not in _CGROUP_V1_NOT_CONTROLLERS]


def parse_cpu_list(text: str) -> list[int]:
    """``"0-3,5"`` -> [0, 1, 2, 3, 5] (in the list's order; empty text, or a
    trailing newline, is fine).  ValueError when malformed."""
    out: list[int] = []
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        lo, hi = lo.strip(), hi.strip()
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise ValueError(f"{text!r} is not a list like 0-3,7")
        first = int(lo)
        last = int(hi) if dash else first
        if last < first or last - first > _MAX_RANGE:
            raise ValueError(f"{text!r} is not a list like 0-3,7")
        out.extend(range(first, last + 1))
    return out


# --------------------------------------------------------------------------
# /proc/sys


def sysctl_path(key: str) -> str:
    """``net.ipv4.ip_forward`` -> ``/proc/sys/net/ipv4/ip_forward``."""
    return "/proc/sys/" + key.replace(".", "/")


def cap_last_cap() -> int | None:
    """/proc/sys/kernel/cap_last_cap, or None when it cannot be read."""
    try:
        text = read_text("/proc/sys/kernel/cap_last_cap").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
