"""Host-specific checks of a config: can *this* machine run it?

``pyrunc validate --host-specific`` adds these to the schema and semantic
problems.  A config can be valid by the spec and still impossible here: a
namespace kind the kernel lacks, a cgroup controller that is not mounted, a
capability newer than the kernel, a bind source that does not exist.
``create`` finds the same things later (some of them only in the child,
after namespaces and mounts exist); this module reports them all at once,
before anything is created, one line per problem in the validator's format.

What the host offers is gathered once into :class:`HostFacts` (reads of
/proc and /sys only, no cgroup or namespace is created), so the rules are
pure functions of (config, facts) and unit-testable with made-up facts.

Only well-formed parts of the config are judged (the schema layer reports
the rest), so every accessor here tolerates wrong types.
"""

from __future__ import annotations

from .. import lightos as os  # os's calls without importing os (lightos.py)
import stat

from pyrunc.config.schema import problem_line, render_value
from pyrunc import namespaces
from pyrunc.linux import procfs

__all__ = ["HostFacts", "host_problems"]

LABEL = "config.json"

# cgroup v1 controller and cgroup v2 controller each resources field needs;
# None: that cgroup version cannot apply the field at all.
RESOURCE_CONTROLLERS = {
    # field path (under linux.resources)  (v1 controller, v2 controller)
    ("memory",): ("memory", "memory"),
    ("cpu", "cpus"): ("cpuset", "cpuset"),
    ("cpu", "mems"): ("cpuset", "cpuset"),
    ("cpu", "shares"): ("cpu", "cpu"),
    ("cpu", "quota"): ("cpu", "cpu"),
    ("cpu", "period"): ("cpu", "cpu"),
    ("cpu", "burst"): ("cpu", "cpu"),
    ("cpu", "idle"): ("cpu", "cpu"),
    ("cpu", "realtimeRuntime"): ("cpu", None),
    ("cpu", "realtimePeriod"): ("cpu", None),
    ("pids",): ("pids", "pids"),
    ("blockIO",): ("blkio", "io"),
    ("hugepageLimits",): ("hugetlb", "hugetlb"),
    ("network", "classID"): ("net_cls", None),
    ("network", "priorities"): ("net_prio", None),
    ("rdma",): ("rdma", "rdma"),
    ("devices",): ("devices", None),  # v2: an eBPF program, no controller
}


def _read(path: str) -> str | None:
    try:
        return procfs.read_text(path)
    except OSError:
        return None


def parse_cpu_list(text: str) -> set[int] | None:
    """``"0-3,5"`` -> {0, 1, 2, 3, 5}; None when malformed (semantic rules report it)."""
    try:
        return set(procfs.parse_cpu_list(text))
    except ValueError:
        return None


