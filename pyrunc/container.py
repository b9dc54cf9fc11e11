"""Container lifecycle operations: the Container record, start, kill,
delete, list, and the waits they share with create/run (creation.py) and
exec (execution.py).

This is the core API the CLI calls.  Functions take a ``StateStore`` and
return values or raise ``PyruncError`` subclasses; they never print (except
where the operation's product is a stream, which the caller passes in) and
never exit.
"""

from . import lightos as os  # os's calls without importing os (lightos.py)
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
        poststart = _persisted_hooks(store, container_id, "poststart")
        # poststart hooks run "after the user-specified process is executed"
        _release_init(c, wait_for_exec=bool(poststart))
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
    data = os.read_file(os.path.join(store.dir(container_id), st.CONFIG_FILE))
    hooks = (fastjson.loads(st.model_bytes(data)).get("hooks") or {}).get(name)
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


def _release_init(c, wait_for_exec):
    """Connect to the init's start socket and read its answer
    (``st.START_ACCEPTED``, then ``st.START_COMMITTED`` when only the execve
    is left, or an error message) until EOF, which the execve gives
    (close-on-exec).  Without ``wait_for_exec``, return at COMMITTED, as
    runc's `start` returns once its init has written to the FIFO: the
    execve of the init's ~10 MiB address space takes ~1 ms more, and a
    failure of it then reaches the container's stderr and exit status."""
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
    committed = st.START_ACCEPTED + st.START_COMMITTED
    data = b""
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
            if data.startswith(committed) and not wait_for_exec:
                # even with an error right behind it: which one a read sees
                # first is a race, and the init reports that error on the
                # container's stderr
                return
    finally:
        os.close(fd)
    if data in (st.START_ACCEPTED, committed):
        return
    if data.startswith(committed):
        data = data[len(committed) :]
    elif data.startswith(st.START_ACCEPTED):
        data = data[len(st.START_ACCEPTED) :]
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
