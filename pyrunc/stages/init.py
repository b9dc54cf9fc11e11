"""The child stages of ``create``: the intermediate and the container init.

Both are forks of the runtime process (no re-exec: the interpreter, the
config and every module they use are already in memory; nothing is imported
here after the fork).  The runtime drives them over the stage protocol
(``stages/protocol.py``, docs/stage-protocol.md; the job record:
``stages/jobs.py``):

runtime                         intermediate [stage 1]       init [stage 2, pid 1]
  fork ------------------------> waits CONTINUE
  (make the cgroups, or: after CONTINUE, see below)
  put it in the cgroups (a user namespace; else the init joins late)
  CONTINUE ---------------------> setns(path namespaces, user first)
                                  unshare(user)
  <------------------------------ WRITE_MAPS {pid}
  write uid_map/gid_map
  MAPS_WRITTEN -----------------> setresuid(0); unshare(the other namespaces)
                                  write timens_offsets; fork ---> setsid, umask 0, lo up
  <------------------------------ INIT_PID {pid}; exit           mount plan (pre-pivot)
  reap the intermediate                                           console (pty peer)
  <-------------------------------------------------------------- RUNTIME_SETUP
  prestart + createRuntime hooks, netDevices
  RUNTIME_SETUP_DONE -------------------------------------------> createContainer hooks
                                                                  pivot_root, ro root,
                                                                  hostname, sysctl,
                                                                  resolve args[0]
  <-------------------------------------------------------------- READY
  write state, pid file; exit                                     accept() on start.sock
  `start` connects ----------------------------------------------> startContainer hooks
  <-------------------------------------------------------------- "0" (then EOF at exec)
                                                                  rlimits, user, caps,
                                                                  no_new_privs, seccomp,
                                                                  close fds, execve

Stages forked before the cgroups exist (creation._fork_before_cgroup) get
CGROUPS_CREATED {fds, origin} + the late-join fds from the runtime once it
made them; the init takes it before its cgroup mount, or else before
RUNTIME_SETUP.  The CLI may fork the init itself, without an intermediate
(direct_init_main).

Any failure in a stage is sent as ERROR {msg} with the root cause and the
stage exits; the runtime raises it as the single error line.
"""

import _signal  # the C module behind `signal`, without its enum import
import _socket  # noqa: F401 - for protocol.Channel.recv_fds in the init, which imports nothing after the fork
from .. import lightos as os  # os's calls without importing os (lightos.py)

from .. import console, lsm, namespaces, rootfs
from ..cgroups.join import join as join_cgroups
from ..errors import PyruncError, StageError
from ..faults import fail as fault_fail
from ..faults import point as fault_point
from ..linux import procfs
from ..linux import syscalls as sc
from ..linux.procwrite import write_sysctls
from ..log import log
from .. import waiter
from ..process import exec_final, finalize, finalize_and_exec, lookup_executable, prepare_exec, set_ignored_signals
from ..state import START_ACCEPTED, START_COMMITTED, hook_state
from . import protocol as proto
from .common import describe as _describe
from .common import fail_stage, seal_imports


# --- stage 1 ---------------------------------------------------------------
def _first_steps(chan, job):
    """The first thing the intermediate (or an init forked without one)
    does; returns (its /proc/self/cgroup, whether it joined a user
    namespace)."""
    # First: nothing of the caller's (or of the runtime's) but what the
    # stages need may reach a process that enters the container.
    sc.close_fds_except(job.stage_fds(chan))
    # Non-dumpable before entering any container namespace, inherited by
    # the init: a process of a joined pid namespace can neither ptrace us
    # nor open /proc/<pid>/{fd,exe,mem} (CVE-2016-9962, CVE-2019-5736).
    sc.prctl(sc.PR_SET_DUMPABLE, 0)
    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
    _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
    mtype, _ = chan.expect(proto.CONTINUE)
    if mtype == proto.ERROR:
        os._exit(1)
    self_cgroups = procfs.read_text("/proc/self/cgroup")
    # id-mapped binds need the host's user namespace: build them now
    rootfs.prepare_in_host(job.mount_ops, job.bundle)
    # Open every namespace path first: after the first setns the paths
    # would be looked up in the joined namespaces.
    joined_userns = namespaces.enter(namespaces.open_paths(job.cfg.namespaces))
    fault_point("intermediate:joined")
    return self_cgroups, joined_userns


