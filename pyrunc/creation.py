"""Creating a container, the runtime's side: ``create`` and ``run``.

``create`` validates and converts the config, makes the state directory and
the cgroup, forks the stages (pyrunc/stages/init.py) and drives them through
the stage protocol (docs/stage-protocol.md) until the init waits for
``start``; any failure undoes all of it.  ``run`` is create, start and (in
the foreground) the wait.  The other verbs live in container.py: they do
not import this module, the biggest of the lifecycle (``start``, ``kill``,
``state`` and ``delete`` run on every container and pay for every module
they load).
"""

from . import lightos as os  # os's calls without importing os (lightos.py)

from . import state as st
from .container import Container, delete, now_rfc3339, preserved_fds, signal_init, start, wait_foreground, wait_gone
from .errors import PyruncError, StageError
from .faults import fail as fault_fail
from .faults import point as fault_point
from .log import log


def create(
    store,
    container_id,
    bundle,
    *,
    config_path=None,
    pid_file=None,
    console_socket=None,
    no_pivot=False,
    no_new_keyring=False,
    preserve_fds=0,
    detach=True,
    debug=False,
    subreaper=False,
    console=None,
    systemd_cgroup=False,
    rootless_cgroups=False,
    warmer=None,
    waiter_after=None,
    init_is_child=False,
):
    """Create the container; return the ``Container`` in status created.

    ``waiter_after``: when the created init may become the waiter
    (waiter.py): ``"exit"``, once this process has exited (the CLI);
    ``"create"``, once this call returns (a library caller); None, never
    (``start`` follows at once: ``run``).

    ``rootless_cgroups`` (``--rootless``, auto-detected by the CLI): a cgroup
    the caller may not make is no error unless limits need it (rootless.py).

    ``systemd_cgroup`` (``--systemd-cgroup``): the cgroup is a systemd unit
    named by ``linux.cgroupsPath`` ``slice:prefix:name`` (cgroups/systemd.py).

    ``console``: an already connected socket to send the pty master to
    (``run`` in the foreground with a terminal), instead of ``console_socket``.

    ``warmer``: the caller's cgroups.join.ThreadedWarmer, started first
    thing, stopped here once the init has joined its cgroups.

    ``init_is_child``: the caller may have the container's init as its own
    child (the CLI: it exits right after, or reaps it in the foreground);
    then, where the config lets it, there is no intermediate stage
    (``_init_forked_directly``)."""
    from .capabilities import known_cap_count
    from .config.convert import build
    from .config.host import check_host
    from .config.validate import load_config
    from .exeseal import require_sealed

    require_sealed()
    st.validate_id(container_id)
    bundle = os.path.abspath(bundle or ".")
    config_path = os.path.join(bundle, config_path or "config.json")
    doc = load_config(config_path)
    # the judgement `pyrunc validate` reports (config/convert.py build)
    cfg = build(doc, bundle, warn=log.warning, systemd_cgroup=systemd_cgroup)
    _check_console(cfg, console_socket or console, detach)
    check_host(cfg)
    attrs = None
    if cfg.process:
        from .process import ProcessAttrs

        # execCPUAffinity does not apply to the init (spec)
        attrs = ProcessAttrs(cfg.process, cfg.personality, cfg.memory_policy, exec_affinity=False)
    if pid_file:
        pid_file = os.path.abspath(pid_file)

    store.create_dir(container_id)
    state = st.ContainerState(
        id=container_id,
        bundle=bundle,
        rootfs=cfg.root_path,
        created=now_rfc3339(),
        oci_version=cfg.oci_version,
        annotations=cfg.annotations,
        owner_uid=os.geteuid(),
    )
    c = Container(store, state)
    fault_point("create:state-dir")
    mgr = seccomp_listener = None
    shared = False
    cgroup_fds = origin_fds = ()
    child = init_pid = -1
    chan = None
    listen_fd = -1
    try:
        store.save_config(container_id, cfg, doc)
        # What does not need the cgroup comes first: on cgroup v1 the lock
        # warmer's first write (runtime.py, _lock_warmer) waits out an RCU
        # grace period holding the kernel's cgroup_mutex, and mgr.create()'s
        # mkdir waits for that mutex (docs/performance.md section 21).
        seccomp = None
        if cfg.seccomp:
            # compiled at conversion; laid out for seccomp(2) here
            from .seccomp import PreparedSeccomp

            seccomp = PreparedSeccomp.from_record(cfg.seccomp)
            if seccomp.uses_notify and seccomp.listener_path:
                from .console import connect_unix

                seccomp_listener = connect_unix(seccomp.listener_path, "seccomp listenerPath")
        hook_runner = None
        if any(cfg.hooks.get(k) for k in ("createContainer", "startContainer")):
            from .hooks import run_hooks

            hook_runner = run_hooks
        from .stages import init as stages
        from .stages.jobs import InitJob
        from .stages import protocol as proto
        from .rootfs import plan
        from .caller import running_in_userns

        # in any user namespace but the host's, mknod is refused: devices are
        # bound from the host also when pyrunc itself runs in one (podman)
        mount_ops = plan(
            cfg,
            in_userns=cfg.namespace("user") is not None,
            host_devices=cfg.namespace("user") is not None or running_in_userns(),
        )
        if debug:
            for op in mount_ops:
                log.debug("mount plan: " + op.describe())
        listen_fd = _listen_start_socket(store.dir(container_id))
        if console_socket:
            from .console import connect_socket

            console = connect_socket(console_socket)
        keep_fds, listen_env = preserved_fds(preserve_fds)
        if listen_env:
            # this create's socket activation: the init's environment only,
            # not the persisted config's
            cfg = cfg.replace(process=cfg.process.replace(env=_with_listen_env(cfg.process.env, listen_env)))
        from .cgroups import new_manager

        # refused before it is ours: the frozen cgroup is another container's
        # (shared cgroupsPath), whose processes undoing would kill
        mgr = _not_frozen(
            new_manager(
                cfg.cgroups_path,
                container_id,
                systemd=systemd_cgroup,
                annotations=cfg.annotations,
                rootless=rootless_cgroups,
            )
        )
        # A cgroupsPath shared with a running container (runc allows it):
        # its processes are not ours, a failed create leaves them and the
        # cgroup alone (this container's own processes are killed by pid).
        shared = mgr.exists() and bool(mgr.pids())
        state.cgroup = mgr.to_dict()
        early_fork = _fork_before_cgroup(cfg, systemd_cgroup, rootless_cgroups)
        direct = early_fork and init_is_child and _init_forked_directly(cfg, mount_ops)
        if not direct:
            # from here on, delete --force can undo what exists (a directly
            # forked init's record is written once, below, with its pid)
            store.save(state)
        job = InitJob(
            cfg=cfg,
            container_id=container_id,
            bundle=bundle,
            mount_ops=mount_ops,
            listen_fd=listen_fd,
            console_sock=console,
            no_pivot=no_pivot,
            no_new_keyring=no_new_keyring,
            seccomp=seccomp,
            keep_fds=keep_fds,
            cap_count=known_cap_count(),
            debug=log.debug if debug else None,
            hook_runner=hook_runner,
            seccomp_listener=seccomp_listener,
            attrs=attrs,
            waiter_after=waiter_after,
        )
        from .linux import syscalls as sc

        if subreaper:
            sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
        if early_fork:
            # The stages start before the cgroup exists: on cgroup v1 the
            # mkdirs wait for the kernel's cgroup_mutex, which the lock
            # warmer's first write holds through an RCU grace period, and the
            # init's namespace and mount work goes on meanwhile.  It joins
            # late anyway; CGROUPS_CREATED brings it the cgroup.procs fds
            # (docs/stage-protocol.md).
            job.cgroups_pending = True
            job.cgroup_dirs = mgr.paths()
            child, chan, _ = _fork_stages(job, stages, proto, mgr, warmer, direct=direct)
            if direct:
                fault_point("create:direct-forked")
                # the init itself: its pid is known now, no INIT_PID comes.
                # One write where there were two: each state.json written
                # over another is an inode allocated and one freed
                # (docs/performance.md section 25).  An init whose pid is
                # not yet recorded exits when this process does (the EOF of
                # its channel).
                state.init_pid, state.init_start = child, st.proc_start_time(child)[0]
                child = -1
                store.save(state)
            fault_point("create:forked")
            _send_to_stages(chan.send, proto.CONTINUE)
        mgr.create()
        _not_frozen(mgr)  # new levels under a frozen parent are frozen too
        if rootless_cgroups:
            from .rootless import settle_cgroup

            try:
                mgr = settle_cgroup(
                    mgr, cfg.resources, explicit_path=bool(cfg.cgroups_path), wanted=(state.cgroup or {}).get("paths")
                )
            except PyruncError:
                if not mgr.exists():
                    mgr = None  # nothing was made: nothing for the undo to kill or remove
                raise
            if getattr(mgr, "null", False):  # no cgroup of its own: none to record
                state.cgroup = None
                store.save(state)
        # The device cgroup gets linux.resources.devices and the default
        # allow list only: creating a node (linux.devices) does not allow it
        # (as in runc; a deny-all policy keeps a created /dev/kmsg closed).
        resources = cfg.resources
        fault_point("create:cgroup")
        from .cgroups.join import late_join_fds

        cgroup_fds, origin_fds = late_join_fds(cfg, mgr)
        if job.cgroups_pending:
            if not cgroup_fds:
                from .errors import CgroupError

                raise CgroupError(f"cannot open cgroup.procs of {mgr.path} for the container's init")
            assert chan is not None  # forked above, with cgroups_pending
            # (the runtime's own cgroups last, for a new cgroup namespace)
            _send_to_stages(chan.send_fds, proto.CGROUPS_CREATED, cgroup_fds + origin_fds, {"origin": len(origin_fds)})
            if state.init_pid:
                _init_pid_known(c, mgr, resources)
        else:
            job.cgroup_fds, job.origin_fds = cgroup_fds, origin_fds
            job.cgroup_dirs = mgr.paths() if cgroup_fds else None
            child, chan, born_in_cgroup = _fork_stages(job, stages, proto, mgr, warmer)
            fault_point("create:forked")
            if not cgroup_fds and not born_in_cgroup:
                mgr.apply(child)
            chan.send(proto.CONTINUE)
        assert chan is not None  # (for the type checker: forked in either branch)
        init_pid = _drive_stages(chan, proto, c, cfg, child, mgr, resources, state.init_pid or None)
        if warmer is not None:
            warmer.stop()  # the init has joined its cgroups
        for fd in cgroup_fds + origin_fds:
            os.close(fd)
        cgroup_fds = origin_fds = ()
        for sock in (console, seccomp_listener):
            if sock is not None:
                sock.close()
        console = seccomp_listener = None
        os.close(listen_fd)
        listen_fd = -1
        if cfg.process and cfg.process.oom_score_adj is not None:
            with open(f"/proc/{init_pid}/oom_score_adj", "w") as f:
                f.write(str(cfg.process.oom_score_adj))
        store.save(state, unless_written=True, exchange=sc.rename_exchange)
        if pid_file:
            st.write_atomic(pid_file, str(init_pid).encode(), 0o644)
        chan.close()
        return c
    except BaseException:
        for fd in cgroup_fds + origin_fds:
            os.close(fd)
        if warmer is not None:
            warmer.stop()
        _undo_create(store, state, None if shared else mgr, child, chan, listen_fd, console)
        if seccomp_listener is not None:
            seccomp_listener.close()
        raise


