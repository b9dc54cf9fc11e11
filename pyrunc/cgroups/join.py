"""Moving the container's processes into its cgroups, as late as possible.

The runtime opens the cgroup.procs files (``late_join_fds``, in the host's
cgroup namespace, where the kernel checks the migration); the stages write
to them right before execve (``join``), so that what the Python stages
touched stays charged to the caller.  Meanwhile a thread of the runtime
keeps the kernel's migration lock ready, so that those writes do not wait
an RCU grace period (``ThreadedWarmer``).
"""

import _thread  # builtin; `threading` would cost an import
import gc
import sys

from pyrunc import lightos as os  # os's calls without importing os: the warmer starts before os is loaded

from pyrunc.cgroups import mounts_of_call
from pyrunc.linux import procfs


def join(fds, close=True):
    """Enter the container's cgroups (one cgroup.procs write fd per
    hierarchy, opened by the runtime: see ``late_join_fds``).

    Done as late as create allows, after all the setup work and right
    before READY: memory is charged to the cgroup of the task that faults
    it in, so what the Python stages touched stays charged to the caller,
    and the container's limits apply to the container's own program (a
    512 KiB memory limit works).  The created init is in its cgroups, as
    runc's is."""
    # From here on every page this process dirties is charged to the
    # container: a garbage collection would write the header of every tracked
    # object (copy-on-write of the heap shared with the runtime, MiBs).  The
    # process execs or exits soon; no collection is needed any more.
    if fds:
        gc.disable()
    for fd in fds:
        os.write(fd, b"0")
        if close:
            os.close(fd)


def fork_into(mgr, warmer=None):
    """Fork a stage that starts in the container's cgroup, where the kernel
    can create it there (cgroup v2, Linux 5.7: clone3 with
    CLONE_INTO_CGROUP): no migration, so no wait for the migration lock and
    no moment in the caller's cgroup.  Returns (pid, True), 0 in the child;
    or (pid, False) from a plain fork when it cannot (cgroup v1, an older
    kernel, a cgroup refused), and then the caller ``apply``s the child as
    before.

    For the stages the container's cgroup is charged with from their fork
    anyway: those ``late_join_fds`` leaves out (a user namespace) and exec's
    stage then.  The stages that join late stay out of it until their last
    step, and so keep their Python work off the container's limits: they
    still migrate (see ``join``).  ``warmer``: the caller's ThreadedWarmer,
    ended first where the clone is tried."""
    open_fd = getattr(mgr, "open_fd", None)  # (rootless.NullManager: none)
    fd = -1
    if open_fd is not None and not os.environ.get("PYRUNC_TEST_NO_CLONE_INTO_CGROUP") and only_thread(warmer):
        fd = open_fd()
    if fd >= 0:
        from pyrunc.linux import syscalls as sc

        if warmer is not None:
            warmer.stop(wait=True)  # no migration to warm for; and one thread only (fork_into_cgroup)
        try:
            return sc.fork_into_cgroup(fd), True
        except OSError:
            pass  # as the kernel says no: fork and migrate, as before
        finally:
            os.close(fd)  # in the parent and in the child
    from posix import fork  # os.fork

    return fork(), False


def only_thread(warmer=None):
    """Whether this process runs no thread but the calling one and
    ``warmer``'s (a library caller's own threads: then the clone is not
    tried, and the warmer keeps warming for the migration)."""
    own = 1 + (1 if warmer is not None and warmer.running() else 0)
    try:
        return len(os.listdir("/proc/self/task")) <= own
    except OSError:
        return False


def late_join_fds(cfg, mgr):
    """Write fds of the container's cgroup.procs files for the init's late
    join (``join``), or () to place the stages in the cgroups at fork.

    Opened here, by the runtime in the host's cgroup namespace: the kernel
    checks a cgroup v2 migration against the namespace of the file's opener,
    and with nsdelegate (systemd's default) a process inside a cgroup
    namespace may not move a task between cgroups outside it (ENOENT).  An
    init unsharing its cgroup namespace at the container's cgroup, or an
    exec'd process joining that namespace, still sits in the runtime's cgroup.

    Late join needs the init to be able to write the host's cgroup.procs
    after it entered the container's namespaces: true unless it is in a user
    namespace (its root is then not the host's root).

    Returns (container dir fds, origin dir fds).  The origin fds (the
    runtime's own cgroups, same hierarchies) are for a new cgroup namespace,
    which must exist from create on with the container's cgroup as its root:
    the intermediate joins the container's cgroups, unshares the cgroup
    namespace and goes back to the origin, all in a few syscalls."""
    if cfg.namespace("user") is not None:
        return (), ()
    dirs = list(dict.fromkeys(mgr.paths().values()))
    fds = []
    try:
        for d in dirs:
            fds.append(os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC))
        if cfg.has_new_namespace("cgroup"):
            for d in origin_dirs(dirs):
                fds.append(os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC))
    except OSError:
        for fd in fds:
            os.close(fd)
        return (), ()
    return tuple(fds[: len(dirs)]), tuple(fds[len(dirs) :])


