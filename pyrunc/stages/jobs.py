"""The job records the runtime hands to the stages it forks: everything a
stage needs, computed before fork (the stages import nothing after it)."""

from __future__ import annotations

from ..log import log

TYPE_CHECKING = False  # typing is for the checker only: not imported at run time
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Sequence
    from typing import Any

    from ..config.model import Config
    from ..process import ProcessAttrs
    from ..rootfs.ops import Op
    from ..seccomp import PreparedSeccomp
    from .protocol import Channel


class InitJob:
    """Everything the child stages need, computed by the runtime before fork."""

    cfg: Config
    container_id: str
    bundle: str
    mount_ops: list[Op]
    listen_fd: int
    console_fd: int
    console_sock: socket.socket | None
    no_pivot: bool
    no_new_keyring: bool
    seccomp: PreparedSeccomp | None
    keep_fds: Sequence[int]
    cap_count: int
    debug: Callable[[str], None] | None  # log.debug when create runs with --debug
    hook_runner: Callable[..., Any] | None
    seccomp_listener: socket.socket | None
    attrs: ProcessAttrs | None
    host_pid: int
    cgroup_fds: Sequence[int]
    origin_fds: Sequence[int]
    cgroup_dirs: dict[str, str] | None
    cgroups_pending: bool
    runtime_pidfd: int
    waiter_after: str | None

    def __init__(self, **kw: Any) -> None:
        self.cfg = kw["cfg"]  # config.model.Config
        self.container_id = kw["container_id"]
        self.bundle = kw["bundle"]
        self.mount_ops = kw["mount_ops"]  # rootfs.plan(...)
        self.listen_fd = kw["listen_fd"]  # start.sock, listening
        self.console_fd = kw.get("console_fd", -1)  # connected console socket
        self.console_sock = kw.get("console_sock")  # socket object for send_fds
        self.no_pivot = kw.get("no_pivot", False)
        self.no_new_keyring = kw.get("no_new_keyring", False)
        self.seccomp = kw.get("seccomp")  # seccomp.PreparedSeccomp or None
        self.keep_fds = kw.get("keep_fds", ())  # preserved fds (LISTEN_FDS + --preserve-fds)
        self.cap_count = kw["cap_count"]
        self.debug = kw.get("debug")
        self.hook_runner = kw.get("hook_runner")  # hooks.run_in_child or None
        self.seccomp_listener = kw.get("seccomp_listener")  # connected socket to listenerPath
        self.attrs = kw.get("attrs")  # process.ProcessAttrs or None
        self.host_pid = 0  # the init's pid on the host, from RUNTIME_SETUP_DONE
        # Late cgroup join: write fds of the container's cgroup.procs, which
        # the init enters right before execve (see join_cgroups); empty when
        # the runtime placed the stages in the cgroups at fork time.
        self.cgroup_fds = kw.get("cgroup_fds", ())
        self.origin_fds = kw.get("origin_fds", ())  # the runtime's own cgroups
        self.cgroup_dirs = kw.get("cgroup_dirs")
        # Forked before the runtime made the cgroups (creation.py): the init
        # waits for CGROUPS_CREATED, which brings the cgroup_fds, before its
        # first step that needs them (stages/init.py, _await_cgroups).
        self.cgroups_pending = kw.get("cgroups_pending", False)
        # When the init may become the waiter (creation.create's
        # waiter_after: "exit", "create" or None), and for "exit" a pidfd
        # of the runtime: readable once it is gone (stages/init.py).
        self.waiter_after = kw.get("waiter_after")
        self.runtime_pidfd = kw.get("runtime_pidfd", -1)

    def stage_fds(self, chan: Channel) -> list[int]:
        """The fds the stages need; every other fd is closed as the first
        thing the intermediate does (sc.close_fds_except)."""
        fds = [
            chan.fd,
            self.listen_fd,
            self.console_fd,
            log.fileno(),
            *self.keep_fds,
            *self.cgroup_fds,
            *self.origin_fds,
            self.runtime_pidfd,
        ]
        for sock in (self.console_sock, self.seccomp_listener):
            if sock is not None:
                fds.append(sock.fileno())
        fds.extend(fd for op in self.mount_ops for fd in op.held_fds())
        return fds
