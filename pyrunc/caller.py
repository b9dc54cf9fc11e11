"""Who calls pyrunc, as far as every command needs to know: root or an
unprivileged user, in a user namespace that does not map every id or not;
hence where the state lives (the default ``--root``) and whether cgroups
are handled the rootless way (``--rootless``).  As runc decides them.

Every command loads this module (the CLI's flag, the state root), so it
imports nothing beyond ``lightos``; what a rootless *container* needs (id
maps, the config checks, the cgroup settlement) is in ``rootless.py``,
which only ``create``, ``run`` and ``exec`` load.
"""

from . import lightos as os  # os's calls without importing os (lightos.py)

from .errors import PyruncError, UsageError

_TRUE = frozenset(("1", "t", "T", "TRUE", "true", "True"))
_FALSE = frozenset(("0", "f", "F", "FALSE", "false", "False"))
DEFAULT_ROOT = "/run/pyrunc"
XDG_SUBDIR = "pyrunc"

_in_userns = None


def parse_flag(value):
    """``--rootless`` (runc's bool-or-auto): True, False, or None for auto."""
    if value is None or value in ("", "auto"):
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f"invalid --rootless value {value!r}: use true, false or auto")


def running_in_userns():
    """True when this process's user namespace does not map the whole id
    range: a user namespace made by someone (rootless podman), where this
    process's root is not the host's.  Read once per process."""
    global _in_userns
    if _in_userns is None:
        try:
            data = os.read_file("/proc/self/uid_map")
        except OSError:
            data = b"0 0 4294967295"  # no user namespaces in this kernel
        _in_userns = data.split() != [b"0", b"0", b"4294967295"]
    return _in_userns


def rootless_cgroups(flag):
    """Whether cgroups are handled the rootless way: the parsed ``--rootless``
    when given, else an unprivileged caller or a partial user namespace."""
    if flag is not None:
        return flag
    return os.geteuid() != 0 or running_in_userns()


def default_root(environ=os.environ):
    """The default ``--root`` and whether it is the XDG one (which gets the
    sticky bit so that the session's cleaner keeps it).

    As runc: an unprivileged caller uses ``$XDG_RUNTIME_DIR/pyrunc``; root
    in a partial user namespace does too unless ``USER`` is ``root``; real
    root keeps /run/pyrunc.  The user namespace is looked at only when euid
    is 0 and XDG_RUNTIME_DIR is set (the hot commands read nothing else)."""
    xdg = environ.get("XDG_RUNTIME_DIR")
    if os.geteuid() != 0:
        if not xdg:
            # runc falls back to /run/runc, which an unprivileged user cannot
            # create: say what is missing instead of "permission denied"
            raise PyruncError(
                f"XDG_RUNTIME_DIR is not set: an unprivileged user (uid {os.geteuid()}) "
                f"keeps container state in $XDG_RUNTIME_DIR/{XDG_SUBDIR}; set it or "
                "pass --root"
            )
        return os.path.join(xdg, XDG_SUBDIR), True
    if xdg and environ.get("USER") != "root" and running_in_userns():
        return os.path.join(xdg, XDG_SUBDIR), True
    return DEFAULT_ROOT, False