def origin_dirs(container_dirs, mount_table=None):
    """For each container cgroup dir, this process's own cgroup dir in the
    same hierarchy (mount point of the hierarchy + our path in it).
    ``mount_table``: mounts_of_call() when the caller has it already."""
    # (mountpoint, mount root, "" for cgroup2 or the v1 hierarchy's controllers)
    mounts: list[tuple[str, str, str | list[str]]] = []
    for m in mounts_of_call() if mount_table is None else mount_table:
        if m["fstype"] == "cgroup2":
            mounts.append((m["mountpoint"], m["root"], ""))
        elif m["fstype"] == "cgroup":
            mounts.append((m["mountpoint"], m["root"], [o for o in m["super_options"] if o not in ("rw", "ro")]))
    own = {ctrls: path for _, ctrls, path in procfs.cgroups()}
    out = []
    for d in container_dirs:
        point, root, opts = max((m for m in mounts if d.startswith(m[0].rstrip("/") + "/")), key=lambda m: len(m[0]))
        if opts == "":
            path = own.get("", "/")
        else:
            path = next((p for k, p in own.items() if k and set(k.split(",")) <= set(opts)), "/")
        if root != "/" and path.startswith(root):
            path = path[len(root) :]
        out.append(point.rstrip("/") + "/" + path.strip("/") if path.strip("/") else point)
    return out


