"""Container lifecycle operations: create, start, state, kill, delete, run.

This is the core API the CLI calls.  Functions take a ``StateStore`` and
return values or raise ``PyruncError`` subclasses; they never print (except
where the operation's product is a stream, which the caller passes in) and
never exit.
"""

import os
import time

from . import fastjson
from . import state as st
from .errors import ContainerNotExist, ContainerNotRunning, InvalidState, PyruncError, StageError
from .faults import point as fault_point
from .log import log

# the OCI state "status" of each internal status
STATUSES = ("creating", "created", "running", "paused", "stopped")


def now_rfc3339():
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + ".%09dZ" % (ns % 10**9)


class Container:
    """A loaded container: its state record and derived status."""

    def __init__(self, store, state):
        self.store = store
        self.state = state
        self.id = state.id

    @classmethod
    def load(cls, store, container_id):
        return cls(store, store.load(container_id))

    @property
    def status(self):
        return st.status_of(self.state, self.store)

    def oci_state(self, status=None):
        """The state object of runtime.md (with runc's extensions)."""
        s = self.state
        status = status or self.status
        out = {
            "ociVersion": s.oci_version,
            "id": s.id,
            "pid": s.init_pid if status not in ("stopped", "creating") else 0,
            "status": status,
            "bundle": s.bundle,
            "rootfs": s.rootfs,
            "created": s.created,
            "owner": "",
        }
        if s.annotations:
            out["annotations"] = s.annotations
        return out

    def hook_state(self, status):
        """The state given to hooks on stdin (spec fields only)."""
        s = self.state
        return st.hook_state(s.oci_version, s.id, status, s.init_pid, s.bundle, s.annotations)

    def cgroup_manager(self):
        if not self.state.cgroup:
            return None
        from .cgroups import load_manager

        return load_manager(self.state.cgroup)

    def signal(self, sig, all_processes=False):
        s = self.state
        status = self.status
        if status in ("stopped", "creating") and not all_processes:
            raise ContainerNotRunning()
        if all_processes:
            mgr = self.cgroup_manager()
            if mgr is not None and mgr.exists():
                mgr.kill_all(sig)
                return
            if status == "stopped":
                return
        signal_init(s, sig)


def signal_init(s, sig):
    """Signal the init, race-free against pid reuse: take a pidfd, then
    check the start time, then signal through the pidfd."""
    # signal.pidfd_send_signal is _signal's; the signal module would import
    # enum on the hot `kill` path
    from _signal import pidfd_send_signal

    try:
        pidfd = os.pidfd_open(s.init_pid)
    except ProcessLookupError:
        raise ContainerNotRunning() from None
    try:
        if not st.init_alive(s):
            raise ContainerNotRunning()
        pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        raise ContainerNotRunning() from None
    finally:
        os.close(pidfd)


