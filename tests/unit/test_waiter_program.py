"""The waiter (pyrunc/waiter.py, waiter_x86_64.S) as a plain process: no
container, no privilege.  What a created container's init does from its
execve on: wait for `start`, answer, load a last filter, exec the program;
and what it writes when that fails.  The container side is
tests/integration/test_waiter_init.py."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from pyrunc import waiter

pytestmark = pytest.mark.skipif(waiter.program() is None, reason="no waiter for this architecture")


def test_the_bytes_are_the_sources():
    """ELF_X86_64 is what `make waiter` makes of waiter_x86_64.S."""
    if not (shutil.which("as") and shutil.which("ld")):
        pytest.skip("binutils (as, ld) not installed")
    from pyrunc import waiter_build

    assert waiter_build.build() == waiter.ELF_X86_64
    assert len(waiter.ELF_X86_64) <= waiter.DATA_OFFSET


_STARTED = []


@pytest.fixture(autouse=True)
def _no_waiter_left():
    """A waiter a failed test never released is killed (and reaped)."""
    yield
    while _STARTED:
        w = _STARTED.pop()
        try:
            os.kill(w.pid, 9)
            os.waitpid(w.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        shutil.rmtree(w.dir, ignore_errors=True)


class Waiting:
    """A listening socket and a forked process that execs the waiter."""

    def __init__(self, path, args, env=None, seccomp=None, data=None, label=None):
        self.dir = tempfile.mkdtemp(prefix="pyrunc-waiter-")
        self.sock_path = os.path.join(self.dir, "start.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.sock_path)
        self.listener.listen(1)
        self.out = os.path.join(self.dir, "out")
        lfd = self.listener.fileno()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child execs
            try:
                if data is None:
                    # "{pid}" in a label's file: this process, which the waiter will be
                    lab = None if label is None else (label[0].format(pid=os.getpid()), *label[1:])
                    data = waiter.data_block(lfd, path, seccomp, lab)
                fd = waiter.image(data)
                out = os.open(self.out, os.O_WRONLY | os.O_CREAT, 0o600)
                os.dup2(out, 1)
                os.dup2(out, 2)
                for n in map(int, os.listdir("/proc/self/fd")):
                    if n > 2 and n not in (fd, lfd):
                        try:
                            os.set_inheritable(n, False)  # as the init's are
                        except OSError:
                            pass
                os.set_inheritable(lfd, True)
                if seccomp is not None:
                    import ctypes

                    ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # no_new_privs, as the init has it
                os.execve(fd, [waiter.NAME, str(fd), path, *args], env if env is not None else {"A": "1"})
            finally:
                os._exit(99)
        _STARTED.append(self)
        self.listener.close()

    def wait_until_waiting(self):
        for _ in range(200):
            try:
                with open(f"/proc/{self.pid}/comm") as f:
                    if f.read().strip() == "pyrunc:[2:INIT]":
                        return
            except FileNotFoundError:
                break
            time.sleep(0.01)
        raise AssertionError("the waiter did not start")

    def start(self):
        """Connect as `start` does; what the waiter wrote, until EOF."""
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(self.sock_path)
        data = b""
        while chunk := c.recv(4096):
            data += chunk
        c.close()
        return data

    def finish(self):
        _, status = os.waitpid(self.pid, 0)
        _STARTED.remove(self)
        with open(self.out, "rb") as f:
            out = f.read()
        shutil.rmtree(self.dir)
        return os.waitstatus_to_exitcode(status), out


def _sh(script):
    return ["/bin/sh", "-c", script, "sh"]


def test_waits_then_answers_and_execs_with_the_args_and_environment():
    w = Waiting("/bin/sh", _sh('printf "%s|" "$0" "$@"; echo; echo "A=$A"; ls /proc/self/fd'), env={"A": "x y"})
    w.wait_until_waiting()
    with open(f"/proc/{w.pid}/status") as f:
        status = f.read()
    assert "Name:\tpyrunc:[2:INIT]" in status
    if os.geteuid() == 0:
        assert os.readlink(f"/proc/{w.pid}/exe").startswith("/memfd:pyrunc-init")
        # what it holds while it waits: stdio and the listening socket (the
        # memfd with its data was closed)
        assert sorted(os.listdir(f"/proc/{w.pid}/fd"), key=int)[:3] == ["0", "1", "2"]
        assert len(os.listdir(f"/proc/{w.pid}/fd")) == 4
    else:
        # not dumpable: its owner may not look (test_it_is_not_dumpable...)
        with pytest.raises(PermissionError):
            os.readlink(f"/proc/{w.pid}/exe")
    assert w.start() == b"0."
    code, out = w.finish()
    lines = out.decode().splitlines()
    assert code == 0, out
    assert lines[0] == "sh|"
    assert lines[1] == "A=x y"
    assert sorted(lines[2:], key=int) == ["0", "1", "2", "3"]  # 3: ls's own directory fd


def test_it_is_not_dumpable_and_its_program_is_sealed():
    """Unprivileged, its owner can neither ptrace it nor open its exe (not
    dumpable); root sees its exe sealed against writes and resizes."""
    import fcntl

    w = Waiting("/bin/true", ["true"])
    w.wait_until_waiting()
    try:
        if os.geteuid() != 0:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            assert libc.ptrace(16, w.pid, None, None) == -1  # PTRACE_ATTACH
            assert ctypes.get_errno() == 1  # EPERM: not dumpable
            with pytest.raises(PermissionError):
                os.open(f"/proc/{w.pid}/exe", os.O_RDONLY)
        else:
            fd = os.open(f"/proc/{w.pid}/exe", os.O_RDONLY)
            try:
                seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
            finally:
                os.close(fd)
            want = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
            assert seals & want == want, hex(seals)
    finally:
        assert w.start() == b"0."
        assert w.finish()[0] == 0


@pytest.mark.parametrize("mode, words", [(None, "no such file or directory"), (0o644, "permission denied")])
def test_a_failing_execve_is_reported_as_the_python_init_reports_it(mode, words):
    d = tempfile.mkdtemp(prefix="pyrunc-waiter-")
    try:
        path = os.path.join(d, "prog")
        if mode is not None:
            with open(path, "w") as f:
                f.write("#!/bin/sh\n")
            os.chmod(path, mode)
        w = Waiting(path, ["x"])
        w.wait_until_waiting()
        assert w.start() == b"0." + f"exec {path}: {words}".encode()
        code, out = w.finish()
        assert code == 1
        assert out == f"pyrunc: exec {path}: {words}\n".encode()
    finally:
        shutil.rmtree(d)


def test_exec_format_error():
    d = tempfile.mkdtemp(prefix="pyrunc-waiter-")
    try:
        bad = os.path.join(d, "bad")
        with open(bad, "wb") as f:
            f.write(b"\x00\x01\x02not a program")
        os.chmod(bad, 0o755)
        w = Waiting(bad, ["bad"])
        w.wait_until_waiting()
        assert w.start() == b"0." + f"exec {bad}: exec format error".encode()
        assert w.finish() == (1, f"pyrunc: exec {bad}: exec format error\n".encode())
    finally:
        shutil.rmtree(d)


def test_malformed_data_is_refused_before_waiting():
    w = Waiting("/bin/true", ["true"], data=b"XXXX" + bytes(60))
    code, out = w.finish()
    assert code == 1
    assert out == b"pyrunc: init: the waiter's data is missing or malformed\n"


def _compiled(profile):
    from pyrunc import seccomp

    try:
        record = seccomp.compile_filter(profile)
    except Exception as e:  # noqa: BLE001 - no libseccomp here
        pytest.skip(f"cannot compile a filter here: {e}")
    return seccomp.PreparedSeccomp.from_record(record)


def test_the_filter_is_loaded_last():
    """Under no_new_privs the waiter loads the filter after it answered
    `start`: the program runs under it (mkdir refused with EPERM)."""
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    d = tempfile.mkdtemp(prefix="pyrunc-waiter-")
    try:
        target = os.path.join(d, "made")
        w = Waiting(
            "/bin/sh",
            _sh(f'grep -E "^(Seccomp|NoNewPrivs):" /proc/self/status; mkdir {target}'),
            seccomp=_compiled(profile),
        )
        w.wait_until_waiting()
        with open(f"/proc/{w.pid}/status") as f:
            assert "Seccomp:\t0" in f.read()  # not before `start`
        assert w.start() == b"0."
        code, out = w.finish()
        assert code != 0
        assert b"Seccomp:\t2" in out and b"NoNewPrivs:\t1" in out
        assert b"Operation not permitted" in out
        assert not os.path.exists(target)
    finally:
        shutil.rmtree(d)


def test_a_filter_that_cannot_load_is_reported():
    """A filter the kernel refuses (here: flags it does not know, EINVAL)
    ends the waiter with runc-like words on stderr and on the socket, after
    `start` was answered."""

    class Refused:
        bpf = b"\x06\x00\x00\x00\x00\x00\xff\x7f"  # RET ALLOW

        def load_flags(self):
            return 0x40000000

    w = Waiting("/bin/true", ["true"], seccomp=Refused())
    w.wait_until_waiting()
    assert w.start() == b"0.load seccomp filter: invalid argument"
    assert w.finish() == (1, b"pyrunc: load seccomp filter: invalid argument\n")


def test_data_block_layout():
    profile_bpf = b"\x06\x00\x00\x00\x00\x00\xff\x7f"  # RET ALLOW

    class Filter:
        bpf = profile_bpf

        def load_flags(self):
            return 0x4

    data = waiter.data_block(7, "/bin/sh", Filter())
    words = [int.from_bytes(data[i : i + 4], "little") for i in range(4, waiter.HEADER_SIZE, 4)]
    listen, flen, flags, foff, eoff, elen, soff, slen, toff, tcount, size = words[:11]
    assert words[11:] == [0] * 6  # no label
    assert data[:4] == b"PYWT"
    assert (listen, flen, flags, size) == (7, 1, 4, len(data))
    assert data[foff : foff + 8] == profile_bpf
    assert data[eoff : eoff + elen] == b"exec /bin/sh: "
    assert data[soff : soff + slen] == b"load seccomp filter: "
    assert tcount == waiter.ERRNO_COUNT
    texts = data[toff:size].split(b"\0")
    for n in (1, 2, 8, 13, 133):
        assert texts[n].decode() == os.strerror(n).lower()


def test_a_block_too_large_is_refused():
    class Filter:
        bpf = b"\x06\x00\x00\x00\x00\x00\xff\x7f" * 9000

        def load_flags(self):
            return 0

    with pytest.raises(ValueError):
        waiter.data_block(3, "/bin/sh", Filter())


def test_unpacked_program_runs_as_a_file_too():
    """The bytes are a whole program: written to a file, run with a bad
    argument count, it reports malformed data (nothing else to wait for)."""
    d = tempfile.mkdtemp(prefix="pyrunc-waiter-")
    try:
        path = os.path.join(d, "w")
        with open(path, "wb") as f:
            f.write(waiter.program())
        os.chmod(path, 0o700)
        p = subprocess.run([path], capture_output=True, timeout=10)
        assert p.returncode == 1
        assert p.stderr == b"pyrunc: init: the waiter's data is missing or malformed\n"
    finally:
        shutil.rmtree(d)


def test_the_label_is_written_through_a_checked_procfs_before_start_is_answered():
    """The AppArmor exec label's write, with a stand-in file that, as
    attr/apparmor/exec, is mode 0666 (the waiter is not dumpable: its /proc
    files are root's) and that a process may write for itself, and whose
    value survives execve (timerslack_ns): the program sees it."""
    w = Waiting("/bin/sh", _sh("cat /proc/self/timerslack_ns"), label=("{pid}/timerslack_ns", "567000", "label: "))
    w.wait_until_waiting()
    assert w.start() == b"0."
    assert w.finish() == (0, b"567000\n")


@pytest.mark.parametrize(
    "rel, words",
    [
        ("self/timerslack_ns", "too many levels of symbolic links"),  # RESOLVE_NO_SYMLINKS
        ("../proc/{pid}/timerslack_ns", "invalid cross-device link"),  # RESOLVE_BENEATH: EXDEV
        ("{pid}/timerslack_ns", "invalid argument"),  # the kernel refuses the text
    ],
)
def test_a_label_that_cannot_be_written_is_the_error_of_start(rel, words):
    """Nothing but a file beneath /proc, reached without links, is written;
    a failure goes to `start` (no `0.`) and stderr, and the program never
    runs."""
    w = Waiting("/bin/echo", ["echo", "ran"], label=(rel, "not a number", "label f: "))
    w.wait_until_waiting()
    assert w.start() == f"label f: {words}".encode()
    assert w.finish() == (1, f"pyrunc: label f: {words}\n".encode())
