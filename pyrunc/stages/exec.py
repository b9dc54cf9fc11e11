"""The stage side of ``exec``: a fork of the runtime that joins the
container's namespaces and cgroups and starts the process (spawned straight
into the pid namespace, or forked when it needs a terminal or an LSM label).
The runtime side is ``pyrunc/execution.py``; the messages are
``stages/protocol.py``'s."""

import _signal  # the C module behind `signal`, without its enum import
from .. import lightos as os  # os's calls without importing os (lightos.py)

from .. import namespaces
from ..capabilities import known_cap_count
from ..cgroups.join import join as join_cgroups
from ..console import become_stdio, hand_over, pty_peer
from ..faults import point as fault_point
from ..linux import syscalls as sc
from ..log import log
from ..process import finalize_and_exec, lookup_executable, set_oom_score_adj
from . import protocol as proto
from .common import fail_stage, seal_imports


class SeccompAgent:
    """SCMP_ACT_NOTIFY with a linux.seccomp.listenerPath: the exec's own
    listener fd goes to the agent, as create's does (runc does the same).
    The runtime connects (the path is the host's); the stage that loads the
    filter sends, once the exec'd process's host pid is known: the message
    is the container process state (spec: seccomp ContainerProcessState)
    with that pid and the container's state."""

    def __init__(self, sock, state, metadata):
        self.sock = sock
        self.state = state
        self.metadata = metadata
        self.fds = []  # the listener fd, from finalize_and_exec's on_seccomp
        self.pid_pipe: tuple[int, int] | None = None  # fork path: the forked process learns its host pid here

    def send(self, pid):
        # in the stage, after the container's root was entered: seccomp was
        # loaded before the fork (prepare)
        from ..seccomp import send_listener

        if not self.fds:
            return
        send_listener(self.sock, self.fds[0], pid, self.state, self.metadata)
        os.close(self.fds.pop())

    def send_from_forked(self, fd):
        self.fds.append(fd)
        assert self.pid_pipe is not None  # made before the fork that calls this
        self.send(int(os.read(self.pid_pipe[0], 32)))


def exec_child(chan, proc, ns_fds, seccomp, console, keep_fds, attrs, cgroup_fds, agent=None):
    """Stage 1 of exec: join, then fork the process (never returns)."""
    try:
        # First: only what this stage needs stays open (not the caller's fds).
        log.close_for_stage()
        sc.close_fds_except(
            [
                chan.fd,
                *keep_fds,
                *cgroup_fds,
                *(fd for _, fd in ns_fds),
                console.fileno() if console is not None else -1,
                agent.sock.fileno() if agent is not None else -1,
            ]
        )
        _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
        _signal.signal(_signal.SIGTERM, _signal.SIG_DFL)
        sc.prctl(sc.PR_SET_DUMPABLE, 0)
        mtype, _ = chan.expect(proto.CONTINUE)
        if mtype == proto.ERROR:
            os._exit(1)
        # Spawn mode (see finalize_and_exec) applies the settings in this
        # process, which stays outside the container's pid namespace and so
        # cannot reach the container's /proc/self: what goes through procfs
        # is written now, from the host's /proc (oom_score_adj is inherited);
        # LSM exec labels need the fork path.
        spawn = console is None and not proc.apparmor_profile and not proc.selinux_label
        if spawn:
            set_oom_score_adj(proc.oom_score_adj)
            proc = proc.replace(oom_score_adj=None)
        # after the mount namespace, paths resolve in the container's root
        if namespaces.enter(ns_fds, show_paths=False, after_mount=seal_imports):
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        fault_point("exec:joined")
        if spawn:
            # The process settings are applied here, and the target is
            # spawned straight into the pid namespace (see finalize_and_exec).
            path = lookup_executable(proc.args[0], proc.env, proc.cwd)
            join_cgroups(cgroup_fds)
            pid = finalize_and_exec(
                proc,
                path,
                cap_count=known_cap_count(),
                seccomp=seccomp,
                keep_fds=keep_fds,
                attrs=attrs,
                spawn=True,
                on_seccomp=agent.fds.append if agent is not None else None,
            )
            if agent is not None:
                # the filter's listener stays open here: notifications made
                # before the agent has it wait in the kernel
                agent.send(pid)
            chan.send(proto.INIT_PID, {"pid": pid})
            os._exit(0)
        # With a terminal the target must itself be the session leader that
        # takes the pty as controlling terminal (and LSM labels are written
        # to /proc/self/attr): fork into the pid namespace, set up, exec.
        if agent is not None:
            agent.pid_pipe = os.pipe()
        pid = os.fork()
        if pid == 0:
            _exec_process(chan, proc, seccomp, console, keep_fds, attrs, cgroup_fds, agent)
        if agent is not None:
            os.write(agent.pid_pipe[1], str(pid).encode())
        chan.send(proto.INIT_PID, {"pid": pid})
        os._exit(0)
    except BaseException as e:  # noqa: BLE001
        fail_stage(chan, e)


def _exec_process(chan, proc, seccomp, console, keep_fds, attrs, cgroup_fds, agent=None):
    try:
        sc.prctl(sc.PR_SET_DUMPABLE, 0)
        os.setsid()
        if console is not None:
            _exec_console(console, proc)
        path = lookup_executable(proc.args[0], proc.env, proc.cwd)
        # late join, as for the init: the Python work stays charged to the caller
        join_cgroups(cgroup_fds)
        finalize_and_exec(
            proc,
            path,
            cap_count=known_cap_count(),
            seccomp=seccomp,
            keep_fds=keep_fds,
            attrs=attrs,
            on_seccomp=agent.send_from_forked if agent is not None else None,
        )
    except BaseException as e:  # noqa: BLE001
        fail_stage(chan, e)


def _exec_console(console, proc):
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    peer = pty_peer(master, proc.console_size)
    hand_over(console, master)
    become_stdio(peer, proc.user.uid)