def _cgroupns_at(cgroup_fds, origin_fds):
    """A new cgroup namespace rooted at the container's cgroup, without
    leaving this process (and so the init) charged to it: join, unshare, go
    back to the runtime's own cgroups (``origin_fds``, closed).  The init
    joins for good right before READY."""
    join_cgroups(cgroup_fds, close=False)
    sc.unshare(sc.CLONE_NEWCGROUP)
    join_cgroups(origin_fds)


def intermediate_main(chan, job):
    try:
        self_cgroups, joined_userns = _first_steps(chan, job)
        cfg = job.cfg
        if joined_userns:
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        new_flags = namespaces.unshare_flags(cfg.namespaces)
        if job.cgroups_pending:
            new_flags &= ~sc.CLONE_NEWCGROUP  # made by the init once the cgroup exists (_await_cgroups)
        elif job.origin_fds and new_flags & sc.CLONE_NEWCGROUP:
            _cgroupns_at(job.cgroup_fds, job.origin_fds)
            new_flags &= ~sc.CLONE_NEWCGROUP
        if new_flags & sc.CLONE_NEWUSER:
            # An unprivileged runtime (rootless) can open our /proc files,
            # and newuidmap accepts us, only while we are dumpable: a
            # non-dumpable process's /proc/<pid> belongs to host root.  For
            # the map writing only, in no container namespace but the new,
            # still empty user namespace (runc does the same).
            unprivileged = os.geteuid() != 0
            sc.unshare(sc.CLONE_NEWUSER)
            if unprivileged:
                sc.prctl(sc.PR_SET_DUMPABLE, 1)
            chan.send(proto.WRITE_MAPS, {"pid": os.getpid()})
            mtype, _ = chan.expect(proto.MAPS_WRITTEN)
            if mtype == proto.ERROR:
                os._exit(1)
            if unprivileged:
                sc.prctl(sc.PR_SET_DUMPABLE, 0)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        if new_flags & ~sc.CLONE_NEWUSER:
            sc.unshare(new_flags & ~sc.CLONE_NEWUSER)
        fault_point("intermediate:unshared")
        rootfs.collect_sources()  # bind sources cloned by host root, in our mount ns
        if new_flags & sc.CLONE_NEWTIME and cfg.time_offsets:
            with open("/proc/self/timens_offsets", "w") as f:
                f.write("".join(f"{o.clock} {o.secs} {o.nanosecs}\n" for o in cfg.time_offsets))
        # The init and this process share the channel: the init waits until
        # INIT_PID is sent, so the runtime always learns the pid before any
        # message of the init (RUNTIME_SETUP, READY) arrives.
        pid_sent_r, pid_sent_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(pid_sent_w)
            if os.read(pid_sent_r, 1) != b"1":
                os._exit(1)  # the intermediate died before the runtime knew of us
            os.close(pid_sent_r)
            init_main(chan, job, self_cgroups)
        os.close(pid_sent_r)
        chan.send(proto.INIT_PID, {"pid": pid})
        os.write(pid_sent_w, b"1")
        os._exit(0)
    except BaseException as e:  # noqa: BLE001 - everything becomes one ERROR line
        fail_stage(chan, e)


