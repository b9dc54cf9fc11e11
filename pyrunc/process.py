"""The last steps before the user process runs: shared by the init of
``create``/``run`` and by ``exec``.

Order (docs/security.md explains each position):

  prepare_exec: every fd but stdio and the preserved ones close-on-exec ->
  $HOME from /etc/passwd -> cwd (as root; no magic links, verified);
  then oomScoreAdj -> personality -> rlimits -> scheduler -> ioPriority ->
  memoryPolicy -> LSM exec labels -> umask -> [seccomp if
  !noNewPrivileges] -> bounding set -> keepcaps, groups/gid/uid ->
  capabilities -> ambient -> [cwd again, as the user, if root was
  refused] -> execCPUAffinity.final -> no_new_privs -> [seccomp if
  noNewPrivileges] -> execve

Privileged settings come before the capabilities are dropped.  Once the
filter is loaded the runtime makes only the syscalls runc makes there (id
and capability switches, sched_setaffinity, prctl, execve): a profile
written before openat2 or close_range existed must not stop the runtime
itself (tests/integration/compat/test_seccomp_order.py).

Everything here is plain syscalls on values computed before the fork or
from already-loaded modules: no import happens after the init entered the
container's rootfs (docs/security.md; seal_imports is tested in
tests/unit/test_core_units.py).
"""

from . import lightos as os  # os's calls without importing os (lightos.py)
import _signal  # the C module behind `signal`, without its enum import

from . import capabilities, lsm
from .linux import syscalls as sc
from .errors import ConfigError, StageError
from .linux import procfs
from .linux.procwrite import write_proc_attr

EXEC_FAILED = 127

# CPython sets SIGPIPE and SIGXFSZ to "ignore" at start-up (a write then
# fails with EPIPE or EFBIG instead of killing the interpreter), and an
# ignored signal stays ignored across execve.  The processes pyrunc starts
# get them back at their default, as runc's do: a container's `yes | head`
# must end by SIGPIPE (tests/integration/compat/test_signal_dispositions.py).
PYTHON_IGNORED_SIGNALS = (_signal.SIGPIPE, _signal.SIGXFSZ)


def set_ignored_signals(handler):
    for signum in PYTHON_IGNORED_SIGNALS:
        _signal.signal(signum, handler)


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
        raise StageError(f'exec: "{name}": stat {path}: {(e.strerror or "").lower()}') from None
    if (st.st_mode & 0o170000) == 0o040000:
        raise StageError(f'exec: "{name}": is a directory')
    if not os.access(path, os.X_OK):
        raise StageError(f'exec: "{name}": permission denied')


def set_rlimits(rlimits):
    for r in rlimits:
        sc.setrlimit(r.resource, r.soft, r.hard)


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


# --- the spec's per-process attributes ---------------------------------------
PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}

SCHED_POLICIES = {
    "SCHED_OTHER": 0,
    "SCHED_FIFO": 1,
    "SCHED_RR": 2,
    "SCHED_BATCH": 3,
    "SCHED_ISO": 4,
    "SCHED_IDLE": 5,
    "SCHED_DEADLINE": 6,
}
SCHED_FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01,
    "SCHED_FLAG_RECLAIM": 0x02,
    "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08,
    "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
    "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}

IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
IOPRIO_WHO_PROCESS = 1
IOPRIO_CLASS_SHIFT = 13

MPOL_MODES = {
    "MPOL_DEFAULT": 0,
    "MPOL_PREFERRED": 1,
    "MPOL_BIND": 2,
    "MPOL_INTERLEAVE": 3,
    "MPOL_LOCAL": 4,
    "MPOL_PREFERRED_MANY": 5,
    "MPOL_WEIGHTED_INTERLEAVE": 6,
}
MPOL_FLAGS = {"MPOL_F_STATIC_NODES": 1 << 15, "MPOL_F_RELATIVE_NODES": 1 << 14, "MPOL_F_NUMA_BALANCING": 1 << 13}


