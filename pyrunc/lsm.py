"""AppArmor and SELinux labels of the container process.

What the spec fields mean here:

* ``process.apparmorProfile``: the profile the process is confined by from
  its execve on: ``exec <profile>`` written to ``/proc/<pid>/attr/apparmor/exec``
  (the LSM-specific file of kernels with LSM stacking) or, on older kernels,
  ``/proc/<pid>/attr/exec``.
* ``process.selinuxLabel``: the SELinux context of the process after execve,
  written to ``/proc/<pid>/attr/exec``.
* ``linux.mountLabel``: the context of the container's tmpfs/devpts/mqueue
  mounts (``context=`` option; rootfs/ops.py adds it).

When the host lacks the LSM, runc fails (AppArmor: the attr write is
refused; SELinux: "selinux label is specified in config, but selinux is
disabled"; mountLabel: the mount with ``context=`` is refused).  pyrunc
fails the same way, but before anything is created, with one line naming
the field (:func:`check`).  A label silently not applied would be worse.

Every label is written with ``linux.procwrite.write_proc_attr``, which a
file or directory bind-mounted over the target cannot redirect
(CVE-2019-16884, CVE-2025-52881).
"""

from . import lightos as os  # os's calls without importing os (lightos.py)

from .errors import ConfigError, StageError
from .linux.procwrite import write_proc_attr

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
        raise ConfigError(
            f"{where}.apparmorProfile: {apparmor_profile!r} cannot be applied: AppArmor is not enabled on this host"
        )
    if selinux_label and not selinux_enabled():
        raise ConfigError(
            f"{where}.selinuxLabel: selinux label is specified in config, but selinux is disabled or not supported"
        )
    if mount_label and not selinux_enabled():
        raise ConfigError(
            "linux.mountLabel: a mount label is specified in config, but selinux is disabled or not supported"
        )


def apparmor_exec_file():
    """The file below /proc/<pid> to write an AppArmor exec label to: the
    LSM-specific one where the kernel has one (LSM stacking)."""
    return "attr/apparmor/exec" if os.path.isdir(f"/proc/{os.getpid()}/attr/apparmor") else "attr/exec"


def apparmor_exec_label(apparmor_profile):
    """``(file below /proc, text)`` that arranges for the next execve to
    enter the profile; the waiter writes it (waiter.py)."""
    return f"{os.getpid()}/{apparmor_exec_file()}", f"exec {apparmor_profile}"


def apparmor_failure(apparmor_profile, path):
    return f"apparmorProfile {apparmor_profile!r} cannot be applied: {path}: "


def apply_exec_labels(apparmor_profile="", selinux_label=""):
    """Arrange for the next execve to enter the configured labels (in the
    container, after pivot_root: the container's own procfs is used)."""
    if apparmor_profile:
        try:
            write_proc_attr(apparmor_exec_file(), f"exec {apparmor_profile}")
        except OSError as e:
            # AppArmor answers ENOENT for a profile that is not loaded
            hint = " (is the profile loaded?)" if e.errno == 2 else ""
            raise StageError(f"{apparmor_failure(apparmor_profile, e.filename)}{e.strerror}{hint}") from None
    if selinux_label:
        try:
            write_proc_attr("attr/exec", selinux_label)
        except OSError as e:
            raise StageError(f"selinuxLabel {selinux_label!r} cannot be applied: {e.filename}: {e.strerror}") from None


def features():
    """The ``linux.apparmor`` / ``linux.selinux`` parts of ``features``."""
    return {"apparmor": {"enabled": apparmor_enabled()}, "selinux": {"enabled": selinux_enabled()}}
