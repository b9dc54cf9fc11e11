"""seccomp SCMP_ACT_NOTIFY with linux.seccomp.listenerPath, for exec'd
processes too (issue 17 item 9).

An exec'd process gets its own filter, so its own listener fd: it must reach
the agent at listenerPath just as create's does, with the container process
state (``fds: ["seccompFd"]``, ``pid`` = the exec'd process, ``metadata``,
``state`` of the container).  Without it a notified syscall of the exec'd
process fails with ENOSYS (nobody holds the listener).

The agent here is a unix socket server in the test: it keeps every message
and answers every notification with EXDEV, which no real mkdir on a tmpfs
returns, so the error text shows the agent answered.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import socket
import struct
import tempfile
import threading

import pytest

from helpers import exec_done, started, wait_for

# <linux/seccomp.h>: struct seccomp_notif is 80 bytes, seccomp_notif_resp 24
_NOTIF, _RESP = 80, 24
NOTIF_RECV = 0xC0000000 | (_NOTIF << 16) | (ord("!") << 8) | 0
NOTIF_SEND = 0xC0000000 | (_RESP << 16) | (ord("!") << 8) | 1
EXDEV = 18


class Agent:
    """A seccomp agent: keeps each connection's JSON, answers with -EXDEV."""

    def __init__(self, path):
        self.path = path
        self.messages: list[dict] = []
        self.answered = 0
        self.closed = False
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(path)
        self.server.listen(8)
        self.server.settimeout(0.2)
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.closed:
            try:
                conn, _ = self.server.accept()
            except (socket.timeout, OSError):
                continue
            with conn:
                conn.settimeout(5)
                msg, fds, _, _ = socket.recv_fds(conn, 1 << 16, 4)
            self.messages.append({"doc": json.loads(msg), "nfds": len(fds)})
            for fd in fds:
                t = threading.Thread(target=self._answer, args=(fd,), daemon=True)
                self.threads.append(t)
                t.start()

    def _answer(self, fd):
        try:
            while not self.closed:
                if not select.select([fd], [], [], 0.2)[0]:
                    continue
                notif = bytearray(_NOTIF)
                fcntl.ioctl(fd, NOTIF_RECV, notif)
                (nid,) = struct.unpack_from("=Q", notif)
                fcntl.ioctl(fd, NOTIF_SEND, bytearray(struct.pack("=QqiI", nid, 0, -EXDEV, 0)))
                self.answered += 1
        except OSError:
            pass  # the filter's last process is gone (ENOENT)
        finally:
            os.close(fd)

    def close(self):
        self.closed = True
        self.server.close()
        for t in self.threads:
            t.join(5)


@pytest.fixture
def agent():
    d = tempfile.mkdtemp(prefix="sa-", dir="/tmp")  # short: sun_path is 108 bytes
    a = Agent(os.path.join(d, "agent.sock"))
    try:
        yield a
    finally:
        a.close()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def notifying(bundle, agent):
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": agent.path,
        "listenerMetadata": "m1",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    }
    return bundle


def check_exec_message(msg, cid, init, pid):
    assert msg["nfds"] == 1
    doc = msg["doc"]
    assert doc["fds"] == ["seccompFd"] and doc["metadata"] == "m1"
    assert doc["pid"] == pid  # the exec'd process, not the init
    state = doc["state"]
    assert (state["id"], state["status"], state["pid"]) == (cid, "running", init)


def test_exec_sends_its_listener_fd_to_the_agent(any_rt, notifying, agent, tmp_path):
    cid, init = started(any_rt, notifying, "sleep", "1000")
    wait_for(lambda: len(agent.messages) == 1)  # create's, for the init
    assert agent.messages[0]["doc"]["pid"] == init
    # detached, so that the pid the agent got can be compared with the pid file
    pid_file = tmp_path / "exec.pid"
    p = any_rt(
        "exec",
        "--detach",
        "--pid-file",
        pid_file,
        cid,
        "sh",
        "-c",
        "mkdir /dev/shm/d 2>/shared/err; echo $? >/shared/rc; exec sleep 1000",
    )
    assert p.returncode == 0, p.stderr
    pid = int(pid_file.read_text())
    wait_for(lambda: exec_done(pid, "sleep"))
    wait_for(lambda: len(agent.messages) >= 2)  # the agent's thread may lag the runtime
    assert len(agent.messages) == 2, agent.messages
    check_exec_message(agent.messages[1], cid, init, pid)
    shared = notifying.shared
    assert open(os.path.join(shared, "rc")).read().strip() == "1"
    # EXDEV: the agent's answer (ENOSYS if nobody held the listener)
    assert "cross-device" in open(os.path.join(shared, "err")).read()
    assert agent.answered >= 1
    # in the foreground too: the agent answers, mkdir fails, nothing is made
    p = any_rt("exec", cid, "sh", "-c", "mkdir /dev/shm/f || test ! -e /dev/shm/f")
    assert p.returncode == 0 and "cross-device" in p.stderr, p.stderr
    wait_for(lambda: len(agent.messages) >= 3)
    assert len(agent.messages) == 3
    assert agent.messages[2]["doc"]["state"]["pid"] == init


def test_exec_with_a_terminal_sends_its_listener_fd_too(any_rt, notifying, agent, tmp_path):
    """A terminal makes pyrunc fork the process itself (the session leader
    that takes the pty) instead of spawning it: the other path to the agent."""
    cid, init = started(any_rt, notifying, "sleep", "1000")
    wait_for(lambda: len(agent.messages) == 1)
    d = tempfile.mkdtemp(prefix="cs-", dir="/tmp")
    console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    master = -1
    try:
        console.bind(os.path.join(d, "pty.sock"))
        console.listen(1)
        console.settimeout(10)
        pid_file = tmp_path / "exec.pid"
        p = any_rt(
            "exec",
            "--tty",
            "--detach",
            "--console-socket",
            os.path.join(d, "pty.sock"),
            "--pid-file",
            pid_file,
            cid,
            "sh",
            "-c",
            "mkdir /dev/shm/t; exec sleep 1000",
        )
        assert p.returncode == 0, p.stderr
        conn, _ = console.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        master = fds[0]
        out = b""
        while b"cross-device" not in out:
            assert select.select([master], [], [], 10)[0], out
            out += os.read(master, 4096)
        pid = int(pid_file.read_text())
        wait_for(lambda: len(agent.messages) >= 2)
        assert len(agent.messages) == 2, agent.messages
        check_exec_message(agent.messages[1], cid, init, pid)
    finally:
        if master >= 0:
            os.close(master)
        console.close()
        shutil.rmtree(d, ignore_errors=True)
