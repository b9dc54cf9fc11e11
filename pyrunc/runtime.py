"""The library API: ``Runtime``, whose methods are runc's verbs.

    from pyrunc.runtime import Runtime
    rt = Runtime(root="/run/pyrunc")
    rt.run("c1", "/path/to/bundle", detach=True)
    print(rt.state("c1").status)

Every method returns a typed, read-only record (``ContainerState``,
``Process``, ``Stats``, ``Event``) or None, and raises the hierarchy of
``pyrunc.errors`` with runc's messages (``ContainerNotExist``: "container
does not exist", ``ContainerNotRunning``: "container not running", ...).
Nothing here prints, parses argv or exits: the ``pyrunc`` command
(``pyrunc/cli/``) parses its arguments, calls these methods and prints
their results.  docs/api.md is the user's documentation.

Start-up cost: the command imports this module for every verb, so it
imports nothing at load time beyond what ``state`` needs anyway; each
method imports the core modules of its own verb (``state`` and ``list``
read the state store only).

The records live in pyrunc/records.py, imported by the methods that return
them (and re-exported here): start, kill and delete do not load them.
"""

from . import lightos as os  # os's calls without importing os (lightos.py)

from . import state as st
from .errors import ContainerNotRunning, InvalidState, PyruncError

TYPE_CHECKING = False  # typing is for the checker only: not imported at run time
if TYPE_CHECKING:
    import builtins  # list: a method name of Runtime
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any

    from .cgroups import CgroupManager
    from .cgroups.join import ThreadedWarmer
    from .checkpoint import CriuOptions
    from .container import Container
    from .records import ContainerState, Event, Process, Stats

_RECORDS = ("ContainerState", "Process", "Stats", "Event")


def __getattr__(name: str) -> object:
    """``pyrunc.runtime.ContainerState`` and the other records, loaded when
    first asked for (pyrunc/records.py)."""
    if name in _RECORDS:
        from . import records

        return getattr(records, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _stats_of(mgr: "CgroupManager | None") -> dict:
    """The manager's stats; with no cgroup, the same record all zero."""
    if mgr is not None:
        return mgr.stats()
    from .cgroups import stats

    return stats.prune(stats.skeleton())


def _user_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        return str(uid)


def _lock_warmer(preserve_fds: int, *, needed: bool = True) -> "ThreadedWarmer":
    """The cgroup migration lock warmed from a thread from the start of
    create, run or exec until the stage has joined the container's cgroups
    (cgroups/join.py, ThreadedWarmer): that join does not wait an RCU grace
    period then (10-20 ms), and the grace period itself is paid while this
    process still imports and validates, before the cgroup work that the
    kernel serializes behind it.  PYRUNC_TEST_NO_WARMER=1 leaves it out
    (for measuring it).

    The fds the process passes on (3..3+N-1: ``preserve_fds`` and
    LISTEN_FDS) are checked open before, so that the warmer's fd, a write
    fd to a cgroup.procs of the host, cannot take a slot the caller left
    free and reach the container."""
    from .container import preserved_fds

    preserved_fds(preserve_fds)
    from .cgroups.join import ThreadedWarmer
    from .cgroups import forget_mounts

    forget_mounts()  # this call's cgroup lookups read the mount table once, from here

    return ThreadedWarmer(enabled=needed and not os.environ.get("PYRUNC_TEST_NO_WARMER"))


def _exec_stage_born_in_cgroup(state: "st.ContainerState") -> bool:
    """Whether exec's stage will be created right in the container's cgroup
    (cgroups/join.py, fork_into): cgroup v2 and a user namespace of the
    container's own (its stage is charged to the container from its fork
    then; there is no late join).  Then there is no migration, and no lock
    to warm: the warmer would cost its thread, and ending it before the
    clone would wait for its first poke (the grace period).  A guess, from
    state.json and the init's /proc entries, before exec's imports; where
    it is wrong the stage migrates without a warmed lock."""
    if (state.cgroup or {}).get("version") != 2:
        return False
    from .cgroups.join import only_thread  # (_lock_warmer imports it next anyway)

    if not only_thread():
        return False  # a library caller's threads: no clone (cgroups/join.py, fork_into)
    try:
        return os.readlink(f"/proc/{state.init_pid}/ns/user") != os.readlink("/proc/self/ns/user")
    except OSError:  # (the init has gone: exec reports it)
        return False


def _foreground(wait: "Callable[[], int]") -> int:
    """Run ``wait()``, a foreground wait of the core (run and restore make
    this process a child subreaper for it), then give the caller back its
    subreaper setting: a subreaper inherits the orphans of every container
    process started from it (a detached exec's process), and while it does
    not reap them a container's init cannot finish exiting (its pid
    namespace waits for them).  The core puts the signal handlers back."""
    from .linux import syscalls as sc

    was_subreaper = sc.is_child_subreaper()
    try:
        return wait()
    finally:
        if not was_subreaper:
            sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 0)


