"""A fork born in a cgroup v2 directory (pyrunc/linux/syscalls.py,
fork_into_cgroup; pyrunc/cgroups/join.py, fork_into): clone3 with
CLONE_INTO_CGROUP from the interpreter, with os.fork's before and after
steps around it.

Runs where a cgroup2 hierarchy is mounted (the hybrid host's
/sys/fs/cgroup/unified under the sandbox, or /sys/fs/cgroup in the v2 VM),
as root, in a private cgroup made and removed by each test.  What is
checked: the child is in the cgroup from its first instruction; glibc's
record of its thread id is its own (a fork and a thread in it work); a
process with another thread gets EBUSY and no child, and a lock warmer
stopped with wait=True leaves it single-threaded, so that the fork goes
ahead, many times over, with the GIL contended just before (the case that
hung a child before the check existed).
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
import uuid

import pytest

from helpers import in_cgroup_sandbox


def _cgroup2_mount() -> str | None:
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[fields.index("-") + 1] == "cgroup2":
                return fields[4]
    return None


MOUNT = _cgroup2_mount()

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="makes a cgroup: root"),
    pytest.mark.skipif(MOUNT is None, reason="no cgroup2 hierarchy mounted"),
    pytest.mark.skipif(not in_cgroup_sandbox(), reason="run inside ../shared/tools/cgroup-sandbox or the v2 VM"),
]


@pytest.fixture
def cgroup_dir():
    """A fresh leaf of the cgroup2 hierarchy, below this process's own cgroup
    (the sandbox's root); removed after the test, its processes killed."""
    d = os.path.join(MOUNT, "pyrunc-test-birth-" + uuid.uuid4().hex[:8])
    os.mkdir(d)
    try:
        yield d
    finally:
        with open(os.path.join(d, "cgroup.procs")) as f:
            for pid in f.read().split():
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        while True:
            try:
                os.rmdir(d)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)


def _dir_fd(d):
    return os.open(d, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def _wait_ok(pid):
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _v2_line():
    with open("/proc/self/cgroup") as f:
        return next(line.strip() for line in f if line.startswith("0::"))


def test_the_child_starts_in_the_cgroup_and_is_a_whole_process(cgroup_dir):
    from pyrunc.linux import syscalls as sc

    fd = _dir_fd(cgroup_dir)
    r, w = os.pipe()
    try:
        pid = sc.fork_into_cgroup(fd)
        if pid == 0:
            try:
                os.close(r)
                report = [_v2_line(), str(bool(sc._own_tid_field()))]
                inner = os.fork()  # glibc's fork from a process clone3 made
                if inner == 0:
                    os._exit(0 if sc._own_tid_field() else 3)
                report.append(str(_wait_ok(inner)))
                import _thread

                done = _thread.allocate_lock()
                done.acquire()
                _thread.start_new_thread(done.release, ())
                report.append(str(done.acquire(timeout=5)))
                os.write(w, " ".join(report).encode())
            finally:
                os._exit(0)
        os.close(w)
        w = -1
        out = os.read(r, 4096).decode().split()
        assert _wait_ok(pid) == 0
    finally:
        os.close(fd)
        os.close(r)
        if w >= 0:
            os.close(w)
    rel = "/" + os.path.relpath(cgroup_dir, MOUNT)
    assert out == [f"0::{rel}", "True", "0", "True"]
    with open(os.path.join(cgroup_dir, "cgroup.procs")) as f:
        assert f.read() == ""  # ended, and nothing else went there


@contextlib.contextmanager
def _another_thread():
    """A second thread of this process, waiting on a lock, for the block."""
    import _thread

    stop = _thread.allocate_lock()
    stop.acquire()
    gone = _thread.allocate_lock()
    gone.acquire()

    def other():
        stop.acquire()
        gone.release()

    _thread.start_new_thread(other, ())
    try:
        yield
    finally:
        stop.release()
        gone.acquire()


def test_refused_with_another_thread_and_no_child_made(cgroup_dir):
    from pyrunc.linux import syscalls as sc

    fd = _dir_fd(cgroup_dir)
    try:
        with _another_thread(), pytest.raises(OSError) as e:
            sc.fork_into_cgroup(fd)
        assert e.value.errno == errno.EBUSY
        with pytest.raises(ChildProcessError):
            os.waitpid(-1, os.WNOHANG)
    finally:
        os.close(fd)


def test_a_cgroup_v1_directory_is_refused_and_no_child_made():
    from pyrunc.linux import syscalls as sc

    with open("/proc/self/mountinfo") as f:
        v1 = next((ln.split()[4] for ln in f if ln.split()[ln.split().index("-") + 1] == "cgroup"), None)
    if v1 is None:
        pytest.skip("no cgroup v1 hierarchy here")
    fd = _dir_fd(v1)
    try:
        with pytest.raises(OSError):
            sc.fork_into_cgroup(fd)
        with pytest.raises(ChildProcessError):
            os.waitpid(-1, os.WNOHANG)
    finally:
        os.close(fd)


def test_after_a_warmer_stopped_with_wait_forks_go_ahead(cgroup_dir):
    """The runtime's own sequence: a ThreadedWarmer poking from a thread
    (with the shortened switch interval, so that it asks for the GIL
    often), stopped with wait=True by join.fork_into, then the clone.  100
    times; every child must run to its exit (without the wait and the
    single-thread check, 99 of 100 hung in their first bytecode, waiting
    for a thread switch in drop_gil)."""
    from pyrunc.cgroups.join import ThreadedWarmer, fork_into
    from pyrunc.cgroups.v2 import V2Manager

    import sys

    mgr = V2Manager("/" + os.path.relpath(cgroup_dir, MOUNT), "birth", cgroup_dir)
    interval = sys.getswitchinterval()
    # A waiting thread asks for the GIL after one switch interval: at 1 us
    # it asks during every clone, as on a slow machine (the emulated VM)
    # it asked during about one in three at the warmer's 0.5 ms.
    sys.setswitchinterval(1e-6)
    try:
        for i in range(100):
            warmer = ThreadedWarmer()
            x = 0
            for _ in range(5000):  # Python work while the thread wants the GIL
                x += 1
            pid, born = fork_into(mgr, warmer)
            if pid == 0:
                os._exit(0)
            assert born, i
            assert not os.path.exists(warmer._thread_task)  # the thread was gone before the clone
            deadline = time.monotonic() + 10
            while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    pytest.fail(f"child {i} hung")
                time.sleep(0.001)
            assert os.waitstatus_to_exitcode(done[1]) == 0
    finally:
        sys.setswitchinterval(interval)


def test_a_callers_own_thread_means_fork_and_migrate_with_the_warmer_kept(cgroup_dir):
    """A library caller running threads of its own: fork_into does not try
    the clone, forks, and leaves the warmer running for the migration that
    the caller then makes (apply)."""
    from pyrunc.cgroups.join import ThreadedWarmer, fork_into
    from pyrunc.cgroups.v2 import V2Manager

    mgr = V2Manager("/" + os.path.relpath(cgroup_dir, MOUNT), "birth", cgroup_dir)
    with _another_thread():
        warmer = ThreadedWarmer()
        try:
            pid, born = fork_into(mgr, warmer)
            if pid == 0:
                os._exit(0)
            assert not born
            assert warmer.running() and os.path.exists(warmer._thread_task)
            mgr.apply(pid)
            assert _wait_ok(pid) == 0
        finally:
            warmer.stop(wait=True)
    assert not warmer.running()