def _fork_before_cgroup(cfg, systemd_cgroup, rootless_cgroups):
    """Whether the stages may be forked before the cgroup is made: they join
    it late (no user namespace: cgroups/join.py, late_join_fds; a new
    cgroup namespace is then made by the init once the cgroup exists), and
    the driver is the cgroupfs one of a root runtime (systemd starts its
    unit with a pid; a rootless cgroup may turn out not to exist)."""
    return cfg.namespace("user") is None and not systemd_cgroup and not rootless_cgroups


def _send_to_stages(send, *args):
    """A message to stages that run while the runtime makes the cgroups:
    one that failed meanwhile has closed the channel, and its ERROR (or
    how it died), read next by _drive_stages, is the error to report."""
    try:
        send(*args)
    except (BrokenPipeError, ConnectionResetError):
        pass


def _init_forked_directly(cfg, mount_ops):
    """Whether the runtime forks the init itself, without an intermediate
    stage: when the init needs nothing done before its fork that only a
    stage could do.  A new pid namespace the runtime unshares for its
    children (and takes back after the fork); none joined by path (the
    forked process would be in a foreign pid namespace before it could
    make itself non-dumpable); no time namespace (its offsets are written
    before the first child); no id-mapped mount (its user namespace is
    made by a child whose maps are written through the host's /proc, where
    a pid of the new pid namespace names another process).  For the CLI
    only (``init_is_child``): a library caller would have to reap it."""
    pid = cfg.namespace("pid")
    return (
        (pid is None or not pid.path)
        and cfg.namespace("time") is None
        and not any(getattr(op, "idmap", None) for op in mount_ops)
    )