def parse_cpu_list(text, field):
    """``0-3,7`` -> {0, 1, 2, 3, 7} (also memory node lists)."""
    try:
        return set(procfs.parse_cpu_list(text))
    except ValueError:
        raise ConfigError(f"config.json: {field}: {text!r} is not a list like 0-3,7") from None


class ProcessAttrs:
    """The per-process attributes of the spec as syscall arguments, taken
    from the converted records (config/convert.py computed them, so bad
    values failed at conversion and the container side only issues
    syscalls).  ``proc``: a config.model.Process; ``personality``: the
    persona number or None; ``memory_policy``: a config.model.MemoryPolicy
    or None; ``exec_affinity``: whether execCPUAffinity applies (not to the
    init, spec)."""

    __slots__ = ("personality", "sched", "ioprio", "mempolicy", "affinity_initial", "affinity_final")

    def __init__(self, proc, personality=None, memory_policy=None, exec_affinity=True):
        self.personality = personality
        s = proc.scheduler
        self.sched = None if s is None else (s.policy, s.flags, s.nice, s.priority, s.runtime, s.deadline, s.period)
        self.ioprio = proc.io_priority
        self.mempolicy = (
            None if memory_policy is None else (memory_policy.mode, memory_policy.nodemask, memory_policy.maxnode)
        )
        aff = proc.exec_cpu_affinity if exec_affinity else None
        self.affinity_initial = set(aff.initial) if aff is not None and aff.initial else None
        self.affinity_final = set(aff.final) if aff is not None and aff.final else None

    def apply_privileged(self):
        """Before the capabilities are dropped: these may need CAP_SYS_NICE
        (realtime policies, negative nice) or CAP_SYS_ADMIN (IOPRIO_CLASS_RT)."""
        if self.sched is not None:
            policy, flags, nice, prio, runtime, deadline, period = self.sched
            attr = sc.SchedAttr(
                sched_policy=policy,
                sched_flags=flags,
                sched_nice=nice,
                sched_priority=prio,
                sched_runtime=runtime,
                sched_deadline=deadline,
                sched_period=period,
            )
            sc.sched_setattr(0, attr)
        if self.ioprio is not None:
            sc.ioprio_set(IOPRIO_WHO_PROCESS, 0, self.ioprio)
        if self.mempolicy is not None:
            sc.set_mempolicy(*self.mempolicy)


def apply_personality(persona):
    if persona is not None:
        sc.personality(persona)


def set_oom_score_adj(value):
    """Through the container's verified procfs; skipped when already set
    (the runtime writes it for the init from the host)."""
    if value is None:
        return
    try:
        if int(os.read_file("/proc/self/oom_score_adj")) == value:
            return
    except (OSError, ValueError):
        pass
    write_proc_attr("oom_score_adj", str(value))


def passwd_home(uid, path="/etc/passwd"):
    """The home field of the first entry of the container's /etc/passwd
    whose uid is ``uid``; "/" when there is none or the file cannot be read
    (runc's defaults).  Called after pivot_root (or, in exec, after joining
    the mount namespace), so ``path`` is the image's file.

    Only syscalls and already-loaded modules (no import may happen inside
    the container's root).  The file belongs to the image: no magic link is
    followed (it could lead to a runtime fd), only a regular file is read
    (a FIFO would block the init), opened non-blocking, and at most
    PASSWD_MAX bytes of it (a huge sparse file must not stall the start)."""
    try:
        fd = sc.openat2(sc.AT_FDCWD, path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY, sc.RESOLVE_NO_MAGICLINKS)
    except OSError:
        return "/"
    try:
        if (os.fstat(fd).st_mode & 0o170000) != 0o100000:
            return "/"
        return _home_in(fd, uid)
    except OSError:
        return "/"
    finally:
        os.close(fd)


PASSWD_MAX = 64 << 20  # bytes of /etc/passwd read at most
PASSWD_LINE_MAX = 64 << 10  # longer lines are skipped (as Go's line scanner gives up on them)