# --- stage 2: the init -----------------------------------------------------
def _loopback_up():
    """Bring up ``lo`` in the new network namespace (runc does)."""
    from ..linux import ffi

    SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
    buf = ffi.create_string_buffer(40)
    buf.raw = b"lo".ljust(40, b"\0")
    fd = sc.socket(sc.AF_INET, sc.SOCK_DGRAM)
    try:
        sc.ioctl_ptr(fd, SIOCGIFFLAGS, buf)
        flags = int.from_bytes(buf.raw[16:18], "little") | IFF_UP
        buf.raw = buf.raw[:16] + flags.to_bytes(2, "little") + buf.raw[18:]
        sc.ioctl_ptr(fd, SIOCSIFFLAGS, buf)
    finally:
        os.close(fd)


def _setup_console(job):
    """Allocate the pty in the container's devpts (the one mounted at
    rootfs/dev/pts), take the peer with TIOCGPTPEER (no path lookup,
    CVE-2025-52565), send the master to the console socket (one message,
    one fd, no waiting for the peer), bind the peer onto /dev/console and
    make it the controlling terminal and stdio."""
    ctx_rootfs = os.open(job.cfg.root_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        master = sc.openat2(
            ctx_rootfs,
            "dev/pts/ptmx",
            os.O_RDWR | os.O_NOCTTY,
            sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_SYMLINKS,
            display="/dev/pts/ptmx",
        )
    except OSError:
        master = sc.openat2(ctx_rootfs, "dev/ptmx", os.O_RDWR | os.O_NOCTTY, sc.RESOLVE_IN_ROOT, display="/dev/ptmx")
    peer = console.pty_peer(master, job.cfg.process.console_size)
    st = os.fstat(peer)
    if (st.st_mode & 0o170000) != 0o020000 or os.major(st.st_rdev) not in range(136, 144):
        raise StageError("console: the pty peer is not a pts device")
    # /dev/console: bind the peer onto a file created fd-relative in /dev
    dev = sc.openat2(
        ctx_rootfs, "dev", os.O_PATH | os.O_DIRECTORY, sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_SYMLINKS, display="/dev"
    )
    try:
        try:
            os.unlink("console", dir_fd=dev)
        except FileNotFoundError:
            pass
        os.mknod("console", 0o100600, dir_fd=dev)
        target = sc.openat2(dev, "console", os.O_PATH, sc.RESOLVE_BENEATH | sc.RESOLVE_NO_SYMLINKS)
        try:
            sc.bind_fd(peer, target, display="/dev/console")
        finally:
            os.close(target)
    finally:
        os.close(dev)
        os.close(ctx_rootfs)
    console.hand_over(job.console_sock, master)
    console.become_stdio(peer, job.cfg.process.user.uid)


def _hook_state(job, status):
    """The state on a container-namespace hook's stdin (the same fields as
    Container.hook_state); the host pid came with RUNTIME_SETUP_DONE."""
    cfg = job.cfg
    return hook_state(cfg.oci_version, job.container_id, status, job.host_pid, job.bundle, cfg.annotations)


def _waiter_image(job, path, seccomp, apparmor_profile):
    """The waiter's sealed memfd (waiter.py), with ``seccomp`` the filter for
    it to load and the AppArmor exec label for it to write, and the
    listening socket made inheritable; -1 where that cannot be done (its
    data would not fit: a filter larger than it reads; a call failed).
    Before the process settings: they may load a filter that refuses
    memfd_create or fcntl, or set a personality under which uname(2) names
    another machine."""
    label = None
    if apparmor_profile:
        rel, text = lsm.apparmor_exec_label(apparmor_profile)
        label = (rel, text, lsm.apparmor_failure(apparmor_profile, f"/proc/{rel}"))
    try:
        fd = waiter.image(waiter.data_block(job.listen_fd, path, seccomp, label))
    except (ValueError, OSError):
        return -1
    try:
        os.set_inheritable(job.listen_fd, True)  # through the waiter's execve
    except OSError:
        os.close(fd)
        return -1
    return fd


def _exec_waiter(fd, path, args, env):
    """Exec the waiter from ``fd``; returns if the execveat failed (the
    Python init then waits; it closes the listening socket once `start`
    connected, so the inheritable flag left on it reaches nobody)."""
    set_ignored_signals(_signal.SIG_DFL)
    try:
        fault_fail("init:waiter-exec")
        waiter.exec_waiter(fd, path, args, env)
    except OSError:
        pass
    set_ignored_signals(_signal.SIG_IGN)  # an early filter allows it (waiter.usable)


def _send_notify_fd(job, fd):
    """SCMP_ACT_NOTIFY: hand the listener fd to the seccomp agent over the
    socket the runtime connected before the fork (its path is on the host)."""
    if fd is None or job.seccomp_listener is None:
        return
    from ..seccomp import send_listener  # loaded by the runtime (prepare) before the fork

    state = _hook_state(job, "creating")  # sent during create (runc: "creating" too)
    send_listener(job.seccomp_listener, fd, state.get("pid", 0), state, job.seccomp.listener_metadata)
    os.close(fd)


def direct_init_main(chan, job):
    """The init forked by the runtime itself, without an intermediate
    (creation._init_forked_directly): pid 1 of the pid namespace the
    runtime unshared for its children, in the runtime's other namespaces.
    It does the intermediate's work, in the same order, then the init's."""
    try:
        # (the new pid namespace holds only us: non-dumpable in time)
        self_cgroups, _ = _first_steps(chan, job)  # no user namespace here
        # (a new cgroup namespace: made once the cgroup exists, _await_cgroups)
        new_flags = namespaces.unshare_flags(job.cfg.namespaces) & ~(sc.CLONE_NEWPID | sc.CLONE_NEWCGROUP)
        if new_flags:
            sc.unshare(new_flags)
        fault_point("intermediate:unshared")
        rootfs.collect_sources()
    except BaseException as e:  # noqa: BLE001 - everything becomes one ERROR line
        fail_stage(chan, e)
    init_main(chan, job, self_cgroups)


def _await_cgroups(chan, job):
    """Forked before its cgroups existed (creation.py), the init takes the
    runtime's CGROUPS_CREATED, with the cgroup.procs fds of its late join,
    before its first step that needs the cgroups (the cgroup mount binds
    the container's directories or shows the cgroup namespace), and at the
    latest before RUNTIME_SETUP (the runtime's hooks may look at its cgroup
    namespace).

    With a new cgroup namespace, the message also brings the fds of the
    runtime's own cgroups ("origin"), to root it at the container's cgroup
    (``_cgroupns_at``, as the intermediate does when the cgroup exists
    before it)."""
    if not job.cgroups_pending:
        return
    mtype, payload, fds = chan.recv_fds(proto.CGROUPS_CREATED, max_fds=64)
    if mtype == proto.ERROR:
        os._exit(1)
    origin = payload.get("origin", 0)
    if not isinstance(origin, int) or not 0 <= origin < len(fds):
        raise StageError(f"stage protocol: CGROUPS_CREATED: bad origin count {origin!r}")
    job.cgroup_fds = tuple(fds[: len(fds) - origin])
    job.cgroups_pending = False
    if origin:
        _cgroupns_at(job.cgroup_fds, fds[len(fds) - origin :])


def init_main(chan, job, self_cgroups):
    cfg = job.cfg
    seccomp = job.seccomp
    stage = "init"
    env = None
    try:
        fault_point("init:forked")
        os.setsid()
        os.umask(0)
        if not job.no_new_keyring:
            # A session keyring of its own, so the container cannot read the
            # host session's keys (runc does the same; --no-new-keyring skips).
            try:
                sc.join_session_keyring(job.container_id)
            except OSError as e:
                if e.errno not in (38, 1):  # ENOSYS, EPERM: keyrings unavailable here
                    raise
        if cfg.has_new_namespace("network"):
            _loopback_up()
        ctx = rootfs.PlanContext(
            cfg.root_path,
            job.bundle,
            mount_label=cfg.mount_label,
            new_cgroupns=cfg.has_new_namespace("cgroup"),
            self_cgroups=self_cgroups,
            cgroup_dirs=job.cgroup_dirs,
            await_cgroups=(lambda: _await_cgroups(chan, job)) if job.cgroups_pending else None,
        )
        stage = "rootfs"
        rootfs.execute(job.mount_ops, ctx, debug=job.debug)
        fault_point("init:mounted")
        if cfg.process and cfg.process.terminal:
            stage = "console"
            _setup_console(job)
        stage = "rootfs"
        rootfs.finish(job.mount_ops, ctx, debug=job.debug)  # after the console: a ro /dev
        stage = "runtime setup"
        _await_cgroups(chan, job)  # whether a mount needed them or not
        chan.send(proto.RUNTIME_SETUP)
        mtype, payload = chan.expect(proto.RUNTIME_SETUP_DONE)
        if mtype == proto.ERROR:
            os._exit(1)
        job.host_pid = int(payload.get("pid") or 0)
        if job.hook_runner and cfg.hooks.get("createContainer"):
            stage = "createContainer hooks"
            job.hook_runner(cfg.hook_list("createContainer"), _hook_state(job, "creating"), "createContainer")
        if cfg.process and cfg.process.cwd:
            # runc creates a missing cwd; before the root turns read-only,
            # which would refuse the mkdir
            os.close(ctx.target(cfg.process.cwd))
        if cfg.root_readonly:
            rootfs.ReadonlyRoot().run(ctx)
        ctx.close()
        log.close_for_stage()  # no host file past this point (the init waits in the container)
        stage = "pivot_root"
        rootfs.pivot(cfg.root_path, job.no_pivot, cfg.rootfs_propagation)
        seal_imports()
        fault_point("init:pivoted")
        if cfg.hostname is not None and cfg.has_new_namespace("uts"):
            sc.sethostname(cfg.hostname)
        if cfg.domainname is not None and cfg.has_new_namespace("uts"):
            sc.setdomainname(cfg.domainname)
        if cfg.sysctl:
            stage = "sysctl"
            write_sysctls(cfg.sysctl)
        proc = cfg.process
        stage = "exec lookup"
        path = lookup_executable(proc.args[0], proc.env, proc.cwd)
        sc.prctl(sc.PR_SET_DUMPABLE, 0)
        # As runc's init, before it waits: the fds close-on-exec, $HOME from
        # the image's passwd, the cwd entered (`start` then waits for less).
        stage = "process"
        prepared = prepare_exec(proc, job.keep_fds)
        notify_loaded = seccomp is not None and seccomp.uses_notify
        if notify_loaded:
            # The seccomp agent gets the listener fd during create, as with
            # runc: a notifying filter is loaded now, not right before execve.
            stage = "seccomp notify"
            _send_notify_fd(job, seccomp.load())
            seccomp = None
        start_hooks = bool(job.hook_runner and cfg.hooks.get("startContainer"))
        use_waiter = job.waiter_after is not None and waiter.usable(
            proc, seccomp, start_hooks=start_hooks, notify_loaded=notify_loaded
        )
        stage = "cgroup join"
        # From the join on, what this process faults in is charged to the
        # container.  With transparent huge pages "always", one small
        # allocation while it waits can fault a whole 2 MiB page in (a
        # created container was charged 2.3 MiB, now and then, on cgroup
        # v2): no huge pages for the waiting init; cleared at start, before
        # the hooks and the execve (the flag survives execve).  Not once a
        # notifying filter is loaded: its agent must see only the
        # container's syscalls.  Nor when the waiter may wait: this process
        # waits only until the runtime is gone, then execs it.
        thp_off = not notify_loaded and not use_waiter
        if thp_off:
            sc.prctl(sc.PR_SET_THP_DISABLE, 1)
        join_cgroups(job.cgroup_fds)
        chan.send(proto.READY)
        if not (use_waiter and job.waiter_after == "create"):
            chan.close()  # else: its EOF tells that create has returned
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, OSError) and not isinstance(e, PyruncError):
            e = StageError(f"{stage}: {_describe(e)}")
        fail_stage(chan, e)

    # Created.  The waiter waits for `start` (waiter.py) once the CLI's
    # runtime is gone (its pidfd): at the waiter's execve the kernel frees
    # this address space, ~1 ms of work that would slow the runtime's own
    # exit (the pages are shared); and the process settings are applied
    # first, ~0.5 ms that `create` need not wait for.  A library caller
    # lives on: once its create has returned (the channel's EOF).  If
    # `start` connects first, the Python init answers, as when the waiter
    # is not used.
    finalized = False
    finalize_error = None
    label_pending = False  # the AppArmor label, left to the waiter
    if use_waiter:
        released = job.runtime_pidfd if job.waiter_after == "exit" else chan.fd
        try:
            start_first = job.listen_fd in sc.readable((released, job.listen_fd))
        except OSError:
            start_first = True
        if job.waiter_after == "create":
            chan.close()
        if not start_first:
            waiter_fd = _waiter_image(job, path, seccomp if proc.no_new_privileges else None, proc.apparmor_profile)
            label_pending = waiter_fd >= 0 and bool(proc.apparmor_profile)
            try:
                env = finalize(
                    proc,
                    cap_count=job.cap_count,
                    seccomp=seccomp,
                    keep_fds=job.keep_fds,
                    attrs=job.attrs,
                    prepared=prepared,
                    exec_labels=not label_pending,
                )
            except BaseException as e:  # noqa: BLE001 - `start` reports it, as it did
                finalize_error = e
            else:
                finalized = True
                if waiter_fd >= 0:
                    _exec_waiter(waiter_fd, path, proc.args, env)
                # still here: the Python init waits, all but the last filter
                # and the execve done
            if waiter_fd >= 0:
                os.close(waiter_fd)  # inheritable: it must not reach the program
    if job.runtime_pidfd >= 0:
        os.close(job.runtime_pidfd)  # close-on-exec too, but a host process's: not a moment longer

    # Created: wait for `start`.
    conn = -1
    committed = []

    def commit():
        # Only the execve (and a filter under no_new_privs) is left: `start`
        # may return, as runc's does once its init has written to its FIFO.
        committed.append(True)
        try:
            os.write(conn, START_COMMITTED)
        except OSError:
            pass  # `start` is gone: it had marked the container running

    try:
        conn = sc.accept(job.listen_fd)
        os.close(job.listen_fd)
        if finalize_error is not None:
            raise finalize_error
        if finalized:
            if label_pending:  # the waiter's execveat failed
                lsm.apply_exec_labels(proc.apparmor_profile)
            os.write(conn, START_ACCEPTED)
            commit()
            exec_final(proc, path, env, seccomp)
        if thp_off:
            sc.prctl(sc.PR_SET_THP_DISABLE, 0)  # the container's program gets the host's policy
        if job.hook_runner and cfg.hooks.get("startContainer"):
            job.hook_runner(cfg.hook_list("startContainer"), _hook_state(job, "created"), "startContainer")
        os.write(conn, START_ACCEPTED)
        finalize_and_exec(
            proc,
            path,
            cap_count=job.cap_count,
            seccomp=seccomp,
            keep_fds=job.keep_fds,
            on_seccomp=lambda fd: _send_notify_fd(job, fd),
            attrs=job.attrs,
            prepared=prepared,
            # not under a notifying filter loaded during create: its agent
            # must see only the container's syscalls
            on_committed=None if notify_loaded else commit,
        )
    except BaseException as e:  # noqa: BLE001
        text = _describe(e)
        if committed:
            # `start` may have returned already: the container's stderr is
            # where this goes then (runc's init writes it there too)
            try:
                os.write(2, f"pyrunc: {text}\n".encode())
            except OSError:
                pass
        if conn >= 0:
            try:
                os.write(conn, text.encode()[:16000])
            except OSError:
                pass
        os._exit(1)
    os._exit(127)