def _fork_stages(job, stages, proto, mgr, warmer, direct=False):
    """Fork the intermediate stage (``direct``: the init itself, in a new
    pid namespace when the config has one); returns (pid, the runtime's
    channel, whether it was born in its cgroup)."""
    import gc

    from .cgroups.join import fork_into
    from .linux import syscalls as sc

    log.open_for_stages()
    parent_fd, child_fd = sc.socketpair()
    gc.freeze()  # objects made so far (the config...) are never touched by a collection in the stages
    if job.waiter_after == "exit":
        job.runtime_pidfd = os.pidfd_open(os.getpid())  # close-on-exec
    born_in_cgroup = False
    own_pidns = -1
    child = -1
    try:
        if direct and job.cfg.has_new_namespace("pid"):
            own_pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            sc.unshare(sc.CLONE_NEWPID)  # for our next child only
        try:
            if direct or job.cgroup_fds or job.cgroups_pending:  # the init joins late (cgroups/join.py)
                child = os.fork()
            else:
                child, born_in_cgroup = fork_into(mgr, warmer)
        finally:
            if child != 0 and own_pidns >= 0:
                # our later children (hooks) in our own pid namespace again,
                # also when the fork failed
                fault_fail("create:pidns-back")
                sc.setns(own_pidns, sc.CLONE_NEWPID)
        if child == 0:
            os.close(parent_fd)
            if direct:
                stages.direct_init_main(proto.Channel(child_fd), job)
            else:
                stages.intermediate_main(proto.Channel(child_fd), job)
            os._exit(1)  # not reached
    except BaseException:
        if child > 0:  # forked, but our pid namespace not taken back: no stage left behind
            os.kill(child, 9)
            os.waitpid(child, 0)
        os.close(parent_fd)
        os.close(child_fd)
        raise
    finally:
        if child != 0:
            if own_pidns >= 0:
                os.close(own_pidns)
            if job.runtime_pidfd >= 0:
                os.close(job.runtime_pidfd)
                job.runtime_pidfd = -1
    os.close(child_fd)
    return child, proto.Channel(parent_fd), born_in_cgroup


