"""Terminals as runc 1.1.5 makes them (issue 17, item 6), against pyrunc and
runc on the same bundle (``any_rt``, tests/differential.py).

* The container's pty belongs to the process's user (runc chowns its stdio
  to process.user.uid before switching user; the group stays the devpts
  ``gid=5``), for the init's console and for ``exec -t``.
* ``exec -t`` in the foreground without ``--console-socket`` allocates a
  pty in the container and relays it to the runtime's own stdio.
"""

import errno
import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time

import pytest

from helpers import TIMEOUT, new_id, wait_for
from helpers import read_until_eof, receive_master

PTY_GROUP = 5  # the default spec's devpts gid=5


def pts_owner(path):
    st = os.stat(path)
    return st.st_uid, st.st_gid, st.st_mode & 0o777


@pytest.mark.parametrize("userns", [False, True], ids=["host-ids", "userns"])
def test_console_belongs_to_the_process_user(any_rt, bundle, userns_bundle, console_socket, userns):
    path, srv = console_socket
    shift = 0
    if userns:
        shift = 100000  # container id k is host id 100000 + k
        bundle = userns_bundle
        bundle.set_namespace("user")
        for key in ("uidMappings", "gidMappings"):
            bundle.config["linux"][key] = [{"containerID": 0, "hostID": shift, "size": 65536}]
        # a v1 cgroup mount inside a user namespace is not what is tested here
        bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.sh("stat -c '%u:%g %a' $(tty) /dev/console; id -u; read line")
    cid = new_id("tty")
    p = any_rt.create(cid, bundle, "--console-socket", path)
    assert p.returncode == 0, p.stderr
    fds, _, _ = receive_master(srv)
    master = fds[0]
    try:
        assert any_rt.start(cid).returncode == 0
        pid = any_rt.state_json(cid)["pid"]
        # seen from the host: the process's stdin is that pty, owned by uid 1000
        wait_for(lambda: os.readlink(f"/proc/{pid}/exe").endswith("busybox"))
        assert pts_owner(f"/proc/{pid}/fd/0") == (shift + 1000, shift + PTY_GROUP, 0o620)
        os.write(master, b"go\n")
        out = read_until_eof(master).decode().replace("\r\n", "\n")
    finally:
        os.close(master)
    lines = out.splitlines()
    assert lines[:3] == ["1000:5 620", "1000:5 620", "1000"], out
    any_rt.wait_status(cid, "stopped")


def test_exec_console_belongs_to_the_exec_user(any_rt, bundle, console_socket):
    path, srv = console_socket
    bundle.set_args("sleep", "100")
    cid = new_id("tty")
    assert any_rt.run(cid, bundle, "-d").returncode == 0
    # runc takes --console-socket only with --detach
    p = any_rt(
        "exec",
        "-t",
        "-d",
        "--console-socket",
        path,
        "--user",
        "1001:1002",
        cid,
        "sh",
        "-c",
        "stat -c '%u:%g %a' $(tty); id -u",
    )
    assert p.returncode == 0, p.stderr
    fds, _, _ = receive_master(srv)
    try:
        out = read_until_eof(fds[0]).decode().replace("\r\n", "\n")
    finally:
        os.close(fds[0])
    assert out.splitlines() == ["1001:5 620", "1001"]


