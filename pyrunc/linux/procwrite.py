"""Writes into procfs that nothing in the container's tree can redirect.

None of them follows a path string into procfs: they open a procfs root,
check it *is* procfs, and resolve the file beneath it with openat2 refusing
symlinks, magic links and mount crossings, so a file or directory
bind-mounted over the target (CVE-2019-16884, CVE-2025-52881) makes the
write fail instead of landing elsewhere.  ``/proc/self`` is itself a
symlink, hence the numeric pid (of the caller's pid namespace, which is the
one the procfs mounted in the container shows).  Used by the stages: the
LSM labels (lsm.py), oom_score_adj (process.py), linux.sysctl (stages/init.py).
"""

from .. import lightos as os  # os's calls without importing os (lightos.py)

from pyrunc.linux import syscalls as sc
from pyrunc.errors import StageError
from pyrunc.linux.procfs import sysctl_path

_RESOLVE = sc.RESOLVE_BENEATH | sc.RESOLVE_NO_SYMLINKS | sc.RESOLVE_NO_MAGICLINKS | sc.RESOLVE_NO_XDEV


def write_proc_attr(rel, value, pid=None):
    """Write ``value`` to ``/proc/<pid>/<rel>`` through a verified procfs.

    ``pid`` defaults to the caller (as numbered in its own pid namespace).
    Raises StageError naming the file when it is not a procfs file."""
    pid = os.getpid() if pid is None else pid
    display = f"/proc/{pid}/{rel}"
    root = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if sc.fstatfs_type(root) != sc.PROC_SUPER_MAGIC:
            raise StageError(f"{display}: /proc is not a procfs mount")
        fd = sc.openat2(root, f"{pid}/{rel}", os.O_WRONLY | os.O_CLOEXEC, _RESOLVE, display=display)
    finally:
        os.close(root)
    try:
        if sc.fstatfs_type(fd) != sc.PROC_SUPER_MAGIC:
            raise StageError(f"{display}: not a procfs file")
        os.write(fd, value.encode() if isinstance(value, str) else value)
    except OSError as e:  # the LSM refused the value: name the file
        raise OSError(e.errno, e.strerror, display) from None
    finally:
        os.close(fd)


def private_procfs():
    """A procfs instance of the caller's pid namespace that is mounted
    nowhere (fsopen/fsmount): no bind mount, readonly path or mask of the
    container's tree can stand in front of it.  Returns an fd, or None when
    the kernel refuses a new procfs here (e.g. a user namespace whose
    /proc is not fully visible); callers then use the mounted /proc."""
    try:
        fs = sc.fsopen("proc")
    except OSError:
        return None
    try:
        sc.fsconfig(fs, sc.FSCONFIG_CMD_CREATE)
        return sc.fsmount(fs)
    except OSError:
        return None
    finally:
        os.close(fs)


def write_sysctls(sysctl):
    """Write each ``linux.sysctl`` entry.  Through a private procfs when the
    kernel allows one (the container's /proc/sys is usually a readonly
    path by now, and nothing mounted over a sysctl file can redirect the
    write: CVE-2025-52881); otherwise through the mounted /proc, verified."""
    root = private_procfs()
    own = root is not None
    if root is None:
        root = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if sc.fstatfs_type(root) != sc.PROC_SUPER_MAGIC:
            raise StageError("sysctl: /proc is not a procfs mount")
        for key, value in sysctl.items():
            display = sysctl_path(key)
            fd = sc.openat2(root, display[len("/proc/") :], os.O_WRONLY | os.O_TRUNC, _RESOLVE, display=display)
            try:
                if sc.fstatfs_type(fd) != sc.PROC_SUPER_MAGIC:
                    raise StageError(f"sysctl {key}: {display} is not on procfs")
                os.write(fd, value.encode())
            finally:
                os.close(fd)
    finally:
        os.close(root)
    return own