def _not_frozen(mgr):
    """Refuse a frozen cgroup (as runc): the stages joining it would stop
    at their first step and create would hang."""
    if mgr.is_frozen():
        from .errors import CgroupError

        raise CgroupError(
            f"container's cgroup unexpectedly frozen ({mgr.path}: paused by another container, or a frozen parent)"
        )
    return mgr


def _check_console(cfg, console_socket, detach):
    """The terminal of config.json against the caller's options (as runc)."""
    terminal = cfg.process.terminal
    if terminal and detach and not console_socket:
        raise PyruncError("cannot allocate tty if runc will detach without setting console socket")
    if console_socket and not terminal:
        raise PyruncError("cannot use console socket if runc will not detach or allocate tty")


def _listen_start_socket(state_dir):
    """The init accepts on this socket to learn that `start` was called.
    Bound by a relative name from inside the state dir (sun_path is 108
    bytes; state dirs can be longer)."""
    from .linux.syscalls import unix_listen

    cwd = os.open(".", os.O_PATH | os.O_CLOEXEC) if os.path.exists(".") else None
    try:
        os.chdir(state_dir)
        return unix_listen(st.START_SOCKET)
    finally:
        if cwd is not None:
            os.fchdir(cwd)
            os.close(cwd)


def _with_listen_env(env, listen_env):
    return [e for e in env if not e.startswith(("LISTEN_FDS=", "LISTEN_PID="))] + list(listen_env)