class Runtime:
    """runc's verbs on the containers under one state root.

    ``root``: the state directory (None: /run/pyrunc, or
    $XDG_RUNTIME_DIR/pyrunc for an unprivileged caller, as ``pyrunc``
    without --root); ``rootless``: True, False or None (detect) for the
    rootless cgroup handling of ``create``/``run``; ``systemd_cgroup``:
    cgroups are systemd units (``linux.cgroupsPath`` is slice:prefix:name);
    ``debug``: debug lines of ``create`` in the log; ``criu``: the criu
    binary for checkpoint/restore (default: criu in PATH).  Log lines go
    where ``pyrunc.log.log.configure(path, fmt, debug)`` says (default:
    stderr).

    ``create``, ``run`` and ``exec`` put processes into a container: they
    refuse to run from an interpreter that is writable through
    /proc/self/exe (CVE-2019-5736; pyrunc/exeseal.py) -- see docs/api.md."""

    def __init__(
        self,
        root: str | None = None,
        *,
        rootless: bool | None = None,
        systemd_cgroup: bool = False,
        debug: bool = False,
        criu: str | None = None,
        exits_after_call: bool = False,
    ) -> None:
        self.root = root
        # The caller exits right after each call (the CLI): a created init
        # then becomes the waiter (waiter.py) once this process is gone,
        # so that its teardown does not slow this exit; otherwise as soon
        # as ``create`` returns.
        self.exits_after_call = exits_after_call
        self.rootless = rootless
        self.systemd_cgroup = systemd_cgroup
        self.debug = debug
        self.criu = criu
        self._store: st.StateStore | None = None

    def __repr__(self) -> str:
        return f"Runtime(root={self.store.root!r})"

    @property
    def store(self) -> st.StateStore:
        """The ``pyrunc.state.StateStore`` of ``root`` (the default root is
        decided on first use, not at construction)."""
        if self._store is None:
            if self.root is not None:
                self._store = st.StateStore(self.root)
            else:
                from .caller import default_root

                root, xdg = default_root()
                self._store = st.StateStore(root, sticky=xdg)
        return self._store

    def _rootless_cgroups(self) -> bool:
        from .caller import rootless_cgroups

        return rootless_cgroups(self.rootless)

    def _create_args(
        self,
        config_path: str | None,
        pid_file: str | None,
        console_socket: str | None,
        no_pivot: bool,
        no_new_keyring: bool,
        preserve_fds: int,
    ) -> "dict[str, Any]":
        return dict(
            config_path=config_path,
            pid_file=pid_file,
            console_socket=console_socket,
            no_pivot=no_pivot,
            no_new_keyring=no_new_keyring,
            preserve_fds=preserve_fds,
            debug=self.debug,
            systemd_cgroup=self.systemd_cgroup,
            rootless_cgroups=self._rootless_cgroups(),
            # the CLI exits after the call (or, running in the foreground,
            # reaps its children): the init may be its own child
            init_is_child=self.exits_after_call,
        )

    # --- lifecycle -----------------------------------------------------------
    def create(
        self,
        container_id: str,
        bundle: str = ".",
        *,
        config_path: str | None = None,
        pid_file: str | None = None,
        console_socket: str | None = None,
        no_pivot: bool = False,
        no_new_keyring: bool = False,
        preserve_fds: int = 0,
        record: bool = True,
    ) -> "ContainerState | None":
        """Create the container from the bundle; its init waits for
        ``start``.  Returns its ``ContainerState`` (status created), or
        None with ``record=False``: the CLI prints nothing, and the record's
        classes, loaded after the init's fork, cost ~0.3 ms of CPU
        (copy-on-write faults included) on every container.

        ``config_path``: relative to the bundle (default config.json);
        ``console_socket``: an AF_UNIX socket path that receives the pty
        master (required when process.terminal is true);
        ``preserve_fds``: pass fds 3..3+N-1 of this process to the init.
        Raises ``ContainerExists``, ``ConfigError``, ``StageError`` (the
        root cause of a failed setup), ...; a failed create leaves nothing."""
        with _lock_warmer(preserve_fds) as warmer:  # first: see _lock_warmer
            from . import creation

            c = creation.create(
                self.store,
                container_id,
                bundle,
                warmer=warmer,
                waiter_after="exit" if self.exits_after_call else "create",
                **self._create_args(config_path, pid_file, console_socket, no_pivot, no_new_keyring, preserve_fds),
            )
        if not record:
            return None
        from .records import oci_state

        return oci_state(c.state, "created")

    def start(self, container_id: str) -> None:
        """Start the created container's process.  Returns once only its
        execve is left (as runc's ``start``; after it when the container has
        poststart hooks or a seccomp filter without no_new_privs: then a
        failed execve raises).  Raises ``InvalidState``
        ("cannot start an already running container", "cannot start a
        container that has stopped"), ``ContainerNotExist``."""
        from . import container as core

        core.start(self.store, container_id)

    def run(
        self,
        container_id: str,
        bundle: str = ".",
        *,
        detach: bool = False,
        keep: bool = False,
        config_path: str | None = None,
        pid_file: str | None = None,
        console_socket: str | None = None,
        no_pivot: bool = False,
        no_new_keyring: bool = False,
        preserve_fds: int = 0,
    ) -> "Process":
        """create + start.  Detached: returns ``Process(pid=<init pid>)`` at
        once.  In the foreground: waits for the container's process
        (forwarding this process's signals to it; with process.terminal and
        no console socket, relaying a pty to this process's stdio), deletes
        the container unless ``keep``, and returns
        ``Process(exit_status=N)``.  The foreground makes this process a
        child subreaper and reaps its children while it waits."""
        with _lock_warmer(preserve_fds) as warmer:  # first: see _lock_warmer
            from .records import Process

            from . import creation

            args = self._create_args(config_path, pid_file, console_socket, no_pivot, no_new_keyring, preserve_fds)
            args["warmer"] = warmer
            if detach:
                # creation.run's detached path, keeping the created container record
                c = creation.create(self.store, container_id, bundle, detach=True, **args)
                creation.start(self.store, container_id)
                return Process(id=container_id, pid=c.state.init_pid)
            code = _foreground(lambda: creation.run(self.store, container_id, bundle, detach=False, keep=keep, **args))
            return Process(id=container_id, exit_status=code)

    def exec(
        self,
        container_id: str,
        args: "Iterable[str]" = (),
        *,
        process: "dict[str, Any] | None" = None,
        env: "Iterable[str]" = (),
        cwd: str | None = None,
        user: str | None = None,
        additional_gids: "Iterable[int | str]" = (),
        caps: "Iterable[str]" = (),
        no_new_privs: bool = False,
        tty: bool = False,
        apparmor: str | None = None,
        process_label: str | None = None,
        detach: bool = False,
        pid_file: str | None = None,
        console_socket: str | None = None,
        preserve_fds: int = 0,
        ignore_paused: bool = False,
        cgroup: list[str] | None = None,
    ) -> "Process":
        """Run a new process in the running container.

        ``args`` and the overrides (``env`` "K=V" strings added to the
        container's, ``cwd``, ``user`` "UID[:GID]", ``additional_gids``,
        ``caps`` added to bounding/effective/permitted, ...) apply to a copy
        of the container's process; or ``process`` (a dict: an OCI process
        object, as ``exec --process``) replaces it.  ``cgroup``: a list of
        "sub" or "controller:sub" strings (``exec --cgroup``).

        Detached: returns ``Process(pid=...)`` once the process exec'd.
        In the foreground: as ``run``, returns ``Process(exit_status=N)``.
        Raises ``InvalidState`` ("cannot exec in a stopped container",
        "cannot exec in a paused container ..."), ``ContainerNotExist``,
        ``StageError`` (the process could not start: the root cause)."""
        store = self.store
        state = store.load(container_id)  # "container does not exist" before anything else
        born_in_cgroup = not cgroup and _exec_stage_born_in_cgroup(state)
        with _lock_warmer(preserve_fds, needed=not born_in_cgroup) as warmer:  # first: see _lock_warmer
            from .records import Process

            from .execution import build_process, exec_in

            if process is None and not args:
                from .errors import UsageError

                raise UsageError("exec: no command given (args or --process)")
            cfg = store.load_config(container_id) if process is None else None
            proc = build_process(
                cfg,
                process,
                args=args,
                env=env,
                cwd=cwd,
                user=user,
                additional_gids=[str(x) for x in additional_gids],
                caps=caps,
                no_new_privs=no_new_privs,
                terminal=tty,
                apparmor=apparmor,
                label=process_label,
            )
            own_pid_file = None
            if detach and pid_file is None:
                # the pid of a detached process comes back through a pid file,
                # as it does for the command's caller
                own_pid_file = pid_file = os.path.join(store.dir(container_id), f"exec-{os.getpid()}-{id(proc)}.pid")
            try:

                def wait() -> int:
                    return exec_in(
                        store,
                        container_id,
                        proc,
                        detach=detach,
                        pid_file=pid_file,
                        console_socket=console_socket,
                        preserve_fds=preserve_fds,
                        ignore_paused=ignore_paused,
                        cgroup_sub=cgroup or None,
                        warmer=warmer,
                    )

                if not detach:
                    return Process(id=container_id, exit_status=_foreground(wait))
                wait()
                assert pid_file is not None  # a detached exec always has one (above)
                return Process(id=container_id, pid=int(os.read_file(pid_file)))
            finally:
                if own_pid_file is not None:
                    try:
                        os.unlink(own_pid_file)
                    except FileNotFoundError:
                        pass

    def kill(self, container_id: str, signal: int = 15, *, all: bool = False) -> None:
        """Send ``signal`` (a number) to the init, or with ``all`` to every
        process in the container's cgroup.  Raises ``ContainerNotRunning``
        ("container not running") for a stopped container."""
        from . import container as core

        core.kill(self.store, container_id, int(signal), all)

    def delete(self, container_id: str, *, force: bool = False) -> None:
        """Remove a stopped container (its cgroup, state; poststop hooks).
        ``force``: kill a running one first, and accept an id that does
        not exist.  Raises ``InvalidState`` ("cannot delete container ...
        that is not stopped: running")."""
        from . import container as core

        core.delete(self.store, container_id, force=force)

    def state(self, container_id: str) -> "ContainerState":
        """The container's ``ContainerState``.  Raises ``ContainerNotExist``."""
        record = self.store.load(container_id)
        from .records import oci_state

        return oci_state(record, st.status_of(record, self.store))

    def list(self) -> "builtins.list[ContainerState]":
        """Every container under the root, as ``ContainerState`` records
        with the owner's user name; [] when the root does not exist."""
        from .records import oci_state

        store = self.store
        out: "builtins.list[ContainerState]" = []
        for cid in store.list_ids() or ():
            try:
                record = store.load(cid)
            except (PyruncError, ValueError):
                continue  # removed meanwhile, or a half-written record
            out.append(oci_state(record, st.status_of(record, store), _user_name(record.owner_uid)))
        return out

    # --- the container's cgroup --------------------------------------------
    def _load(self, container_id: str) -> "Container":
        from .container import Container

        return Container.load(self.store, container_id)

    @staticmethod
    def _manager(c: "Container") -> "CgroupManager":
        mgr = c.cgroup_manager()
        if mgr is None or not mgr.exists():
            raise PyruncError("container's cgroup does not exist")
        return mgr

    def pause(self, container_id: str) -> None:
        """Freeze every process of the container.  Raises
        ``ContainerNotRunning`` unless it is running or created."""
        store = self.store
        with store.lock(container_id):
            c = self._load(container_id)
            if c.status not in ("running", "created"):
                raise ContainerNotRunning()
            self._manager(c).freeze()
            c.state.paused = True
            store.save(c.state)

    def resume(self, container_id: str) -> None:
        """Thaw a paused container.  Raises ``InvalidState`` ("container not
        paused")."""
        store = self.store
        with store.lock(container_id):
            c = self._load(container_id)
            if c.status != "paused":
                raise InvalidState("container not paused")
            self._manager(c).thaw()
            c.state.paused = False
            store.save(c.state)

    def update(self, container_id: str, resources: "dict[str, Any]") -> "dict[str, Any]":
        """Set new limits: ``resources`` is a LinuxResources object (the
        ``linux.resources`` of config.json, e.g. ``{"memory": {"limit":
        64 << 20}, "pids": {"limit": 100}}``), applied to the cgroup and
        merged into the stored config (per resource, key by key).  Returns
        the merged resources.  Raises ``ContainerNotRunning`` for a stopped
        container, ``CgroupError`` when the kernel refuses a value."""
        if not isinstance(resources, dict):
            raise PyruncError("resources: must be a JSON object (LinuxResources)")
        store = self.store
        with store.lock(container_id):
            c = self._load(container_id)
            if c.status == "stopped":
                raise ContainerNotRunning()
            # the update checked and merged through the converter (one set of
            # rules with create); the cgroup gets the update, the stored
            # config the merge, so that `inspect` and a later update see
            # what is asked now
            from .config.convert import merge_resources

            cfg = store.load_config(container_id)
            update, merged = merge_resources(cfg.resources, resources)
            self._manager(c).set(update)
            store.save_config(container_id, cfg.replace(resources=merged))
        return merged.to_dict() if merged is not None else {}

    def _running_manager(self, container_id: str) -> "tuple[Container, CgroupManager | None]":
        """The running container and its cgroup manager; None for a rootless
        container that has no cgroup of its own (none could be made)."""
        c = self._load(container_id)
        if c.status == "stopped":
            raise ContainerNotRunning(f"container with id {c.id} is not running")
        if not c.state.cgroup:
            return c, None
        return c, self._manager(c)

    def stats(self, container_id: str) -> "Stats":
        """The container's resource usage now (``events --stats``): a
        ``Stats``.  Raises ``ContainerNotRunning`` once it stopped.  A
        rootless container without a cgroup has nothing to read: all zero,
        as runc reports it."""
        _, mgr = self._running_manager(container_id)
        from .records import Stats

        return Stats(id=container_id, data=_stats_of(mgr))

    def events(self, container_id: str, interval: float = 5.0) -> "Iterator[Event]":
        """An iterator of ``Event``: an "oom" event whenever the OOM killer
        struck, and a "stats" event every ``interval`` seconds, until the
        container stops.  Errors (not running, no cgroup) are raised here,
        not at the first iteration."""
        c, mgr = self._running_manager(container_id)
        if interval <= 0:
            raise PyruncError("events: the interval must be positive")
        return self._events(c, mgr, interval)

    @staticmethod
    def _events(c: "Container", mgr: "CgroupManager | None", interval: float) -> "Iterator[Event]":
        import time

        from .records import Event

        ooms = mgr.oom_kill_count() if mgr is not None else 0
        while c.status != "stopped":
            n = mgr.oom_kill_count() if mgr is not None else 0
            if n > ooms:
                yield Event(type="oom", id=c.id)
                ooms = n
            yield Event(type="stats", id=c.id, data=_stats_of(mgr))
            time.sleep(interval)

    def ps(self, container_id: str) -> "builtins.list[int]":
        """The host pids in the container's cgroup (of a stopped container:
        whatever is left there, normally none).  A live rootless container
        without a cgroup of its own (none could be made) is an error, as in
        runc: its processes cannot be listed."""
        c = self._load(container_id)
        mgr = c.cgroup_manager()
        if mgr is None and c.status != "stopped":
            raise PyruncError(
                "unable to get all container pids: the container has no cgroup "
                "(rootless, and no writable cgroup could be made for it)"
            )
        return mgr.pids() if mgr is not None and mgr.exists() else []

    # --- checkpoint / restore (criu) ----------------------------------------
    def _criu_options(self, options: "CriuOptions | None") -> "CriuOptions":
        from .checkpoint import CriuOptions

        if options is None:
            options = CriuOptions(criu_path=self.criu)
        elif options.criu_path is None and self.criu is not None:
            options.criu_path = self.criu
        return options

    def checkpoint(self, container_id: str, options: "CriuOptions | None" = None) -> None:
        """Dump the running container with criu (``options``: a
        ``pyrunc.checkpoint.CriuOptions``; default: images in ./checkpoint,
        the container is stopped after the dump).  Raises ``CriuError``."""
        from .checkpoint import checkpoint

        checkpoint(self.store, container_id, self._criu_options(options))

    def restore(
        self,
        container_id: str,
        bundle: str = ".",
        options: "CriuOptions | None" = None,
        *,
        detach: bool = False,
        pid_file: str | None = None,
        no_subreaper: bool = False,
        no_pivot: bool = False,
        console_socket: str | None = None,
    ) -> "Process":
        """Restore a container from ``options.image_path`` with the bundle's
        config.  Detached: ``Process(pid=<init pid>)``; in the foreground,
        as ``run``: waits, deletes, ``Process(exit_status=N)``."""
        from .records import Process

        from . import checkpoint as core

        c = core.restore(
            self.store,
            container_id,
            bundle,
            self._criu_options(options),
            pid_file=pid_file,
            detach=detach,
            no_subreaper=no_subreaper,
            no_pivot=no_pivot,
            systemd_cgroup=self.systemd_cgroup,
            console_socket=console_socket,
        )
        if detach:
            return Process(id=container_id, pid=c.state.init_pid)
        code = _foreground(lambda: core.wait_foreground(self.store, container_id, c.state.init_pid))
        return Process(id=container_id, exit_status=code)
