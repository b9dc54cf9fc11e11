"""Namespaces: the one table of namespace types, and how a stage enters them.

``create`` (the intermediate stage, stages/init.py) and ``exec`` (stages/exec.py)
both open the namespaces to join first, since after the first setns a
path would be looked up in the joined namespaces, join the user namespace
first, since it grants the rest, and then become root in it.  The table
costs nothing to import (validation and ``inspect`` need only it); the
joining functions use ``syscalls``, which every stage loaded before the fork.
"""

from . import lightos as os  # os's calls without importing os (lightos.py)

from .errors import StageError

# OCI namespace type -> clone(2)/setns(2) flag (include/uapi/linux/sched.h)
FLAGS = {
    "pid": 0x20000000,
    "network": 0x40000000,
    "ipc": 0x08000000,
    "uts": 0x04000000,
    "mount": 0x00020000,
    "user": 0x10000000,
    "cgroup": 0x02000000,
    "time": 0x00000080,
}
# OCI namespace type -> its /proc/<pid>/ns entry (in the order `inspect` reports them)
PROC_NAMES = {
    "pid": "pid",
    "network": "net",
    "ipc": "ipc",
    "uts": "uts",
    "mount": "mnt",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}


def proc_path(pid, ns_type: str) -> str:
    """``/proc/<pid>/ns/<entry>`` of an OCI namespace type."""
    return f"/proc/{pid}/ns/{PROC_NAMES[ns_type]}"


def _user_first(ns_fd):
    return ns_fd[0].type != "user"


def unshare_flags(namespaces) -> int:
    """The clone flags of the namespaces a container gets new (no path)."""
    flags = 0
    for ns in namespaces:
        if not ns.path:
            flags |= ns.flag
    return flags


def open_paths(namespaces) -> list:
    """[(ns, fd)] of the configured namespace paths, in join order."""
    joins = []
    try:
        for ns in namespaces:
            if ns.path:
                try:
                    fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError as e:
                    raise StageError(f"open namespace {ns.type} path {ns.path}: {e.strerror}") from None
                joins.append((ns, fd))
    except BaseException:
        for _, fd in joins:
            os.close(fd)
        raise
    joins.sort(key=_user_first)
    return joins


def open_of_process(pid, namespaces) -> list:
    """[(ns, fd)] of the namespaces of process ``pid`` (a running
    container's init), of each type in ``namespaces``, in join order; its
    user namespace is left out when it is ours (joining it is EINVAL)."""
    joins = []
    try:
        for ns in sorted(namespaces, key=lambda n: n.type != "user"):
            path = proc_path(pid, ns.type)
            if ns.type == "user" and os.readlink(path) == os.readlink("/proc/self/ns/user"):
                continue
            joins.append((ns, os.open(path, os.O_RDONLY | os.O_CLOEXEC)))
    except OSError as e:
        for _, fd in joins:
            os.close(fd)
        raise StageError(f"cannot join the container's namespaces: {e.strerror}") from None
    return joins


def enter(joins, *, show_paths=True, after_mount=None) -> bool:
    """setns into each (ns, fd) of ``joins`` in order, closing each fd
    (``after_mount`` runs once the mount namespace is joined); True when a
    user namespace was joined (the caller then becomes root in it)."""
    from .linux import syscalls as sc

    in_userns = False
    for ns, fd in joins:
        where = f"{ns.type} namespace {ns.path}" if show_paths else f"{ns.type} namespace"
        sc.setns(fd, ns.flag, display=where)
        os.close(fd)
        if ns.type == "mount" and after_mount is not None:
            after_mount()
        in_userns = in_userns or ns.type == "user"
    return in_userns