def _write_id_maps(pid, cfg):
    # root writes them; an unprivileged caller writes its own id or uses
    # newuidmap/newgidmap (rootless.py)
    from .rootless import write_id_maps

    write_id_maps(pid, cfg.uid_mappings, cfg.gid_mappings)


def _init_pid_known(c, mgr, resources):
    """What the runtime does once it knows the init's pid (INIT_PID, or the
    fork of an init without an intermediate) and the cgroup exists."""
    from .linux import syscalls as sc

    # delete --force can now find and kill the init; state.json exists, so
    # it is exchanged in (state.write_atomic), unless a directly forked
    # init's record already holds the same bytes
    c.store.save(c.state, unless_written=True, exchange=sc.rename_exchange)
    # Limits are set once the init exists: a pids limit of 0 is a valid
    # limit (config-linux.md) and must not stop the stages' own forks.
    mgr.set(resources, initial=True)
    fault_point("create:init-pid")


def _drive_stages(chan, proto, c, cfg, child, mgr, resources, init_pid=None):
    """The runtime's side of the stage protocol; returns the init pid.
    ``init_pid``: known already (an init forked without an intermediate)."""
    while True:
        try:
            mtype, payload = chan.recv()
        except proto.PeerGone:
            raise StageError(_why_gone(child, init_pid)) from None
        except proto.ProtocolError as e:
            raise StageError(f"stage protocol: {e}") from None
        if mtype == proto.ERROR:
            raise StageError(str(payload.get("msg", "unknown error in container setup")))
        if mtype == proto.WRITE_MAPS:
            _write_id_maps(child, cfg)
            chan.send(proto.MAPS_WRITTEN)
        elif mtype == proto.INIT_PID and init_pid is None:
            init_pid = int(payload["pid"])
            os.waitpid(child, 0)
            child = -1
            c.state.init_pid = init_pid
            c.state.init_start = st.proc_start_time(init_pid)[0]
            _init_pid_known(c, mgr, resources)
        elif mtype == proto.RUNTIME_SETUP:
            _runtime_setup(c, cfg)
            # The init learns its host pid; the rest of the state (for hooks
            # and the seccomp agent) it has in memory.  Not the state itself:
            # annotations can be megabytes, the channel carries 64 KiB.
            fault_point("create:runtime-setup")
            chan.send(proto.RUNTIME_SETUP_DONE, {"pid": init_pid})
        elif mtype == proto.READY:
            if init_pid is None:
                raise StageError("stage protocol: READY before INIT_PID")
            fault_point("create:ready")
            return init_pid
        else:
            raise StageError(f"stage protocol: unexpected {proto.NAMES[mtype]}")


def _why_gone(child, init_pid):
    if child > 0:
        try:
            _, status = os.waitpid(child, 0)
            return f"container setup process exited unexpectedly ({_describe_status(status)})"
        except ChildProcessError:
            pass
    return "container init exited unexpectedly"


def _describe_status(status):
    code = os.waitstatus_to_exitcode(status)
    return f"exit status {code}" if code >= 0 else f"killed by signal {-code}"