class HostFacts:
    """What this host offers, read from /proc and /sys (nothing is created)."""

    def __init__(
        self,
        *,
        namespaces,
        cgroup_version,
        controllers,
        seccomp,
        cap_count,
        filesystems,
        online_cpus,
        online_nodes,
        hugepage_sizes,
        resctrl,
        apparmor,
        selinux,
        max_user_namespaces,
    ):
        self.namespaces = set(namespaces)  # /proc/self/ns entry names
        self.cgroup_version = cgroup_version  # 1 (v1 or hybrid) or 2
        self.controllers = set(controllers)  # mounted (v1) / available (v2)
        self.seccomp = seccomp  # pyrunc.seccomp.supported()
        self.cap_count = cap_count  # cap_last_cap + 1
        self.filesystems = set(filesystems)  # /proc/filesystems
        self.online_cpus = online_cpus  # set[int] | None
        self.online_nodes = online_nodes  # set[int] | None
        self.hugepage_sizes = set(hugepage_sizes)  # "2MB", "1GB", ...
        self.resctrl = resctrl  # resctrl mounted
        self.apparmor = apparmor
        self.selinux = selinux
        self.max_user_namespaces = max_user_namespaces

    @classmethod
    def probe(cls) -> "HostFacts":
        from pyrunc import cgroups

        table = procfs.mounts()  # the host now: read once for what follows
        version = cgroups.detect_version(table=table)
        if version == 2:
            text = _read(os.path.join(cgroups.CGROUP_ROOT, "cgroup.controllers")) or ""
            controllers = set(text.split())
        else:
            controllers = set()
            for m in table:
                if m["fstype"] == "cgroup":
                    controllers.update(o for o in procfs.cgroup_v1_hierarchy_names(m) if "=" not in o)
        try:
            from pyrunc.seccomp import supported

            seccomp = supported()
        except Exception:  # noqa: BLE001 - no libseccomp: seccomp is unavailable
            seccomp = {"enabled": False}
        try:
            namespaces = os.listdir("/proc/self/ns")
        except OSError:
            namespaces = []
        cap_last = procfs.cap_last_cap()
        filesystems = [line.split()[-1] for line in (_read("/proc/filesystems") or "").splitlines() if line.split()]
        sizes = []
        try:
            for name in os.listdir("/sys/kernel/mm/hugepages"):
                kb = name.removeprefix("hugepages-").removesuffix("kB")
                if kb.isdigit():
                    sizes.append(_hugepage_label(int(kb)))
        except OSError:
            pass
        cpus = _read("/sys/devices/system/cpu/online")
        nodes = _read("/sys/devices/system/node/online")
        max_userns = _read("/proc/sys/user/max_user_namespaces")
        from pyrunc.lsm import apparmor_enabled, selinux_enabled

        return cls(
            namespaces=namespaces,
            cgroup_version=version,
            controllers=controllers,
            seccomp=seccomp,
            cap_count=cap_last + 1 if cap_last is not None else None,
            filesystems=filesystems,
            online_cpus=parse_cpu_list(cpus) if cpus is not None else None,
            online_nodes=parse_cpu_list(nodes) if nodes is not None else None,
            hugepage_sizes=sizes,
            resctrl=any(m["fstype"] == "resctrl" for m in table),
            apparmor=apparmor_enabled(),
            selinux=selinux_enabled(),
            max_user_namespaces=int(max_userns) if max_userns and max_userns.strip().isdigit() else None,
        )


