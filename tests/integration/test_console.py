"""terminal: true with --console-socket: one pty master fd over SCM_RIGHTS, output readable through it."""

import fcntl
import os
import struct
import termios

from helpers import assert_one_error_line, cgroup_dirs, new_id, read_until_eof, receive_master


def test_console_socket_receives_one_master_fd(rt, bundle, console_socket):
    path, srv = console_socket
    cid = new_id()
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["consoleSize"] = {"height": 33, "width": 111}
    bundle.sh("echo hello-tty; stty size; tty; test -t 0 && test -t 1 && test -t 2 && echo all-ttys")
    # containerd accepts only after create returned: the runtime must not wait for the peer
    p = rt.create(cid, bundle, "--console-socket", path)
    assert p.returncode == 0, p.stderr
    fds, payload, cmsgs = receive_master(srv)
    assert cmsgs == 1, "exactly one control message"
    assert len(fds) == 1, f"exactly one fd, got {fds}"
    assert len(payload) < 4096
    master = fds[0]
    try:
        # it is a pty master
        assert os.path.realpath(f"/proc/self/fd/{master}") in ("/dev/ptmx", "/dev/pts/ptmx") or os.readlink(
            f"/proc/self/fd/{master}"
        ).endswith("ptmx")
        rows, cols = struct.unpack("HHHH", fcntl.ioctl(master, termios.TIOCGWINSZ, b"\0" * 8))[:2]
        assert (rows, cols) == (33, 111)
        assert rt.start(cid).returncode == 0
        out = read_until_eof(master).decode(errors="replace").replace("\r\n", "\n")
    finally:
        os.close(master)
    lines = out.splitlines()
    assert lines[0] == "hello-tty"
    assert lines[1] == "33 111"
    assert lines[2].startswith("/dev/pts/")
    assert lines[3] == "all-ttys"
    rt.wait_status(cid, "stopped")


def test_console_input_reaches_container(rt, bundle, console_socket):
    path, srv = console_socket
    cid = new_id()
    bundle.config["process"]["terminal"] = True
    bundle.sh("read line; echo got:$line")
    p = rt.run(cid, bundle, "-d", "--console-socket", path)
    assert p.returncode == 0, p.stderr
    fds, _, _ = receive_master(srv)
    master = fds[0]
    try:
        os.write(master, b"typed\n")
        out = read_until_eof(master).decode(errors="replace")
    finally:
        os.close(master)
    assert "got:typed" in out
    rt.wait_status(cid, "stopped")


def test_console_is_dev_console_and_controlling_tty(rt, bundle, console_socket):
    path, srv = console_socket
    cid = new_id()
    bundle.config["process"]["terminal"] = True
    bundle.sh(
        "test -c /dev/console && echo console-ok; ps -o pid,tty 2>/dev/null | head -2 >/dev/null; "
        "readlink /proc/self/fd/0"
    )
    assert rt.create(cid, bundle, "--console-socket", path).returncode == 0
    fds, _, _ = receive_master(srv)
    try:
        assert rt.start(cid).returncode == 0
        out = read_until_eof(fds[0]).decode(errors="replace").replace("\r\n", "\n").splitlines()
    finally:
        os.close(fds[0])
    assert out[0] == "console-ok"
    assert out[1].startswith("/dev/pts/")


def test_terminal_without_console_socket_detached_fails(rt, bundle):
    cid = new_id()
    bundle.config["process"]["terminal"] = True
    bundle.sh("exit 0")
    p = rt.create(cid, bundle)
    assert_one_error_line(p)
    assert os.listdir(rt.root) == []
    assert not cgroup_dirs(bundle.cgroups_path)


def test_console_socket_without_terminal_fails(rt, bundle, console_socket):
    path, _ = console_socket
    cid = new_id()
    bundle.sh("exit 0")
    p = rt.create(cid, bundle, "--console-socket", path)
    assert_one_error_line(p)
    assert os.listdir(rt.root) == []
    assert not cgroup_dirs(bundle.cgroups_path)


def test_console_socket_nonexistent_path_fails_cleanly(rt, bundle, tmp_path):
    cid = new_id()
    bundle.config["process"]["terminal"] = True
    bundle.sh("exit 0")
    p = rt.create(cid, bundle, "--console-socket", str(tmp_path / "nope.sock"))
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    assert os.listdir(rt.root) == []
    assert not cgroup_dirs(bundle.cgroups_path)