def _runtime_setup(c, cfg):
    """Work done in the runtime's namespaces once the container's exist:
    network devices, then prestart and createRuntime hooks."""
    if cfg.net_devices:
        from .netdev import move_in

        fd = os.open(f"/proc/{c.state.init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            c.state.net_devices = move_in(cfg.net_devices, fd)
        finally:
            os.close(fd)
        from .linux.syscalls import rename_exchange

        c.store.save(c.state, exchange=rename_exchange)
    for name in ("prestart", "createRuntime"):
        if cfg.hooks.get(name):
            from .hooks import run_hooks

            run_hooks(cfg.hook_list(name), c.hook_state("creating"), name)


def _undo_create(store, state, mgr, child, chan, listen_fd, console):
    """Leave nothing behind after a failed create."""
    import _signal

    for fd in (listen_fd,):
        if fd >= 0:
            os.close(fd)
    if console is not None:
        console.close()
    if child > 0 and not state.init_pid:  # (once the init's pid is known, the intermediate is reaped)
        try:
            os.kill(child, _signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(child, 0)
        except ChildProcessError:
            pass
        child = -1
        if chan is not None:
            _init_pid_sent(chan, state)
    if chan is not None:
        chan.close()
    if state.init_pid:
        try:
            signal_init(state, _signal.SIGKILL)
            wait_gone(state.init_pid, state.init_start, 5)
        except PyruncError:
            pass
    if mgr is not None:
        try:
            mgr.kill_all(_signal.SIGKILL)
            mgr.destroy()
        except Exception as e:  # noqa: BLE001 - the create error is what matters
            log.warning(f"cleanup after failed create: {e}")
    store.remove(state.id)


def _init_pid_sent(chan, state):
    """After the intermediate is gone: the init's pid, if it was sent and
    not yet read (a failure between the fork and INIT_PID), into ``state``
    so that the init is killed too.  An init whose pid was not sent exits
    by itself: the intermediate never released it (stages/init.py)."""
    from .stages import protocol as proto

    os.set_blocking(chan.fd, False)
    try:
        while True:
            mtype, payload = chan.recv()
            if mtype == proto.INIT_PID and isinstance(payload.get("pid"), int):
                state.init_pid = payload["pid"]
                state.init_start = st.proc_start_time(state.init_pid)[0]
                return
    except (OSError, proto.ProtocolError):  # nothing more queued (EAGAIN), or the channel closed
        return


# --- start -----------------------------------------------------------------
def run(store, container_id, bundle, *, detach=False, keep=False, **create_opts):
    """create + start; in the foreground, wait for the container and return
    its exit status (128+n for signal n), forwarding signals to it.  With
    ``terminal`` and no console socket, the foreground run allocates the
    pty itself and relays it to its own stdio (as runc does)."""
    tty_peer = tty_master = None
    if not detach and not create_opts.get("console_socket") and _wants_terminal(bundle, create_opts):
        import socket

        tty_peer, inner = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        create_opts["console"] = inner
    try:
        c = create(store, container_id, bundle, detach=detach, subreaper=not detach, **create_opts)
    finally:
        if create_opts.get("console") is not None:
            create_opts["console"].close()
    if tty_peer is not None:
        import socket

        _, fds, _, _ = socket.recv_fds(tty_peer, 4096, 1)
        tty_peer.close()
        tty_master = fds[0] if fds else None
    try:
        start(store, container_id)
    except BaseException:
        if not detach:
            try:
                delete(store, container_id, force=True)
            except PyruncError:
                pass
        raise
    if detach:
        return 0
    code = wait_foreground(c.state.init_pid, tty_master)
    if not keep:
        delete(store, container_id, force=True)
    return code


def _wants_terminal(bundle, create_opts):
    from .config.validate import load_config

    path = os.path.join(os.path.abspath(bundle or "."), create_opts.get("config_path") or "config.json")
    try:
        doc = load_config(path)
    except PyruncError:
        return False  # create reports the problem
    return bool((doc.get("process") or {}).get("terminal"))