def _hugepage_label(kb: int) -> str:
    """2048 -> "2MB", 1048576 -> "1GB" (the runtime-spec pageSize spelling)."""
    for unit, size in (("GB", 1 << 20), ("MB", 1 << 10)):
        if kb % size == 0:
            return "%d%s" % (kb // size, unit)
    return "%dKB" % kb


# --------------------------------------------------------------------------
# the rules
# --------------------------------------------------------------------------


def _obj(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def host_problems(doc, bundle_dir: str, facts: HostFacts | None = None) -> list[str]:
    """Every reason this host cannot run config *doc* (empty: it can, as far
    as can be told without creating anything)."""
    if not isinstance(doc, dict):
        return []
    probed = facts is None
    facts = facts or HostFacts.probe()
    found: list[str] = []

    def add(path, message):
        found.append(problem_line(LABEL, path, message))

    linux = _obj(doc.get("linux"))
    _namespaces(linux, facts, add)
    _cgroups(linux, facts, add)
    _seccomp(linux, facts, add)
    _capabilities(_obj(doc.get("process")), facts, add)
    _devices(linux, add)
    _mounts(doc, bundle_dir, facts, add)
    _hooks(_obj(doc.get("hooks")), add)
    _cpus_and_nodes(doc, linux, facts, add)
    _sysctl(linux, add)
    _net_devices(linux, add)
    _lsm(doc, linux, facts, add)
    if probed and not found:
        found.extend(create_host_problems(doc, bundle_dir))
    return found


def create_host_problems(doc, bundle_dir: str) -> list[str]:
    """The verdict of create's own host checks (:func:`check_host`) on the
    converted config, one line as create prints it; empty when the config
    does not convert (plain validation reports that) or the host accepts it."""
    from pyrunc.config.convert import build
    from pyrunc.errors import PyruncError

    try:
        cfg = build(doc, os.path.abspath(bundle_dir))
    except PyruncError:
        return []
    try:
        check_host(cfg)
    except PyruncError as e:
        return [str(e)]
    return []


def _namespaces(linux, facts, add):
    for i, ns in enumerate(_list(linux.get("namespaces"))):
        ns = _obj(ns)
        kind = ns.get("type")
        entry = namespaces.PROC_NAMES.get(kind) if isinstance(kind, str) else None
        if entry is not None and entry not in facts.namespaces:
            add(
                ("linux", "namespaces", i, "type"),
                "%s namespaces are not supported by this kernel (no /proc/self/ns/%s)" % (render_value(kind), entry),
            )
        if kind == "user" and not ns.get("path") and facts.max_user_namespaces == 0:
            add(
                ("linux", "namespaces", i, "type"),
                '"user": new user namespaces are disabled here (user.max_user_namespaces is 0)',
            )
        path = ns.get("path")
        if isinstance(path, str) and path.startswith("/") and "\0" not in path:
            try:
                st = os.stat(path)
            except OSError as e:
                add(("linux", "namespaces", i, "path"), "%s: %s" % (render_value(path), e.strerror))
                continue
            if not stat.S_ISREG(st.st_mode):  # nsfs files are regular files
                add(("linux", "namespaces", i, "path"), "%s is not a namespace file" % render_value(path))


def _cgroups(linux, facts, add):
    resources = linux.get("resources")
    if not isinstance(resources, dict):
        return
    version = facts.cgroup_version
    for field, (v1, v2) in RESOURCE_CONTROLLERS.items():
        value: object = resources
        for key in field:
            value = value.get(key) if isinstance(value, dict) else None
        if value is None or value == [] or value == {}:
            continue
        if field == ("devices",) and version == 2:
            continue  # enforced by an eBPF program (checked when attached)
        path = ("linux", "resources") + field
        needed = v1 if version == 1 else v2
        if needed is None:
            add(path, "cannot be applied on cgroup v%d (this host)" % version)
        elif needed not in facts.controllers:
            add(path, "needs the %s controller, which cgroup v%d on this host does not offer" % (needed, version))
    unified = resources.get("unified")
    if isinstance(unified, dict) and unified and version == 1:
        add(
            ("linux", "resources", "unified"),
            "cgroup v2 settings cannot be applied: this host uses cgroup v1 (hybrid hierarchies included)",
        )
    for i, limit in enumerate(_list(resources.get("hugepageLimits"))):
        size = _obj(limit).get("pageSize")
        if isinstance(size, str) and facts.hugepage_sizes and size not in facts.hugepage_sizes:
            add(
                ("linux", "resources", "hugepageLimits", i, "pageSize"),
                "%s is not a huge page size of this host (it has %s)"
                % (render_value(size), ", ".join(sorted(facts.hugepage_sizes))),
            )
    if linux.get("intelRdt") is not None and not facts.resctrl:
        add(("linux", "intelRdt"), "needs resctrl, which is not mounted on this host")


def _seccomp(linux, facts, add):
    seccomp = linux.get("seccomp")
    if not isinstance(seccomp, dict):
        return
    offer = facts.seccomp or {}
    if not offer.get("enabled"):
        add(
            ("linux", "seccomp"),
            "seccomp filters are not available here (needs libseccomp and a kernel with seccomp filter support)",
        )
        return
    archs = set(offer.get("archs") or ())
    for i, arch in enumerate(_list(seccomp.get("architectures"))):
        if isinstance(arch, str) and arch not in archs:
            add(("linux", "seccomp", "architectures", i), "%s is not known to this libseccomp" % render_value(arch))
    flags = set(offer.get("supportedFlags") or ())
    for i, flag in enumerate(_list(seccomp.get("flags"))):
        if isinstance(flag, str) and flag not in flags:
            add(("linux", "seccomp", "flags", i), "%s is not supported by this kernel" % render_value(flag))


def _capabilities(process, facts, add):
    caps = process.get("capabilities")
    if not isinstance(caps, dict) or facts.cap_count is None:
        return
    from pyrunc.capabilities import CAP_NUMBERS

    for set_name in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        for i, name in enumerate(_list(caps.get(set_name))):
            if not isinstance(name, str):
                continue
            number = CAP_NUMBERS.get(name)
            if number is None:
                add(("process", "capabilities", set_name, i), "%s is not a Linux capability" % render_value(name))
            elif number >= facts.cap_count:
                add(
                    ("process", "capabilities", set_name, i),
                    "%s is not known to this kernel (cap_last_cap is %d)" % (render_value(name), facts.cap_count - 1),
                )


_DEVICE_KINDS: dict[object, int] = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK}


def _devices(linux, add):
    """In a user namespace mknod is refused, so the runtime binds the host's
    node at the same path: it must exist and be that device."""
    namespaces = [_obj(ns) for ns in _list(linux.get("namespaces"))]
    in_userns = any(ns.get("type") == "user" for ns in namespaces)
    if not in_userns:
        return
    for i, dev in enumerate(_list(linux.get("devices"))):
        dev = _obj(dev)
        path, kind = dev.get("path"), _DEVICE_KINDS.get(dev.get("type"))
        major, minor = dev.get("major"), dev.get("minor")
        if (
            not isinstance(path, str)
            or not path.startswith("/")
            or kind is None
            or not isinstance(major, int)
            or not isinstance(minor, int)
            or "\0" in path
        ):
            continue
        where = ("linux", "devices", i, "path")
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            add(where, "%s: in a user namespace the host's node is bound, but this host has none" % render_value(path))
            continue
        if stat.S_IFMT(st.st_mode) != kind or st.st_rdev != os.makedev(major, minor):
            add(
                where,
                "%s: the host's node is not device %s %d:%d (it is bound in a user namespace)"
                % (render_value(path), dev.get("type"), major, minor),
            )


# mount types that are not filesystems in /proc/filesystems
_MOUNT_TYPE_ALIASES = {"bind", "rbind", "none", ""}


def _mounts(doc, bundle_dir, facts, add):
    for i, m in enumerate(_list(doc.get("mounts"))):
        m = _obj(m)
        options = [o for o in _list(m.get("options")) if isinstance(o, str)]
        mtype = m.get("type")
        bind = "bind" in options or "rbind" in options or mtype in ("bind", "rbind")
        if (
            isinstance(mtype, str)
            and mtype not in _MOUNT_TYPE_ALIASES
            and not bind
            and facts.filesystems
            and mtype not in facts.filesystems
        ):
            add(
                ("mounts", i, "type"),
                "%s is not a filesystem this kernel knows (/proc/filesystems)" % render_value(mtype),
            )
        source = m.get("source")
        if bind and isinstance(source, str) and source and "\0" not in source:
            full = source if source.startswith("/") else os.path.join(bundle_dir, source)
            if not os.path.lexists(full):
                add(("mounts", i, "source"), "%s: the bind source does not exist on this host" % render_value(source))


def _hooks(hooks, add):
    for kind, entries in hooks.items():
        for i, hook in enumerate(_list(entries)):
            path = _obj(hook).get("path")
            if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
                continue
            where = ("hooks", kind, i, "path")
            if not os.path.exists(path):
                add(where, "%s does not exist on this host" % render_value(path))
            elif not os.path.isfile(path) or not os.access(path, os.X_OK):
                add(where, "%s is not an executable file" % render_value(path))


def _cpus_and_nodes(doc, linux, facts, add):
    checks: list[tuple[tuple[str, ...], object, set[int] | None, str]] = []  # (path, text, online, what)
    cpu = _obj(_obj(linux.get("resources")).get("cpu"))
    checks.append((("linux", "resources", "cpu", "cpus"), cpu.get("cpus"), facts.online_cpus, "CPU"))
    checks.append((("linux", "resources", "cpu", "mems"), cpu.get("mems"), facts.online_nodes, "memory node"))
    affinity = _obj(_obj(doc.get("process")).get("execCPUAffinity"))
    for key in ("initial", "final"):
        checks.append((("process", "execCPUAffinity", key), affinity.get(key), facts.online_cpus, "CPU"))
    policy = _obj(linux.get("memoryPolicy"))
    checks.append((("linux", "memoryPolicy", "nodes"), policy.get("nodes"), facts.online_nodes, "memory node"))
    for path, text, online, what in checks:
        if not isinstance(text, str) or online is None:
            continue
        wanted = parse_cpu_list(text)
        if wanted is None:
            continue
        missing = sorted(wanted - online)
        if missing:
            add(
                path,
                "%s names %s %s, not online on this host (online: %s)"
                % (
                    render_value(text),
                    what + ("s" if len(missing) > 1 else ""),
                    ",".join(map(str, missing[:8])) + ("..." if len(missing) > 8 else ""),
                    _render_set(online),
                ),
            )


def _render_set(values: set[int]) -> str:
    if not values:
        return "none"
    out, items = [], sorted(values)
    start = prev = items[0]
    for v in items[1:] + [None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        out.append(str(start) if start == prev else "%d-%d" % (start, prev))
        if v is not None:
            start = prev = v
    return ",".join(out)


def _sysctl(linux, add):
    sysctl = linux.get("sysctl")
    if not isinstance(sysctl, dict):
        return
    for key in sysctl:
        if not key or "\0" in key or ".." in key or key.startswith((".", "/")):
            continue
        # the kernel's files are the same in a new namespace as on the host
        if not os.path.exists(procfs.sysctl_path(key)):
            add(
                ("linux", "sysctl", key),
                "%s is not a sysctl of this kernel (no /proc/sys/%s)" % (render_value(key), key.replace(".", "/")),
            )


def _net_devices(linux, add):
    devices = linux.get("netDevices")
    if not isinstance(devices, dict) or not devices:
        return
    from socket import if_nametoindex

    for name in devices:
        try:
            if_nametoindex(name)
        except (OSError, ValueError):
            add(("linux", "netDevices", name), "%s: no such network interface on this host" % render_value(name))


def _lsm(doc, linux, facts, add):
    process = _obj(doc.get("process"))
    if isinstance(process.get("apparmorProfile"), str) and process["apparmorProfile"] and not facts.apparmor:
        add(
            ("process", "apparmorProfile"),
            "%s cannot be applied: AppArmor is not enabled on this host" % render_value(process["apparmorProfile"]),
        )
    if isinstance(process.get("selinuxLabel"), str) and process["selinuxLabel"] and not facts.selinux:
        add(
            ("process", "selinuxLabel"),
            "%s cannot be applied: SELinux is not enabled on this host" % render_value(process["selinuxLabel"]),
        )
    if isinstance(linux.get("mountLabel"), str) and linux["mountLabel"] and not facts.selinux:
        add(
            ("linux", "mountLabel"),
            "%s cannot be applied: SELinux is not enabled on this host" % render_value(linux["mountLabel"]),
        )


# --------------------------------------------------------------------------
# what create refuses about this host, for a converted config
# --------------------------------------------------------------------------


def check_host(cfg):
    """The checks ``create`` makes of this host for the converted ``cfg``
    (a config.model.Config) before anything is made; the first problem
    raises ConfigError.  ``pyrunc validate --host-specific`` runs them too.
    An unprivileged caller's limits (rootless.py), the LSM labels, Intel
    RDT, the network devices to move."""
    from pyrunc.errors import ConfigError

    if os.geteuid() != 0:  # (root: the module is not even loaded, ~0.1 ms and 60 KiB)
        from pyrunc.rootless import check_config as check_rootless

        check_rootless(cfg)  # an unprivileged caller: user namespace, mappings
    if cfg.process:
        from pyrunc import lsm

        lsm.check(cfg.process.apparmor_profile, cfg.process.selinux_label, cfg.mount_label)
    if cfg.intel_rdt and not _resctrl_mounted():
        raise ConfigError(
            "config.json: linux.intelRdt: no resctrl filesystem is mounted (Intel RDT is not available on this host)"
        )
    if cfg.net_devices:
        from pyrunc.netdev import check as check_net_devices

        netns = cfg.namespace("network")
        check_net_devices(
            cfg.net_devices,
            new_netns=netns is not None and not netns.path,
            netns_path=netns.path if netns is not None else None,
        )


def _resctrl_mounted():
    with open("/proc/self/mounts") as f:
        return any(line.split()[2] == "resctrl" for line in f)
