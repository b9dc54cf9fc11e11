"""``exec``: run a new process inside an existing container.

Stages (the same protocol as create, docs/stage-protocol.md):
the runtime opens the init's namespace files (/proc/<init>/ns/*) and forks;
the child is put into the container's cgroup, becomes non-dumpable
(CVE-2016-9962: the container must not ptrace it or read its fds), joins
the user namespace first and then the others (the mount namespace puts it
at the container's root), and forks again so that the pid and time
namespaces apply; the grandchild resolves args[0] inside the container and
applies the process settings (rlimits, user, capabilities, no_new_privs,
seccomp) and execs.  Its end of the channel is close-on-exec, so the
runtime learns of a successful exec from EOF, and of a failure from an
ERROR message with the root cause.
"""

from . import lightos as os  # os's calls without importing os (lightos.py)
import _signal  # the C module behind `signal`, without its enum import (ms per call)

from .stages import protocol as proto
from .stages.exec import SeccompAgent, exec_child
from .linux import syscalls as sc
from . import namespaces
from .capabilities import from_spec as caps_from_spec
from .config.convert import convert_process
from .console import connect_socket, connect_unix
from .cgroups.join import fork_into, late_join_fds
from .container import Container, preserved_fds, wait_foreground
from .errors import InvalidState, PyruncError, StageError
from .exeseal import require_sealed
from .faults import point as fault_point
from .log import log
from .state import write_atomic

TYPE_CHECKING = False  # typing is for the checker only: not imported at run time
if TYPE_CHECKING:
    from socket import socket as Socket


def build_process(
    cfg,
    process_doc=None,
    *,
    args=(),
    env=(),
    cwd=None,
    user=None,
    additional_gids=(),
    caps=(),
    no_new_privs=False,
    terminal=False,
    apparmor=None,
    label=None,
):
    """The Process record of an exec: from ``--process`` JSON (``terminal``
    forces a terminal, as ``--tty`` does), else from the container's
    process with the command-line overrides (as runc does)."""
    if process_doc is not None:
        proc = convert_process(process_doc, log.warning)
        return proc.replace(terminal=True) if terminal else proc
    base = cfg.process
    uid, gid = base.user.uid, base.user.gid
    if user:
        uid_text, _, gid_text = user.partition(":")
        try:
            uid = int(uid_text)
            if gid_text:  # without ":gid" the container's configured gid stays (as runc)
                gid = int(gid_text)
        except ValueError:
            raise PyruncError(f"exec --user {user!r}: must be <uid>[:<gid>] (numbers)") from None
    groups = [int(g) for g in additional_gids] if additional_gids else list(base.user.additional_gids)
    proc_caps = {k: list(v) for k, v in base.caps.items()} if base.caps is not None else None
    if caps:
        extra = caps_from_spec({k: list(caps) for k in ("bounding", "effective", "permitted")}, log.warning)
        if proc_caps is None:
            proc_caps = {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}
        for k, nums in extra.items():
            for n in nums:
                if n not in proc_caps.setdefault(k, []):
                    proc_caps[k].append(n)
        # --cap never grants inheritable capabilities (CVE-2022-29162)
    # as runc (which copies the container's process): the per-process
    # attributes of the container apply to its exec'd processes too
    return convert_process({}, log.warning).replace(
        args=list(args),
        env=list(base.env) + list(env),
        cwd=cwd or base.cwd,
        terminal=terminal,
        user=base.user.replace(uid=uid, gid=gid, additional_gids=groups),
        rlimits=base.rlimits,
        caps=proc_caps,
        no_new_privileges=no_new_privs or base.no_new_privileges,
        apparmor_profile=apparmor if apparmor is not None else base.apparmor_profile,
        selinux_label=label if label is not None else base.selinux_label,
        oom_score_adj=base.oom_score_adj,
        scheduler=base.scheduler,
        io_priority=base.io_priority,
        exec_cpu_affinity=base.exec_cpu_affinity,
    )


