"""The default bundle configuration written by ``pyrunc spec``.

Like runc's: a shell in a busybox-like rootfs with the pid, network, ipc,
uts, mount and cgroup namespaces, a read-only root, the usual pseudo
filesystems, masked and read-only /proc and /sys paths, three capabilities
and no inheritable or ambient ones (CVE-2022-29162).
"""

from . import SPEC_VERSION

DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    "/proc/scsi",
]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def default_spec(rootless=False, uid=0, gid=0):
    spec = {
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pyrunc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
            },
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
    if rootless:
        to_rootless(spec, uid, gid)
    return spec


def to_rootless(spec, uid, gid):
    """runc's ``spec --rootless`` transformation, in its key and mount order
    (compared in tests/integration/test_rootless.py): a user namespace mapping the
    caller's ids to 0 (an unprivileged user may write that map itself), no
    network namespace (it could not be given an interface), /sys bound from
    the host in place of sysfs (a user namespace may not mount a sysfs of a
    network namespace it does not own), no uid=/gid= mount options (ids the
    map does not hold), no cgroup resources (no cgroup to put them in)."""
    old = spec["linux"]
    linux = {
        "uidMappings": [{"containerID": 0, "hostID": uid, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": gid, "size": 1}],
    }
    for key, value in old.items():
        if key in ("resources", "uidMappings", "gidMappings"):
            continue
        if key == "namespaces":
            value = [n for n in value if n["type"] not in ("network", "user")] + [{"type": "user"}]
        linux[key] = value
    spec["linux"] = linux
    mounts = []
    for m in spec["mounts"]:
        if m["destination"].rstrip("/") == "/sys":
            m = {
                "destination": "/sys",
                "type": "none",
                "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"],
            }
        elif "options" in m:
            m = dict(m, options=[o for o in m["options"] if not o.startswith(("uid=", "gid="))])
        mounts.append(m)
    spec["mounts"] = mounts
    return spec