def _home_in(fd, uid):
    """Stream the file in 64 KiB chunks (memory stays bounded: after the
    start the init is charged to the container's cgroup) and stop at the
    first entry of ``uid``."""
    buf = b""
    skip = False  # inside a line longer than PASSWD_LINE_MAX
    total = 0
    while total < PASSWD_MAX:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        total += len(chunk)
        lines = (buf + chunk).split(b"\n")
        buf = lines.pop()
        if skip:
            if not lines:
                buf = b""
                continue
            del lines[0]
            skip = False
        if len(buf) > PASSWD_LINE_MAX:
            buf, skip = b"", True
        for line in lines:
            home = _entry_home(line, uid)
            if home is not None:
                return home
    home = None if skip else _entry_home(buf, uid)
    return "/" if home is None else home


def _entry_home(line, uid):
    # name:password:uid:gid:gecos:home:shell; blanks around the line are
    # ignored, as runc's parser does; a missing home field is empty there too
    fields = line.strip().split(b":")
    if len(fields) > 2 and fields[2].isdigit() and int(fields[2]) == uid:
        return os.fsdecode(fields[5]) if len(fields) > 5 else ""
    return None


def mark_fds_cloexec(top):
    """Every fd from ``top`` up close-on-exec (close_range), one fcntl per
    fd on kernels without CLOSE_RANGE_CLOEXEC (< 5.11: EINVAL; < 5.9:
    ENOSYS).  Done before the seccomp filter: close_range is younger than
    many profiles."""
    try:
        sc.close_range(top, 0xFFFFFFFF, sc.CLOSE_RANGE_CLOEXEC)  # to the last fd
        return
    except OSError as e:
        if e.errno not in (22, 38, 1):  # EINVAL, ENOSYS, EPERM
            raise
    for fd in range(top, os.sysconf("SC_OPEN_MAX")):
        try:
            os.set_inheritable(fd, False)
        except OSError:
            pass  # not open


def open_cwd(cwd, *, defer_permission=False):
    """chdir to ``cwd`` without ever following a magic link (a ``cwd`` of
    /proc/self/fd/N, or a symlink to one, would land on whatever the fd is:
    CVE-2024-21626), then verify that the kernel sees the new cwd inside
    the root.

    ``defer_permission``: return False instead of failing when the caller
    may not reach ``cwd`` (EACCES/EPERM); the caller tries again after the
    user switch, as runc does (a cwd only the container user can reach).

    When openat2 itself is refused (EPERM from a seccomp filter loaded
    before this retry; ENOSYS on kernel < 5.6), plain chdir is used: the
    getcwd check below is what refuses a cwd outside the root then."""
    try:
        fd = sc.openat2(sc.AT_FDCWD, cwd, os.O_PATH | os.O_DIRECTORY, sc.RESOLVE_NO_MAGICLINKS, display=cwd)
    except OSError as e:
        fd = -1
        err = e.errno or 5  # EIO: the wrapper always sets errno; never read 0 as success
        if err in (1, 38):  # EPERM, ENOSYS: openat2 itself is unusable here
            try:
                os.chdir(cwd)
                err = 0
            except OSError as e2:
                err = e2.errno or 5
        if err == 40:  # ELOOP: a magic link on the way
            raise StageError(
                f"cwd {cwd!r} set in config.json resolves through a /proc magic link; "
                "refused (possible container breakout)"
            ) from None
        if err in (1, 13) and defer_permission:  # EPERM, EACCES
            return False
        if err:
            raise StageError(f"chdir to cwd ({cwd!r}) set in config.json failed: {os.strerror(err).lower()}") from None
    if fd >= 0:
        try:
            os.fchdir(fd)
        finally:
            os.close(fd)
    try:
        real = os.getcwd()
    except OSError:
        real = ""
    if not real.startswith("/"):
        raise StageError(
            "current working directory is outside of container mount namespace root "
            "-- possible container breakout detected"
        )
    return True


