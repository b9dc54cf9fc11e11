"""The last steps before the user process runs: shared by the init of
``create``/``run`` and by ``exec``.

Order (as runc, for the reasons given inline):
rlimits -> [seccomp if !noNewPrivileges] -> bounding set -> keepcaps ->
groups/gid/uid -> capabilities -> ambient -> [no_new_privs; seccomp] ->
close every fd but stdio and the preserved ones -> cwd check -> execve.

Everything here is plain syscalls on values computed before the fork: no
imports happen after the init entered the container's rootfs.
"""

import os
import resource  # an extension module: must be loaded before pivot_root

from . import syscalls as sc
from .errors import StageError

EXEC_FAILED = 127


def lookup_executable(args0, env, cwd="/"):
    """Resolve ``args0`` like execvp would, with the *container's* PATH.

    Called inside the container (after pivot_root) so that the result is the
    image's binary.  Raises StageError with runc's wording."""
    if "/" in args0:
        path = args0 if args0.startswith("/") else os.path.join(cwd, args0)
        _check_executable(path, args0)
        return path
    search = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for e in env:
        if e.startswith("PATH="):
            search = e[5:]
    for d in search.split(":"):
        candidate = os.path.join(d or ".", args0)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if (st.st_mode & 0o170000) == 0o100000 and os.access(candidate, os.X_OK):
            return candidate
    raise StageError(f'exec: "{args0}": executable file not found in $PATH')


def _check_executable(path, name):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise StageError(f'exec: "{name}": stat {path}: no such file or directory') from None
    except OSError as e:
        raise StageError(f'exec: "{name}": stat {path}: {e.strerror.lower()}') from None
    if (st.st_mode & 0o170000) == 0o040000:
        raise StageError(f'exec: "{name}": is a directory')
    if not os.access(path, os.X_OK):
        raise StageError(f'exec: "{name}": permission denied')


def _mask(nums):
    m = 0
    for n in nums:
        m |= 1 << n
    return m


def set_rlimits(rlimits):
    for r in rlimits:
        resource.setrlimit(r.resource, (r.soft, r.hard))


def drop_bounding_set(keep_nums, cap_count):
    keep = set(keep_nums)
    for n in range(cap_count):
        if n not in keep:
            try:
                sc.prctl(sc.PR_CAPBSET_DROP, n)
            except OSError as e:
                if e.errno != 22:  # EINVAL: not known to this kernel
                    raise


def switch_user(user):
    """setgroups, setresgid, setresuid; keeping capabilities across the uid
    change (PR_SET_KEEPCAPS) so the configured sets can be applied after."""
    sc.prctl(sc.PR_SET_KEEPCAPS, 1)
    try:
        os.setgroups(list(user.additional_gids))
    except PermissionError:
        # setgroups is denied in a user ns whose /proc/<pid>/setgroups is "deny"
        if user.additional_gids:
            raise
    os.setresgid(user.gid, user.gid, user.gid)
    os.setresuid(user.uid, user.uid, user.uid)
    sc.prctl(sc.PR_SET_KEEPCAPS, 0)


def apply_capabilities(caps, cap_count):
    if caps is None:
        return
    sc.capset(_mask(caps.get("effective", ())), _mask(caps.get("permitted", ())),
              _mask(caps.get("inheritable", ())))
    sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
    for n in caps.get("ambient", ()):
        try:
            sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, n)
        except OSError:
            pass  # not in permitted+inheritable: the spec says warn and continue


def finalize_and_exec(proc, path, *, cap_count, seccomp=None, keep_fds=(), on_seccomp=None):
    """Apply the process settings and execve ``path``.  Never returns."""
    if proc.rlimits:
        set_rlimits(proc.rlimits)
    if seccomp is not None and not proc.no_new_privileges:
        # Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the
        # capability step below may drop: load it first (runc does the same).
        fd = seccomp.load()
        if on_seccomp is not None:
            on_seccomp(fd)
    if proc.caps is not None:
        drop_bounding_set(proc.caps.get("bounding", ()), cap_count)
    switch_user(proc.user)
    if proc.caps is not None:
        apply_capabilities(proc.caps, cap_count)
    if proc.no_new_privileges:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    if seccomp is not None and proc.no_new_privileges:
        fd = seccomp.load()
        if on_seccomp is not None:
            on_seccomp(fd)
    if proc.user.umask is not None:
        os.umask(proc.user.umask)
    else:
        os.umask(0o022)
    # No fd of the runtime may reach the user process (CVE-2024-21626):
    # everything above stdio and the preserved fds is closed on exec.
    top = max(keep_fds) + 1 if keep_fds else 3
    sc.close_range(top, 0xFFFFFFFF, sc.CLOSE_RANGE_CLOEXEC)
    try:
        os.chdir(proc.cwd)
    except OSError as e:
        raise StageError(f"chdir to cwd ({proc.cwd!r}) set in config.json failed: {e.strerror.lower()}") from None
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = ""
    if not cwd.startswith("/"):
        raise StageError(f"current working directory is outside of container mount namespace root -- possible container breakout detected")
    env = {}
    for e in proc.env:
        k, _, v = e.partition("=")
        env[k] = v
    os.execve(path, proc.args, env)