class MigrationLockWarmer:
    """One poke of the kernel's cgroup migration lock: the runtime moves
    itself into its own cgroup (a migration that changes nothing).

    Every write to a cgroup.procs file takes cgroup_threadgroup_rwsem for
    writing.  When no writer has been there for a grace period, that first
    writer waits one (rcu_sync_enter: 10-20 ms on the machines measured
    here, docs/performance.md); a writer that follows another within a
    grace period does not.  Poked every INTERVAL_MS, the lock stays ready,
    and the stages' own joins do not wait.  ThreadedWarmer pokes it.

    Opened in the runtime's own cgroup of the hierarchy of the first of
    ``container_dirs``; when that cannot be opened there is nothing to warm
    (a join then pays the grace period as before)."""

    INTERVAL_MS = 4  # well under a grace period

    def __init__(self, container_dirs=None):
        """``container_dirs`` None: the first cgroup hierarchy mounted."""
        self.fd = -1
        self.pid = str(os.getpid()).encode()
        mount_table = None
        if container_dirs is None:
            mount_table = mounts_of_call()
            container_dirs = _first_hierarchy_dir(mount_table)
        if container_dirs:
            try:
                own = origin_dirs(container_dirs[:1], mount_table)[0]
                self.fd = os.open(os.path.join(own, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
            except Exception:  # noqa: BLE001 - an optimization, never a reason for create to fail
                self.fd = -1

    def poke(self):
        if self.fd < 0:
            return
        try:
            os.write(self.fd, self.pid)
        except OSError:
            pass  # the lock was taken all the same, or warming is moot

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ThreadedWarmer:
    """MigrationLockWarmer's pokes from a thread of this process, from the
    start of create, run and exec until their stage has joined the
    container's cgroups (runtime.py, _lock_warmer).

    Why a thread, and why that early: the kernel waits the grace period
    inside the write while holding cgroup_mutex, so a poke from the main
    thread blocks the runtime for 10-20 ms, and with it every cgroup
    operation on the host (mkdir in a hierarchy, a cgroupfs mount, reading
    /proc/<pid>/cgroup).  Poked from the main thread after the fork, the
    init waited that long for its answer to RUNTIME_SETUP; exec's stage,
    which joins ~2 ms after its fork, waited in its join.  From a thread
    started before the verb's imports, the grace period passes while the
    main thread imports and validates (os.write and sleep release the GIL),
    and later pokes hold the mutex for microseconds.

    The lock is global to all hierarchies: the first hierarchy mounted will
    do, or the first of ``container_dirs``.  (Writing a pid that does not
    exist would be a poke without a migration, but the kernel looks the task
    up before it takes the lock.)  The fd is opened here and from then on
    used and closed by the thread only, so its number can never be reused
    under a poke; a stage forked meanwhile inherits it and closes it with
    every fd it does not need, first thing.  The thread imports nothing (an
    import lock held by it at a fork would stay held in the child).
    ``enabled=False`` (PYRUNC_TEST_NO_WARMER=1) makes one that does
    nothing, for measuring it."""

    MAX_SECONDS = 2.0  # a bound, should stop() never come (an API caller's bug)
    WAIT_SECONDS = 0.05

    def __init__(self, container_dirs=None, *, enabled=True):
        import time

        self._stopped = False
        self._switch_interval = False  # whether this one shortened it
        self._monotonic, self._sleep = time.monotonic, time.sleep
        self._thread_task = ""  # /proc/self/task/<its tid>, once it runs
        self._sentinel = None
        # the thread sleeps by waiting on this lock: stop() releases it, so
        # the thread ends at once rather than at its next wake-up
        self._wake = _thread.allocate_lock()
        self._wake.acquire()
        if not enabled:
            return
        warmer = MigrationLockWarmer(container_dirs or None)
        if warmer.fd < 0:
            return
        _short_switch_interval(+1)
        self._switch_interval = True
        # Wait until the thread runs: blocking on the lock hands it the GIL
        # now, and it releases the GIL again in its first poke's write.
        started = _thread.allocate_lock()
        started.acquire()
        _thread.start_new_thread(self._run, (warmer, started))
        started.acquire()

    def _run(self, warmer, started):
        self._thread_task = f"/proc/self/task/{_thread.get_native_id()}"
        if hasattr(_thread, "_set_sentinel"):  # (CPython <= 3.12)
            # held by this thread (as threading's Thread does) and released
            # by the interpreter as it deletes this thread's state, right
            # before the thread lets go of the GIL for the last time
            sentinel = _thread._set_sentinel()
            sentinel.acquire()
            self._sentinel = sentinel
        started.release()
        deadline = self._monotonic() + self.MAX_SECONDS
        try:
            while not self._stopped and self._monotonic() < deadline:
                warmer.poke()
                self._wake.acquire(timeout=warmer.INTERVAL_MS / 1000)  # (True: stop() woke it)
        finally:
            warmer.close()

    def running(self):
        """Whether its thread has started and not been told to stop."""
        return bool(self._thread_task) and not self._stopped

    def stop(self, *, wait=False):
        """End the thread.  ``wait``: return once it is gone from this
        process (up to WAIT_SECONDS; a bound), for a clone that needs this
        process single-threaded (``fork_into``); otherwise it ends on its
        own, not waited for."""
        if not self._stopped:
            self._stopped = True
            self._wake.release()
        if self._switch_interval:
            self._switch_interval = False
            _short_switch_interval(-1)
        if wait and self._thread_task:
            if self._sentinel is not None and self._sentinel.acquire(timeout=self.WAIT_SECONDS):
                self._sentinel.release()
            deadline = self._monotonic() + self.WAIT_SECONDS
            while os.path.exists(self._thread_task) and self._monotonic() < deadline:
                self._sleep(0.00002)  # (releases the GIL: the thread may need it to end)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


_switch = {"warmers": 0, "saved": 0.005}
_switch_lock = _thread.allocate_lock()


def _short_switch_interval(delta):
    """A warmer's thread needs the GIL for a few bytecodes every INTERVAL_MS;
    with CPython's default switch interval (5 ms) it could wait that long
    for it while the main thread computes, and the lock would go cold
    between two pokes.  While any warmer of this process runs the interval
    is 0.5 ms; the caller's comes back when the last one stops (a library
    caller may run several creates at once, in threads)."""
    with _switch_lock:
        if delta > 0 and _switch["warmers"] == 0:
            _switch["saved"] = sys.getswitchinterval()
            sys.setswitchinterval(0.0005)
        _switch["warmers"] += delta
        if delta < 0 and _switch["warmers"] == 0:
            sys.setswitchinterval(_switch["saved"])


def _first_hierarchy_dir(mount_table):
    """A path under the first cgroup hierarchy mounted (for origin_dirs)."""
    for m in mount_table:
        if m["fstype"] in ("cgroup2", "cgroup"):
            return [m["mountpoint"].rstrip("/") + "/-"]
    return []