# --- exec -t without a console socket ------------------------------------------
def run_under_pty(argv, typed=b"", rows=33, cols=111, on_ready=None):
    """Run ``argv`` with a new pty as its stdio (the way a user's shell
    would); return (exit status, everything it wrote).  Once "ready" was
    written, ``on_ready(master, proc)`` is called, then ``typed`` is typed."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    try:
        proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    finally:
        os.close(slave)
    out = b""
    sent = False
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError as e:
                    if e.errno == errno.EIO:  # every holder of the slave is gone
                        break
                    raise
                if not chunk:
                    break
                out += chunk
            if not sent and b"ready" in out:
                if on_ready is not None:
                    on_ready(master, proc)
                os.write(master, typed)
                sent = True
            if proc.poll() is not None and not r:
                break
        rc = proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return rc, out.decode(errors="replace").replace("\r\n", "\n")


@pytest.fixture
def sleeper(any_rt, bundle):
    bundle.set_args("sleep", "100")
    cid = new_id("tty")
    p = any_rt.run(cid, bundle, "-d")
    assert p.returncode == 0, p.stderr
    return cid


def test_exec_tty_in_the_foreground_relays_a_pty(any_rt, sleeper):
    # the size is read after the input: runc sets it only once the process
    # runs (pyrunc before it starts), so earlier it may still be 0 0 there
    script = (
        "tty; test -t 0 && test -t 1 && echo stdio-is-tty; echo ready; read line; echo got:$line; stty size; exit 7"
    )
    rc, out = run_under_pty(
        [any_rt.path, "--root", any_rt.root, "exec", "-t", sleeper, "sh", "-c", script], typed=b"typed-in\n"
    )
    assert rc == 7, out
    lines = [l for l in out.splitlines() if l]
    assert lines[0].startswith("/dev/pts/"), out
    assert "stdio-is-tty" in lines
    assert "33 111" in lines  # the container's pty took the size of ours
    assert "got:typed-in" in lines
    # the container's pty, not ours: its /dev/pts is the container's devpts
    assert not os.path.exists(lines[0]) or os.stat(lines[0]).st_rdev != os.stat("/dev/tty").st_rdev


def test_exec_tty_follows_our_window_size(any_rt, sleeper):
    """Our terminal is resized (and we get SIGWINCH, sent by hand here: the
    runtime is not in the pty's foreground group): the container's pty
    takes the new size."""

    def resize(master, proc):
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 132, 0, 0))
        proc.send_signal(signal.SIGWINCH)
        time.sleep(0.5)  # the runtime resizes asynchronously

    rc, out = run_under_pty(
        [any_rt.path, "--root", any_rt.root, "exec", "-t", sleeper, "sh", "-c", "echo ready; read line; stty size"],
        typed=b"\n",
        on_ready=resize,
    )
    assert rc == 0, out
    sizes = [l for l in out.splitlines() if l and l[0].isdigit()]
    assert sizes == ["40 132"], out


def test_exec_tty_without_a_terminal_of_our_own(any_rt, sleeper):
    """Our stdio is not a terminal (a file and /dev/null) and we have no
    controlling terminal: pyrunc still gives the process a pty of its own,
    relayed to our stdout."""
    p = any_rt("exec", "-t", sleeper, "sh", "-c", "tty; test -t 0 && echo stdin-is-tty")
    if any_rt.name == "runc":
        # runc 1.1.5 needs a terminal of its own to put in raw mode (it
        # falls back to opening /dev/tty); pyrunc relays without one, which
        # refuses nothing runc accepts
        assert p.returncode != 0 and "/dev/tty" in p.stderr
        return
    assert p.returncode == 0, p.stderr
    lines = p.stdout.replace("\r\n", "\n").splitlines()
    assert lines[0].startswith("/dev/pts/")
    assert lines[1] == "stdin-is-tty"


def test_exec_without_tty_has_no_terminal(any_rt, sleeper):
    """The control: without -t the same process has no terminal."""
    p = any_rt("exec", sleeper, "sh", "-c", "tty; test -t 0 || echo no-tty")
    lines = p.stdout.splitlines()
    assert lines == ["not a tty", "no-tty"]


def test_console_on_a_readonly_dev(any_rt, bundle, console_socket):
    """A ``ro`` /dev tmpfs still gets /dev/console (made before /dev turns
    read-only, as with runc)."""
    path, srv = console_socket
    next(m for m in bundle.config["mounts"] if m["destination"] == "/dev")["options"].append("ro")
    bundle.config["process"]["terminal"] = True
    bundle.sh("test -c /dev/console && echo console; touch /dev/x 2>/dev/null || echo dev-ro; tty")
    cid = new_id("tty")
    p = any_rt.create(cid, bundle, "--console-socket", path)
    assert p.returncode == 0, p.stderr
    fds, _, _ = receive_master(srv)
    try:
        assert any_rt.start(cid).returncode == 0
        out = read_until_eof(fds[0]).decode().replace("\r\n", "\n")
    finally:
        os.close(fds[0])
    lines = out.splitlines()
    assert lines[:2] == ["console", "dev-ro"], out
    assert lines[2].startswith("/dev/pts/")
    any_rt.wait_status(cid, "stopped")


def test_console_group_is_left_to_devpts(any_rt, bundle, console_socket):
    """Only the uid changes: without ``gid=`` on devpts the pty keeps the
    group of its creator (root), whatever the process's gids."""
    path, srv = console_socket
    next(m for m in bundle.config["mounts"] if m["destination"] == "/dev/pts")["options"] = [
        "nosuid",
        "noexec",
        "newinstance",
        "ptmxmode=0666",
        "mode=0600",
    ]
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5]}
    bundle.sh("stat -c '%u:%g %a' $(tty) /dev/console")
    cid = new_id("tty")
    assert any_rt.create(cid, bundle, "--console-socket", path).returncode == 0
    fds, _, _ = receive_master(srv)
    try:
        assert any_rt.start(cid).returncode == 0
        out = read_until_eof(fds[0]).decode().replace("\r\n", "\n")
    finally:
        os.close(fds[0])
    assert out.splitlines() == ["1000:0 600", "1000:0 600"]
    any_rt.wait_status(cid, "stopped")
