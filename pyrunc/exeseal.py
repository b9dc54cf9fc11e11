"""Run the runtime from a read-only view of its own interpreter before any
of its processes enters a container (CVE-2019-5736).

``/proc/<pid>/exe`` is a magic link to the file a process executed.  For
every pyrunc process that is the host's Python interpreter.  A container
process that may open the exe of one of our processes inside its pid
namespace (the created init, the stage of ``exec`` that forks into the
namespace, the vfork child of ``exec`` before its execve) can keep that open
file and, once nothing runs the interpreter any more (no ETXTBSY), reopen it
through ``/proc/self/fd/N`` for writing and replace the host's python: the
next ``pyrunc`` (or any python program) run on the host is the attacker's.
Non-dumpable processes are out of reach only for processes without
CAP_SYS_PTRACE in the host user namespace, i.e. not for a container without
a user namespace that keeps CAP_SYS_PTRACE, nor for a privileged sidecar
sharing the pid namespace.

So the commands that put processes into a container's namespaces (create,
run, exec) re-execute themselves first, before parsing anything, from a
*detached read-only bind mount* of the interpreter: open_tree(CLONE) of
/proc/self/exe, mount_setattr(RDONLY|NOSUID|NODEV), execveat on that fd.
The inode is the same (its pages stay shared with every other python on
the host, nothing is copied), but the mount it is reached through is
read-only and attached nowhere: once the exec closed the open_tree fd the
mount is dissolved, nobody can remount it, and any open of
/proc/<pid>/exe for writing fails with EROFS.  Kernels without
mount_setattr (< 5.12) or a caller that may not create mounts get a copy
in a sealed memfd instead (F_SEAL_WRITE|GROW|SHRINK|SEAL: writes fail with
EPERM); that costs 6.8 MB of memory per running command, which is why it
is only the fallback.

The check is cheap (one statvfs), so a host whose interpreter already lives
on a read-only mount (an image-based OS) pays nothing.  The installation
makes that the common case: its launcher runs a copy of the interpreter
(<venv>/sealed/python3) that the first sealed command after boot binds
read-only onto itself (``persist_readonly_view``); from then on create, run
and exec start sealed.  Only when that view cannot exist (no right to
mount) is the price one more interpreter start-up (10-20 ms) per command.
"""

import sys

from . import lightos as os  # os's calls without importing os: create, run and exec start their
# cgroup lock warmer (runtime._lock_warmer) before os is loaded

_MEMFD_NAME = "pyrunc-exe"


def exe_is_sealed(path="/proc/self/exe"):
    """True when ``path`` (an exe link or an fd path) names a file that no
    open can write: on a read-only mount, or in our sealed memfd."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return True
        return os.readlink(path).startswith("/memfd:" + _MEMFD_NAME)
    except OSError:
        return False


def _readonly_bind_of_self():
    """An O_PATH fd of the running interpreter on a detached read-only bind
    mount, or None when this kernel or caller cannot make one."""
    from .linux import syscalls as sc

    try:
        fd = sc.open_tree(sc.AT_FDCWD, "/proc/self/exe", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC)
    except OSError:
        return None
    try:
        sc.mount_setattr(
            fd, "", sc.AT_EMPTY_PATH, attr_set=sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV
        )
    except OSError:
        os.close(fd)
        return None
    return fd


def _sealed_memfd_copy_of_self():
    import fcntl

    src = os.open("/proc/self/exe", os.O_RDONLY | os.O_CLOEXEC)
    fd = -1
    try:
        fd = os.memfd_create(_MEMFD_NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        size = os.fstat(src).st_size
        done = 0
        while done < size:
            n = os.sendfile(fd, src, None, size - done)
            if n == 0:
                raise OSError(f"short copy of the interpreter ({done} of {size} bytes)")
            done += n
        fcntl.fcntl(
            fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
        )
        sealed, fd = fd, -1
        return sealed
    finally:
        os.close(src)
        if fd >= 0:
            os.close(fd)


def _name_self():
    """An exec through an fd names the process after the file (python3.11):
    give it back the name the launcher had, for ps and the like."""
    try:
        fd = os.open("/proc/thread-self/comm", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"pyrunc")
        finally:
            os.close(fd)
    except OSError:
        pass


# The installation's own copy of the interpreter (pyrunc/launcher.py writes
# it on the first call): <venv>/sealed/python3, which the launcher's #! line
# names.
SEALED_COPY_DIR = "sealed"


def persist_readonly_view(exe=None):
    """Bind the installation's interpreter copy read-only onto itself, so
    that every later command starts from a read-only view and needs no
    re-exec (one interpreter start instead of two on create, run and exec).

    Done by the first sealed command after boot (mounts do not survive a
    reboot); a caller that may not mount (rootless, no CAP_SYS_ADMIN) keeps
    paying the re-exec.  The mount lives in the mount namespace of that
    first caller: the host's, normally.  It covers only that one file, a
    copy owned by the installation, so upgrades of the system's Python
    never meet it; ``python -m pyrunc.launcher --remove`` (``make clean``)
    unmounts it (docs/install.md).  Returns True when the view is in place."""
    try:
        exe = exe or os.readlink("/proc/self/exe")
    except OSError:
        return False
    if os.path.basename(os.path.dirname(exe)) != SEALED_COPY_DIR or not os.path.isabs(exe):
        return False
    if exe_is_sealed(exe):
        return True
    from .linux import syscalls as sc

    try:
        fd = sc.open_tree(sc.AT_FDCWD, exe, sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC)
    except OSError:
        return False
    try:
        sc.mount_setattr(
            fd, "", sc.AT_EMPTY_PATH, attr_set=sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV
        )
        sc.move_mount(fd, "", sc.AT_FDCWD, exe, sc.MOVE_MOUNT_F_EMPTY_PATH)
    except OSError:
        return False
    finally:
        os.close(fd)
    return exe_is_sealed(exe)


def reexec_sealed():
    """Replace this process (same pid, argv, environment and inherited fds)
    by the same command run from a sealed view of the interpreter; return
    only when it already runs from one.  Raises OSError when no sealed view
    can be made: running on unsealed would leave the host's interpreter
    writable to the container."""
    if exe_is_sealed():
        _name_self()
        return
    # this process still runs the writable view; the next ones will not
    persist_readonly_view()
    fd = _readonly_bind_of_self()
    if fd is None:
        fd = _sealed_memfd_copy_of_self()
    # What the exec will run must pass the same check the new process
    # makes, or it would re-execute itself forever.
    if not exe_is_sealed(f"/proc/self/fd/{fd}"):
        os.close(fd)
        raise OSError("the sealed view of the interpreter is still writable")
    sys.stdout.flush()
    sys.stderr.flush()
    import os as real_os  # the environment as a mapping execve takes (this path is rare: once per boot)

    real_os.execve(fd, sys.orig_argv, real_os.environ)


def require_sealed():
    """For the core library: refuse to put a process into a container's
    namespaces from an interpreter that is writable through
    /proc/<pid>/exe.  The library cannot re-execute its caller (it never
    reads argv); the ``pyrunc`` command does (:func:`reexec_sealed`)."""
    if not exe_is_sealed():
        from .errors import PyruncError

        raise PyruncError(
            "refusing to enter a container from a writable interpreter "
            "(/proc/self/exe, CVE-2019-5736): call pyrunc.exeseal.reexec_sealed() "
            "first, as the pyrunc command does"
        )