def _spawn_forked(path, args, env):
    """posix_spawn's job with fork + execve, for when a loaded seccomp
    filter refuses the clone3 that glibc's posix_spawn uses (profiles older
    than clone3 answer EPERM, and glibc falls back to clone only on ENOSYS).
    The child is a fork of this non-dumpable, sealed process (as with exec
    -t) until its execve; an execve failure comes back through a
    close-on-exec pipe, as posix_spawn reports it."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setsid()
            set_ignored_signals(_signal.SIG_DFL)
            os.execve(path, args, env)
        except OSError as e:
            os.write(w, str(e.errno or 0).encode())
        finally:
            os._exit(EXEC_FAILED)
    os.close(w)
    try:
        err = os.read(r, 16)
    finally:
        os.close(r)
    if err:
        os.waitpid(pid, 0)
        code = int(err)
        raise OSError(code, os.strerror(code), path)
    return pid


def prepare_exec(proc, keep_fds=()):
    """The first of the last steps: what needs syscalls younger than many
    seccomp profiles (close_range, openat2), or root's privileges, and so
    must come before any filter.  Returns ``(env, cwd_done)`` for
    finalize_and_exec; the init calls it itself before it waits for
    `start` (as runc's init), ``exec``'s stage through finalize_and_exec."""
    # No fd of the runtime may reach the user process (CVE-2024-21626):
    # everything above stdio and the preserved fds is closed on exec.
    # Close-on-exec rather than closed: the start socket must stay open
    # until the exec succeeds (its EOF tells `start`).  Every fd opened
    # after this is close-on-exec already (Python's default; the kernel's
    # for the seccomp listener; accept4 with SOCK_CLOEXEC).
    mark_fds_cloexec(max(keep_fds) + 1 if keep_fds else 3)
    env = {}
    for e in proc.env:
        k, _, v = e.partition("=")
        env[k] = v
    if not env.get("HOME"):
        # as runc: missing or empty HOME comes from the image's passwd entry
        # of the process user; read as root
        env["HOME"] = passwd_home(proc.user.uid)
    # The cwd is entered with the runtime's privileges; if even root may not
    # reach it (a user namespace), again as the user after the switch.
    return env, open_cwd(proc.cwd, defer_permission=True)


def finalize_and_exec(
    proc,
    path,
    *,
    cap_count,
    seccomp=None,
    keep_fds=(),
    on_seccomp=None,
    attrs=None,
    spawn=False,
    prepared=None,
    on_committed=None,
):
    """Apply the process settings and execve ``path``.  Never returns.

    ``spawn``: apply them to this process, then start ``path`` in a new
    session with posix_spawn (a vfork child that execs at once) and return
    its pid.  ``exec`` uses it so that no Python process ever sits in the
    container's pid namespace, where a container with CAP_SYS_PTRACE could
    open its /proc/<pid>/exe (the host interpreter, CVE-2019-5736): only the
    vfork child enters it, for the microseconds before its execve.  Under a
    seccomp filter that refuses posix_spawn's clone3, a fork of this
    (sealed, non-dumpable) process does (:func:`_spawn_forked`).

    ``attrs``: a :class:`ProcessAttrs` computed before the fork (None: the
    process sets no scheduler/ioPriority/memoryPolicy/personality/affinity).

    ``prepared``: what :func:`prepare_exec` returned, when the caller ran it
    already (before loading a notifying filter).

    ``on_committed``: called once every step that can fail has been taken
    but a filter loaded under no_new_privs and the execve, provided the
    caller can still write then: no filter is loaded yet, or the one loaded
    early (without no_new_privs) allows write(2) whatever its arguments
    (``PreparedSeccomp.allows_write``).  The init then tells ``start`` that
    it need not wait for the execve (stages/init.py)."""
    env = finalize(
        proc,
        cap_count=cap_count,
        seccomp=seccomp,
        keep_fds=keep_fds,
        on_seccomp=on_seccomp,
        attrs=attrs,
        prepared=prepared,
    )
    if on_committed is not None and (seccomp is None or proc.no_new_privileges or seccomp.allows_write):
        on_committed()
    if spawn:
        # a spawned child gets them from posix_spawn, or _spawn_forked
        return _final_filter_and_spawn(proc, path, env, seccomp, on_seccomp)
    exec_final(proc, path, env, seccomp, on_seccomp)


def finalize(
    proc, *, cap_count, seccomp=None, keep_fds=(), on_seccomp=None, attrs=None, prepared=None, exec_labels=True
):
    """Every setting of the process but a filter under no_new_privs, in
    order (finalize_and_exec's steps before the execve).  Returns the
    environment for the execve.  The init calls it before it waits when the
    waiter waits (waiter.py): what is left then is only exec_final's, and
    the AppArmor label (``exec_labels`` False), which the waiter writes
    after its own execve."""
    env, cwd_done = prepared if prepared is not None else prepare_exec(proc, keep_fds)
    set_oom_score_adj(proc.oom_score_adj)
    if attrs is not None:
        # before seccomp: a filter may forbid personality(2) (Docker's does)
        apply_personality(attrs.personality)
    if proc.rlimits:
        set_rlimits(proc.rlimits)
    if attrs is not None:
        attrs.apply_privileged()
    if exec_labels:
        lsm.apply_exec_labels(proc.apparmor_profile, proc.selinux_label)
    os.umask(proc.user.umask if proc.user.umask is not None else 0o022)
    if seccomp is not None and not proc.no_new_privileges:
        # Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the
        # capability step below may drop: load it first (runc does the same).
        _load_filter(seccomp, on_seccomp)
    if proc.caps is not None:
        capabilities.drop_bounding_set(proc.caps.get("bounding", ()), cap_count)
    switch_user(proc.user)
    if proc.caps is not None:
        capabilities.apply(proc.caps)
    if not cwd_done:
        open_cwd(proc.cwd)
    if attrs is not None and attrs.affinity_final is not None:
        os.sched_setaffinity(0, attrs.affinity_final)
    if proc.no_new_privileges:
        sc.prctl(sc.PR_SET_NO_NEW_PRIVS, 1)
    return env


def exec_final(proc, path, env, seccomp=None, on_seccomp=None):
    """The last steps: the signals CPython ignores back to their default, a
    filter under no_new_privs, the execve.  Returns only by an exception
    (StageError with runc's words for a failing execve)."""
    # As late as can be (a write into a closed pipe would now kill this
    # process rather than fail), yet before a last filter: after it, only
    # the execve.
    set_ignored_signals(_signal.SIG_DFL)
    try:
        if seccomp is not None and proc.no_new_privileges:
            _load_filter(seccomp, on_seccomp)  # the very last step: nothing we still do can be refused
        os.execve(path, proc.args, env)
    except BaseException as e:
        # the caller reports the failure on the start socket or stderr, whose
        # reader may be gone: EPIPE then, not death by SIGPIPE
        try:
            set_ignored_signals(_signal.SIG_IGN)
        except OSError:
            pass  # the filter refuses rt_sigaction: the failure still gets out
        if isinstance(e, OSError) and e.filename == path and e.strerror:
            raise StageError(f"exec {path}: {e.strerror.lower()}") from None  # runc's words
        raise


def _load_filter(seccomp, on_seccomp):
    fd = seccomp.load()
    if on_seccomp is not None:
        on_seccomp(fd)


def _final_filter_and_spawn(proc, path, env, seccomp, on_seccomp):
    if seccomp is not None and proc.no_new_privileges:
        _load_filter(seccomp, on_seccomp)
    try:
        return os.posix_spawn(path, proc.args, env, setsid=True, setsigdef=PYTHON_IGNORED_SIGNALS)
    except OSError as e:
        # EPERM/ENOSYS: a filter (ours, or one this runtime inherited)
        # refuses clone3; a real execve failure recurs in the fallback
        if e.errno not in (1, 38):
            raise
    return _spawn_forked(path, proc.args, env)
