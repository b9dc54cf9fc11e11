"""Capabilities: the one name <-> number table and the capability sets.

The runtime side converts the spec's names to numbers once (``from_spec``)
and drops what the kernel would refuse (``drop_ungrantable``); the
container side, in the last steps before execve, drops the bounding set
(``drop_bounding_set``, before the uid change) and sets the four
per-process sets (``apply``).  ``inspect`` reads them back with
``names_of_mask``.

The table costs nothing to import (``inspect`` and ``features`` need only
it); the two container-side functions use ``syscalls`` (ctypes), which
``process`` has loaded long before they run, so their import is a lookup.
"""

from .linux import procfs

# Linux capability numbers (include/uapi/linux/capability.h): index = number.
CAP_NAMES = tuple(
    "CAP_" + name
    for name in (
        "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP "
        "LINUX_IMMUTABLE NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER "
        "SYS_MODULE SYS_RAWIO SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE "
        "SYS_RESOURCE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE AUDIT_WRITE AUDIT_CONTROL SETFCAP "
        "MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ PERFMON BPF "
        "CHECKPOINT_RESTORE"
    ).split()
)
CAP_NUMBERS = {name: i for i, name in enumerate(CAP_NAMES)}
SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


def known_cap_count() -> int:
    """Number of capabilities this kernel knows (cap_last_cap + 1)."""
    last = procfs.cap_last_cap()
    return len(CAP_NAMES) if last is None else last + 1


def name_of(number: int) -> str:
    return CAP_NAMES[number] if 0 <= number < len(CAP_NAMES) else f"CAP_{number}"


def names_of_mask(mask: int) -> list[str]:
    """A kernel capability mask -> names, lowest number first (``CAP_<n>``
    for numbers this table does not know)."""
    return [name_of(i) for i in range(64) if mask >> i & 1]


def mask_of(numbers) -> int:
    mask = 0
    for n in numbers:
        mask |= 1 << n
    return mask


# --- the runtime side, before any fork -------------------------------------


def from_spec(caps, warn):
    """``process.capabilities`` (names per set) -> {set: [numbers]}, with
    what the kernel would refuse dropped (``drop_ungrantable``)."""
    if caps is None:
        return None
    limit = known_cap_count()
    out = {}
    for set_name in SETS:
        nums = []
        for name in caps.get(set_name) or ():
            n = CAP_NUMBERS.get(name)
            if n is None or n >= limit:
                # spec 1.1: unknown or ungrantable capabilities are warned about, not fatal
                warn(f"capability {name!r} in process.capabilities.{set_name} is not known to this kernel; ignored")
                continue
            if n not in nums:
                nums.append(n)
        out[set_name] = nums
    return drop_ungrantable(out, warn)


def own_bounding_set(cap_count):
    """Capability numbers in this process's bounding set: the most any
    process it creates (in any user namespace) can ever hold."""
    value = procfs.status().get("CapBnd")
    if value is None:
        return set(range(cap_count))
    return {n for n in procfs.cap_mask(value) if n < cap_count}


def drop_ungrantable(caps, warn, debug=None):
    """Remove from the converted capability sets (``{set: [numbers]}``) what
    the kernel would refuse, so that the user process gets exactly the rest
    (spec: warn, don't fail).

    * not in the runtime's own bounding set: no process it starts can hold
      it -> warning;
    * ambient but not both permitted and inheritable: the kernel refuses to
      raise it (capabilities(7)); runc's default spec asks for exactly this,
      so it is a debug line, not a warning."""
    if caps is None:
        return None
    bounding = own_bounding_set(known_cap_count())
    out = {}
    for set_name, nums in caps.items():
        kept = []
        for n in nums:
            if n in bounding:
                kept.append(n)
            else:
                warn(
                    f"capability {name_of(n)!r} in process.capabilities.{set_name} cannot be "
                    "granted: it is not in the runtime's bounding set; ignored"
                )
        out[set_name] = kept
    ambient = []
    for n in out.get("ambient", ()):
        if n in out.get("permitted", ()) and n in out.get("inheritable", ()):
            ambient.append(n)
        elif debug is not None:
            debug(f"ambient capability {name_of(n)} not raised: it is not both permitted and inheritable")
    if "ambient" in out:
        out["ambient"] = ambient
    return out


# --- the container side, the last steps before execve ----------------------


def drop_bounding_set(keep_nums, cap_count):
    from .linux import syscalls as sc

    keep = set(keep_nums)
    for n in range(cap_count):
        if n not in keep:
            try:
                sc.prctl(sc.PR_CAPBSET_DROP, n)
            except OSError as e:
                if e.errno != 22:  # EINVAL: not known to this kernel
                    raise


def apply(caps):
    """The four per-process sets, exactly as configured (the bounding set is
    dropped separately, before the uid change)."""
    from .linux import syscalls as sc

    sc.capset(
        mask_of(caps.get("effective", ())), mask_of(caps.get("permitted", ())), mask_of(caps.get("inheritable", ()))
    )
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    for n in caps.get("ambient", ()):
        # drop_ungrantable kept only ambient caps in permitted+inheritable
        sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, n)