def wait_gone(pid, start, timeout=10.0):
    """Wait until the process (pid, start time) is gone or a zombie."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        if st.proc_start_time(pid)[0] != start:
            return True
        import select

        p = select.poll()
        p.register(pidfd, select.POLLIN)
        return bool(p.poll(int(timeout * 1000)))
    finally:
        os.close(pidfd)


# --- create ----------------------------------------------------------------
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
):
    """Create the container; return the ``Container`` in status created.

    ``rootless_cgroups`` (``--rootless``, auto-detected by the CLI): a cgroup
    the caller may not make is no error unless limits need it (rootless.py).

    ``systemd_cgroup`` (``--systemd-cgroup``): the cgroup is a systemd unit
    named by ``linux.cgroupsPath`` ``slice:prefix:name`` (cgroups/systemd.py).

    ``console``: an already connected socket to send the pty master to
    (``run`` in the foreground with a terminal), instead of ``console_socket``."""
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
        store.save(state)  # from here on, delete --force can undo what exists
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
        from .rootless import running_in_userns

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
        from .cgroups.join import late_join_fds

        cgroup_fds, origin_fds = late_join_fds(cfg, mgr)
        log.open_for_stages()
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
            cgroup_fds=cgroup_fds,
            origin_fds=origin_fds,
            cgroup_dirs=mgr.paths() if cgroup_fds else None,
        )
        from .linux import syscalls as sc

        parent_fd, child_fd = sc.socketpair()
        if subreaper:
            sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
        import gc

        gc.freeze()  # objects made so far (the config...) are never touched by a collection in the stages
        child = os.fork()
        if child == 0:
            os.close(parent_fd)
            stages.intermediate_main(proto.Channel(child_fd), job)
            os._exit(1)  # not reached
        os.close(child_fd)
        chan = proto.Channel(parent_fd)
        fault_point("create:forked")
        if not cgroup_fds:
            mgr.apply(child)
        chan.send(proto.CONTINUE)
        init_pid = _drive_stages(chan, proto, c, cfg, child, mgr, resources)
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
        store.save(state)
        if pid_file:
            st.write_atomic(pid_file, str(init_pid).encode(), 0o644)
        chan.close()
        return c
    except BaseException:
        for fd in cgroup_fds + origin_fds:
            os.close(fd)
        _undo_create(store, state, None if shared else mgr, child, chan, listen_fd, console)
        if seccomp_listener is not None:
            seccomp_listener.close()
        raise


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


def preserved_fds(preserve_fds):
    """LISTEN_FDS (socket activation) and --preserve-fds: fds 3..3+n-1 pass
    into the container.  Returns (the fds, the LISTEN_FDS/LISTEN_PID
    variables the process environment gets, or ())."""
    listen = os.environ.get("LISTEN_FDS")
    n_listen = int(listen) if listen and listen.isdigit() else 0
    total = n_listen + (preserve_fds or 0)
    keep = tuple(range(3, 3 + total))
    for fd in keep:
        try:
            os.set_inheritable(fd, True)
        except OSError:
            raise PyruncError(f"--preserve-fds: file descriptor {fd} is not open") from None
    return keep, ((f"LISTEN_FDS={n_listen}", "LISTEN_PID=1") if n_listen else ())


def _with_listen_env(env, listen_env):
    return [e for e in env if not e.startswith(("LISTEN_FDS=", "LISTEN_PID="))] + list(listen_env)


def _write_id_maps(pid, cfg):
    # root writes them; an unprivileged caller writes its own id or uses
    # newuidmap/newgidmap (rootless.py)
    from .rootless import write_id_maps

    write_id_maps(pid, cfg.uid_mappings, cfg.gid_mappings)


def _drive_stages(chan, proto, c, cfg, child, mgr, resources):
    """The runtime's side of the stage protocol; returns the init pid."""
    init_pid = None
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
        elif mtype == proto.INIT_PID:
            init_pid = int(payload["pid"])
            os.waitpid(child, 0)
            child = -1
            c.state.init_pid = init_pid
            c.state.init_start = st.proc_start_time(init_pid)[0]
            c.store.save(c.state)  # delete --force can now find and kill the init
            # Limits are set once the init exists: a pids limit of 0 is a valid
            # limit (config-linux.md) and must not stop the stages' own forks.
            mgr.set(resources, initial=True)
            fault_point("create:init-pid")
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
        c.store.save(c.state)
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
    if chan is not None:
        chan.close()
    if state.init_pid:
        try:
            signal_init(state, _signal.SIGKILL)
            wait_gone(state.init_pid, state.init_start, 5)
        except PyruncError:
            pass
    if child > 0:
        try:
            os.kill(child, _signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(child, 0)
        except ChildProcessError:
            pass
    if mgr is not None:
        try:
            mgr.kill_all(_signal.SIGKILL)
            mgr.destroy()
        except Exception as e:  # noqa: BLE001 - the create error is what matters
            log.warning(f"cleanup after failed create: {e}")
    store.remove(state.id)


# --- start -----------------------------------------------------------------
def start(store, container_id):
    with store.lock(container_id):
        c = Container.load(store, container_id)
        status = c.status
        if status != "created":
            if status == "stopped":
                raise InvalidState("cannot start a container that has stopped")
            if status in ("running", "paused"):
                raise InvalidState("cannot start an already running container")
            raise InvalidState(f"cannot start a container in status {status}")
        _release_init(c)
        poststart = _persisted_hooks(store, container_id, "poststart")
        if poststart:
            from .hooks import run_hooks

            try:
                run_hooks(poststart, c.hook_state("running"), "poststart")
            except PyruncError:
                # spec 1.3.0: a failing poststart hook stops the container
                import _signal

                try:
                    c.signal(_signal.SIGKILL, all_processes=True)
                except PyruncError:
                    pass
                raise
        return c


def _persisted_hooks(store, container_id, name):
    """The container's ``name`` hooks (config.model.Hook list) from the
    persisted model.  The model's classes are loaded only when there are
    hooks: `start` and `delete` stay as cheap as the JSON read."""
    with open(os.path.join(store.dir(container_id), st.CONFIG_FILE), "rb") as f:
        hooks = (fastjson.loads(f.read()).get("hooks") or {}).get(name)
    if not hooks:
        return []
    from .config.model import Hook

    return [Hook.from_dict(h) for h in hooks]


def _unix_connect(path):
    """A connected AF_UNIX stream socket without loading ctypes
    (milliseconds on every `start`): the _socket extension module is cheap
    to import."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"connect: {os.strerror(e.errno or 0)}", path) from None  # connect(2) sets errno
    return sock.detach()


def _release_init(c):
    """Connect to the init's start socket; it answers "0" right before
    execve, and the connection closes (CLOEXEC) when the exec happened."""
    cwd = os.open(".", os.O_PATH | os.O_CLOEXEC)
    try:
        os.chdir(c.store.dir(c.id))
        fd = _unix_connect(st.START_SOCKET)
    except OSError as e:
        raise StageError(f"cannot start container: {e.strerror}") from None
    finally:
        os.fchdir(cwd)
        os.close(cwd)
    # The init will exec (running) or exit (stopped): "created" is over even
    # if this process is killed before the init's answer arrives.
    try:
        os.unlink(os.path.join(c.store.dir(c.id), st.START_SOCKET))
    except FileNotFoundError:
        pass
    fault_point("start:connected")
    data = b""
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    if data == b"0":
        return
    if data.startswith(b"0"):
        data = data[1:]
    msg = data.decode(errors="replace").strip() or "container init exited before exec"
    raise StageError(msg)


# --- kill / delete ---------------------------------------------------------
def kill(store, container_id, sig, all_processes=False):
    c = Container.load(store, container_id)
    c.signal(sig, all_processes)


def delete(store, container_id, force=False):
    try:
        lock = store.lock(container_id)
        lock.__enter__()
    except ContainerNotExist:
        if force:
            return
        raise
    try:
        try:
            c = Container.load(store, container_id)
        except ContainerNotExist:
            if force:  # a half-created container: remove what there is
                store.remove(container_id)
                return
            raise
        status = c.status
        if status in ("running", "paused") and not force:
            raise InvalidState(f"cannot delete container {container_id} that is not stopped: {status}")
        if status != "stopped":
            kill_everything(c)
        else:
            mgr = c.cgroup_manager()
            if mgr is not None and mgr.exists() and mgr.pids():
                kill_everything(c)
        destroy(c)
    finally:
        lock.__exit__(None, None, None)


def _return_net_devices(c):
    """After the namespace died, physical devices are back on the host
    (the kernel moves them); give them their names and addresses again."""
    from .netdev import move_out

    try:
        move_out(c.state.net_devices)
    except Exception as e:  # noqa: BLE001 - deleting must go on
        log.warning(f"returning network devices: {e}")


def kill_everything(c):
    import _signal

    s = c.state
    mgr = c.cgroup_manager()
    if mgr is not None and mgr.exists():
        try:
            if mgr.is_frozen():
                mgr.thaw()
        except Exception:  # noqa: BLE001
            pass
        mgr.kill_all(_signal.SIGKILL)
    if s.init_pid and st.init_alive(s):
        try:
            signal_init(s, _signal.SIGKILL)
        except ContainerNotRunning:
            pass
    if s.init_pid:
        wait_gone(s.init_pid, s.init_start)
    fault_point("delete:killed")


def destroy(c):
    s = c.state
    mgr = c.cgroup_manager()
    if mgr is not None:
        deadline = time.monotonic() + 5
        while True:
            try:
                mgr.destroy()
                break
            except PyruncError:
                if time.monotonic() > deadline:
                    raise
                import _signal

                mgr.kill_all(_signal.SIGKILL)
                time.sleep(0.05)
        fault_point("delete:cgroup-gone")
    if s.net_devices:
        _return_net_devices(c)
    poststop = []
    try:
        poststop = _persisted_hooks(c.store, c.id, "poststop")
    except (OSError, ValueError):
        pass
    c.store.remove(c.id)
    if poststop:
        from .hooks import run_hooks

        run_hooks(poststop, c.hook_state("stopped"), "poststop", warn=log.warning)


# --- list ------------------------------------------------------------------
def list_containers(store):
    ids = store.list_ids()
    if ids is None:
        raise PyruncError(f"open {store.root}: no such file or directory")
    out = []
    for cid in ids:
        try:
            out.append(Container.load(store, cid))
        except (ContainerNotExist, ValueError):
            continue
    return out


# --- run -------------------------------------------------------------------
FORWARDED_SIGNALS = (
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGTERM",
    "SIGUSR1",
    "SIGUSR2",
    "SIGWINCH",
    "SIGCONT",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGPIPE",
    "SIGALRM",
)


def wait_foreground(pid, tty_master=None):
    """The foreground of run, exec and restore: forward the caller's signals
    to ``pid``, relay the pty if there is one, reap until ``pid`` exits;
    its exit status (128+n for signal n; 255 when it was not our child).
    The caller's signal handlers are put back afterwards."""
    import _signal  # the C module behind `signal`, without its enum import

    def forward(signum, frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    signums = [getattr(_signal, name) for name in FORWARDED_SIGNALS]
    # the caller's handlers come back afterwards (a library caller keeps its
    # SIGINT -> KeyboardInterrupt); None: set outside Python, the default then
    saved = [(n, _signal.getsignal(n)) for n in signums]
    for n in signums:
        _signal.signal(n, forward)
    try:
        if tty_master is not None:
            from .console import relay

            relay(tty_master, pid)  # until the process exits; closes the master
        status = None
        while status is None:
            try:
                reaped, wstatus = os.wait()
            except ChildProcessError:
                break
            if reaped == pid:
                status = wstatus
    finally:
        for n, handler in saved:
            _signal.signal(n, _signal.SIG_DFL if handler is None else handler)
    if status is None:
        return 255
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


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
