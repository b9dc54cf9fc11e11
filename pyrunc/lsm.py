"""AppArmor and SELinux labels of the container process, and the verified
procfs writes they (and other per-process attributes) go through.

What the spec fields mean here:

* ``process.apparmorProfile``: the profile the process is confined by from
  its execve on: ``exec <profile>`` written to ``/proc/<pid>/attr/apparmor/exec``
  (the LSM-specific file of kernels with LSM stacking) or, on older kernels,
  ``/proc/<pid>/attr/exec``.
* ``process.selinuxLabel``: the SELinux context of the process after execve,
  written to ``/proc/<pid>/attr/exec``.
* ``linux.mountLabel``: the context of the container's tmpfs/devpts/mqueue
  mounts (``context=`` option; rootfs.py adds it).

When the host lacks the LSM, runc fails (AppArmor: the attr write is
refused; SELinux: "selinux label is specified in config, but selinux is
disabled"; mountLabel: the mount with ``context=`` is refused).  pyrunc
fails the same way, but before anything is created, with one line naming
the field (:func:`check`).  A label silently not applied would be worse.

Every write goes through :func:`write_proc_attr`, which never follows a
path string into procfs: it opens the procfs root, checks it *is* procfs,
and resolves ``<pid>/attr/...`` beneath it with openat2 refusing symlinks,
magic links and mount crossings, so a file or directory bind-mounted over
the target (CVE-2019-16884, CVE-2025-52881) makes the write fail instead of
landing elsewhere.  ``/proc/self`` is itself a symlink, hence the numeric
pid (of the caller's pid namespace, which is the one the procfs mounted in
the container shows).
"""

import os

from . import syscalls as sc
from .errors import ConfigError, StageError

_APPARMOR_ENABLED = "/sys/module/apparmor/parameters/enabled"
_SELINUX_ENFORCE = "/sys/fs/selinux/enforce"


def apparmor_enabled():
    try:
        with open(_APPARMOR_ENABLED) as f:
            return f.read(1) == "Y"
    except OSError:
        return False


def selinux_enabled():
    return os.path.exists(_SELINUX_ENFORCE)


def check(apparmor_profile="", selinux_label="", mount_label="", where="process"):
    """Refuse labels the host cannot apply (runtime side, before any fork)."""
    if apparmor_profile and not apparmor_enabled():
        raise ConfigError(f"{where}.apparmorProfile: {apparmor_profile!r} cannot be applied: "
                          "AppArmor is not enabled on this host")
    if selinux_label and not selinux_enabled():
        raise ConfigError(f"{where}.selinuxLabel: selinux label is specified in config, "
                          "but selinux is disabled or not supported")
    if mount_label and not selinux_enabled():
        raise ConfigError("linux.mountLabel: a mount label is specified in config, "
                          "but selinux is disabled or not supported")


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
        fd = sc.openat2(root, f"{pid}/{rel}", os.O_WRONLY | os.O_CLOEXEC,
                        sc.RESOLVE_BENEATH | sc.RESOLVE_NO_SYMLINKS | sc.RESOLVE_NO_MAGICLINKS
                        | sc.RESOLVE_NO_XDEV, display=display)
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
            display = "/proc/sys/" + key.replace(".", "/")
            fd = sc.openat2(root, "sys/" + key.replace(".", "/"), os.O_WRONLY | os.O_TRUNC,
                            sc.RESOLVE_BENEATH | sc.RESOLVE_NO_SYMLINKS | sc.RESOLVE_NO_MAGICLINKS
                            | sc.RESOLVE_NO_XDEV, display=display)
            try:
                if sc.fstatfs_type(fd) != sc.PROC_SUPER_MAGIC:
                    raise StageError(f"sysctl {key}: {display} is not on procfs")
                os.write(fd, value.encode())
            finally:
                os.close(fd)
    finally:
        os.close(root)
    return own


def apply_exec_labels(apparmor_profile="", selinux_label=""):
    """Arrange for the next execve to enter the configured labels (in the
    container, after pivot_root: the container's own procfs is used)."""
    if apparmor_profile:
        # the LSM-specific file where the kernel has one (LSM stacking)
        rel = "attr/apparmor/exec" if os.path.isdir(f"/proc/{os.getpid()}/attr/apparmor") else "attr/exec"
        try:
            write_proc_attr(rel, f"exec {apparmor_profile}")
        except OSError as e:
            # AppArmor answers ENOENT for a profile that is not loaded
            hint = " (is the profile loaded?)" if e.errno == 2 else ""
            raise StageError(f"apparmorProfile {apparmor_profile!r} cannot be applied: "
                             f"{e.filename}: {e.strerror}{hint}") from None
    if selinux_label:
        try:
            write_proc_attr("attr/exec", selinux_label)
        except OSError as e:
            raise StageError(f"selinuxLabel {selinux_label!r} cannot be applied: "
                             f"{e.filename}: {e.strerror}") from None


def features():
    """The ``linux.apparmor`` / ``linux.selinux`` parts of ``features``."""
    return {"apparmor": {"enabled": apparmor_enabled()},
            "selinux": {"enabled": selinux_enabled()}}