def exec_in(
    store,
    container_id,
    proc,
    *,
    detach=False,
    pid_file=None,
    console_socket=None,
    preserve_fds=0,
    ignore_paused=False,
    cgroup_sub=None,
    warmer=None,
):
    """Start ``proc`` in the container; return its exit status when in the
    foreground (128+n for signal n), 0 when detached.  ``warmer``: the
    caller's cgroups.join.ThreadedWarmer, stopped here once the stage has
    joined the cgroups."""
    require_sealed()
    c = Container.load(store, container_id)
    status = c.status
    if status == "stopped" or status == "creating":
        raise InvalidState("cannot exec in a stopped container")
    # A cgroup shared with a container that was paused is frozen as well
    # (runc calls this container paused too): the process would hang in it.
    if not ignore_paused and (status == "paused" or (status == "running" and _frozen(c))):
        raise InvalidState("cannot exec in a paused container (use --ignore-paused)")
    if not proc.args:
        raise PyruncError("exec: args must not be empty")
    _check_user_ids(proc.user)
    if proc.terminal and detach and not console_socket:
        raise PyruncError("cannot allocate tty if runc will detach without setting console socket")
    if console_socket and not proc.terminal:
        raise PyruncError("cannot use console socket if runc will not detach or allocate tty")
    cfg = store.load_config(container_id)
    from . import lsm
    from .process import ProcessAttrs

    lsm.check(proc.apparmor_profile, proc.selinux_label)
    attrs = ProcessAttrs(proc, cfg.personality, cfg.memory_policy)
    if pid_file:
        pid_file = os.path.abspath(pid_file)
    seccomp = None
    if cfg.seccomp:
        # the container's program, compiled once at create (an exec process
        # has no seccomp of its own in the spec)
        from .seccomp import PreparedSeccomp

        seccomp = PreparedSeccomp.from_record(cfg.seccomp)
    ns_fds = namespaces.open_of_process(c.state.init_pid, cfg.namespaces)
    tty_peer = None
    console: Socket | None
    if proc.terminal and not console_socket and not detach:
        # `exec -t` in the foreground without a console socket: as runc, the
        # pty is allocated in the container all the same, and its master
        # comes back over this socketpair to be relayed to our own stdio.
        import socket

        tty_peer, console = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        if proc.console_size is None and os.isatty(0):
            # the size of our terminal, set before the process starts (the
            # relay keeps it in step afterwards, on SIGWINCH)
            size = os.get_terminal_size(0)
            proc = proc.replace(console_size=(size.lines, size.columns))
    else:
        console = connect_socket(console_socket) if console_socket else None
    # (LISTEN_FDS/LISTEN_PID go to the init's environment only, as before)
    keep_fds = preserved_fds(preserve_fds)[0] if preserve_fds or os.environ.get("LISTEN_FDS") else ()
    mgr = c.cgroup_manager()
    cgroup_fds = ()
    if mgr is not None and mgr.exists() and not cgroup_sub:
        cgroup_fds, origin_fds = late_join_fds(cfg, mgr)
        for fd in origin_fds:  # exec joins the existing cgroup namespace by setns
            os.close(fd)
    agent = None
    if seccomp is not None and seccomp.uses_notify and seccomp.listener_path:
        agent = SeccompAgent(
            connect_unix(seccomp.listener_path, "seccomp listenerPath"),
            c.hook_state("running"),
            seccomp.listener_metadata,
        )
    parent_fd, child_fd = sc.socketpair()
    if not detach:
        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    born_in_cgroup = False
    if mgr is not None and mgr.exists() and not cgroup_fds and not cgroup_sub and attrs.affinity_initial is None:
        # joined at its fork; not with execCPUAffinity.initial, which the
        # spec sets before the process enters the container's cgroup
        child, born_in_cgroup = fork_into(mgr, warmer)
    else:
        child = os.fork()
    if child == 0:
        os.close(parent_fd)
        exec_child(proto.Channel(child_fd), proc, ns_fds, seccomp, console, keep_fds, attrs, cgroup_fds, agent)
    os.close(child_fd)
    if agent is not None:
        agent.sock.close()
    for fd in cgroup_fds:
        os.close(fd)
    if attrs.affinity_initial is not None:
        # before the cgroup move (spec): set from here, so it holds before
        # the child can run any of its setup
        os.sched_setaffinity(child, attrs.affinity_initial)
    for _, fd in ns_fds:
        os.close(fd)
    if console is not None:
        console.close()
    chan = proto.Channel(parent_fd)
    fault_point("exec:forked")
    target = None
    try:
        if not born_in_cgroup and mgr is not None and mgr.exists() and not cgroup_fds:
            mgr.apply(child) if not cgroup_sub else _apply_sub(mgr, cgroup_sub, child)
        chan.send(proto.CONTINUE)
        while True:
            try:
                mtype, payload = chan.recv()
            except proto.PeerGone:
                break
            if mtype == proto.ERROR:
                raise StageError(str(payload.get("msg", "exec failed")))
            if mtype == proto.INIT_PID:
                target = int(payload["pid"])
                os.waitpid(child, 0)
                child = -1
        if warmer is not None:
            warmer.stop()  # the stage has joined
        if target is None:
            raise StageError("exec: setup process exited unexpectedly")
    except BaseException:
        if child > 0:
            try:
                os.kill(child, _signal.SIGKILL)
                os.waitpid(child, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        if target:
            try:
                os.kill(target, _signal.SIGKILL)
            except ProcessLookupError:
                pass
        raise
    finally:
        chan.close()
    tty_master = None
    if tty_peer is not None:
        import socket

        try:
            # sent before the exec, which the channel's EOF reported
            _, fds, _, _ = socket.recv_fds(tty_peer, 4096, 1)
        finally:
            tty_peer.close()
        if not fds:
            raise StageError("exec: the process did not send its terminal")
        tty_master = fds[0]
    if pid_file:
        write_atomic(pid_file, str(target).encode(), 0o644)
    if detach:
        return 0
    return wait_foreground(target, tty_master)


MAX_ID = 2**31 - 1


def _frozen(c):
    mgr = c.cgroup_manager()
    return mgr is not None and mgr.is_frozen()


def _check_user_ids(user):
    """Refuse ids outside 0..2^31-1 (as runc) before anything starts: the
    syscalls take 32-bit ids, and 4294967295 is their -1, "unchanged", so
    such a process would keep the runtime's root.  Covers --process
    documents; the CLI checks its --user/--additional-gids flags first."""
    if user is None:
        return
    ids = [("uid", user.uid), ("gid", user.gid)]
    ids += [(f"additionalGids[{i}]", g) for i, g in enumerate(user.additional_gids or ())]
    for field, value in ids:
        if not isinstance(value, int) or not 0 <= value <= MAX_ID:
            raise PyruncError(f"process.user.{field}: {value} is outside the range 0-{MAX_ID}")


def _apply_sub(mgr, sub, pid):
    raise PyruncError("exec --cgroup: sub-cgroups are not supported yet")
