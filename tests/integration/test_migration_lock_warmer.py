"""The cgroup migration lock is warmed from a thread while create and exec
work (pyrunc/cgroups/join.py, MigrationLockWarmer and ThreadedWarmer;
docs/performance.md).

What can be checked without timing: the writes are migrations of the
runtime into its own cgroup (nothing moves), made by a thread, starting
before the stages are forked; the container's processes still end up in
the container's cgroups.
"""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from helpers import run_traced, runtime_is_pyrunc

pytestmark = pytest.mark.skipif(
    not runtime_is_pyrunc or not shutil.which("strace") or os.geteuid() != 0,
    reason="pyrunc's create and exec, traced with strace, as root",
)


def test_own_cgroup_migration_changes_nothing():
    from pyrunc.cgroups.join import MigrationLockWarmer
    from pyrunc.linux import procfs

    before = sorted(procfs.cgroups())
    mount = next(m["mountpoint"] for m in procfs.mounts() if m["fstype"] in ("cgroup", "cgroup2"))
    # a container's cgroup dir in that hierarchy (need not exist): the warmer
    # opens this process's own cgroup.procs in the same hierarchy
    warmer = MigrationLockWarmer([mount.rstrip("/") + "/pyrunc-test-any"])
    try:
        assert warmer.fd >= 0
        for _ in range(3):
            warmer.poke()
    finally:
        warmer.close()
    assert warmer.fd == -1
    assert sorted(procfs.cgroups()) == before


def test_threaded_warmer_ends_and_leaves_nothing():
    """The thread pokes, ends at stop() (its fd closed), the switch interval
    comes back, and this process stays in its cgroups."""
    import sys
    import time

    from pyrunc.cgroups.join import ThreadedWarmer
    from pyrunc.linux import procfs

    def procs_fds():
        out = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}").endswith("/cgroup.procs"):
                    out.append(fd)
            except OSError:
                pass
        return out

    before, interval = sorted(procfs.cgroups()), sys.getswitchinterval()
    warmer = ThreadedWarmer()
    assert len(procs_fds()) == 1  # the thread's
    time.sleep(0.03)
    warmer.stop()
    assert sys.getswitchinterval() == interval
    deadline = time.monotonic() + 2
    while procs_fds() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert procs_fds() == []
    assert sorted(procfs.cgroups()) == before
    disabled = ThreadedWarmer(enabled=False)  # PYRUNC_TEST_NO_WARMER: no fd, no thread, no interval change
    assert procs_fds() == [] and sys.getswitchinterval() == interval
    disabled.stop()
    assert sys.getswitchinterval() == interval


def test_overlapping_warmers_give_the_interval_back_once_both_stopped():
    """A library caller may create in several threads at once: the shorter
    switch interval lasts while any warmer runs, the caller's comes back
    after the last."""
    import sys

    from pyrunc.cgroups.join import ThreadedWarmer

    interval = sys.getswitchinterval()
    a = ThreadedWarmer()
    b = ThreadedWarmer()
    assert sys.getswitchinterval() < interval
    a.stop()
    assert sys.getswitchinterval() < interval
    a.stop()  # twice changes nothing
    b.stop()
    assert sys.getswitchinterval() == interval


def _traced(rt, args, warmer):
    """Run the runtime under strace -f (its threads and children); returns
    (stdout, trace lines)."""
    env = dict(os.environ)
    if not warmer:
        env["PYRUNC_TEST_NO_WARMER"] = "1"
    return run_traced(rt, ["-f", "-e", "trace=openat,write,clone,clone3"], *args, env=env)


def _pokes(lines):
    """(index of the main thread's first fork, [(line, tid, cgroup dir, pid
    written)]) from the trace: writes of a pid to a cgroup.procs opened by
    the runtime's main thread ("0", a stage's own join, is not a poke)."""
    main_pid = lines[0].split()[0]
    procs_fd = {}
    pokes = []
    fork = None
    for i, ln in enumerate(lines):
        tid, _, call = ln.partition(" ")
        call = call.lstrip()
        if tid == main_pid and (m := re.search(r'openat\(.*"(.*)/cgroup.procs", O_WRONLY\|O_CLOEXEC\) = (\d+)$', call)):
            procs_fd[m.group(2)] = m.group(1)
        elif tid == main_pid and fork is None and re.match(r"clone\(", call):
            fork = i  # os.fork (the warmer's thread comes from clone3)
        elif (m := re.match(r'write\((\d+), "(\d+)", \d+(\)| <unfinished)', call)) and m.group(1) in procs_fd:
            # (a write that another traced call interrupted is split in two
            # lines: "<unfinished ...>" where it started)
            if m.group(2) != "0":
                pokes.append((i, tid, procs_fd[m.group(1)], m.group(2)))
    return main_pid, fork, pokes


def _check_pokes(lines, cgroups_path):
    main_pid, fork, pokes = _pokes(lines)
    assert pokes, "the runtime never moved itself into its own cgroup"
    assert fork is not None and pokes[0][0] < fork, "the first poke came after the stage's fork"
    assert {tid for _, tid, _, _ in pokes} != {main_pid}  # from a thread, not the main one
    assert {pid for _, _, _, pid in pokes} == {main_pid}  # always the runtime itself, never a stage
    assert all(not d.endswith(cgroups_path) for _, _, d, _ in pokes)  # its own cgroup, not the container's


@pytest.mark.parametrize("warmer", [True, False], ids=["warmer", "control-without"])
def test_create_pokes_from_a_thread_from_its_start(rt, bundle, warmer):
    """create warms the lock from a thread from its start until the init
    has joined (cgroups/join.py, ThreadedWarmer): writes of the runtime's
    own pid to its own cgroup.procs, made by a thread, the first one before
    the stages are forked; the container's process is in its cgroups all
    the same.  Traced through ``run`` (create, start, wait, delete in one
    process): strace -f returns only once every traced process has ended,
    and a created init waits."""
    bundle.set_args("cat", "/proc/self/cgroup").write()
    cid = "warm-" + os.urandom(3).hex()
    rt._track(cid)
    out, lines = _traced(rt, ["run", "--bundle", bundle.path, cid], warmer)
    assert any(ln.rstrip().endswith(bundle.cgroups_path) for ln in out.splitlines())  # joined
    if not warmer:
        assert _pokes(lines)[2] == []  # what the checks would see without it
        return
    _check_pokes(lines, bundle.cgroups_path)


@pytest.mark.parametrize("warmer", [True, False], ids=["warmer", "control-without"])
def test_exec_pokes_from_a_thread_from_its_start(rt, bundle, warmer):
    """The same for exec, until its stage has joined; the exec'd process is
    in the container's cgroups."""
    bundle.set_args("sleep", "60").write()
    cid = "warm-" + os.urandom(3).hex()
    rt.run(cid, bundle, "-d")
    out, lines = _traced(rt, ["exec", cid, "cat", "/proc/self/cgroup"], warmer)
    assert any(ln.rstrip().endswith(bundle.cgroups_path) for ln in out.splitlines())  # joined
    if not warmer:
        assert _pokes(lines)[2] == []
        return
    _check_pokes(lines, bundle.cgroups_path)


def test_the_warmer_runs_before_os_is_imported(rt, bundle):
    """create's first poke is not held back by `import os` (~1.2 ms): the
    modules on the way to the warmer (cli, runtime, container, exeseal,
    cgroups/join) take os's calls from pyrunc/lightos.py.  A finder placed
    first on sys.meta_path notes how many threads of _thread run when `os`
    is first asked for ("None": never, as now, where the rest of create
    does the same; test_startup_imports.py holds that); the control is the
    same probe asking for `os` at the start, before any thread."""
    from helpers import REPO

    with open(rt.path) as f:
        interpreter = f.readline()[2:].split()[0]  # the launcher's sealed interpreter
    bundle.set_args("true").write()
    cid = "warm-" + os.urandom(3).hex()
    rt._track(cid)
    probe = f"""
import sys, _thread
sys.path.insert(0, {REPO!r})
class Probe:
    threads = None
    def find_spec(self, name, path=None, target=None):
        if name == "os" and Probe.threads is None:
            Probe.threads = _thread._count()
        return None
sys.meta_path.insert(0, Probe())
if sys.argv[1] == "control":
    import os
    print(Probe.threads)
else:
    from pyrunc.cli import main
    rc = main(["--root", {rt.root!r}, "create", "--bundle", {bundle.path!r}, {cid!r}])
    print(Probe.threads if rc == 0 else "create failed")
"""
    outs = {}
    for mode in ("control", "create"):
        # files, not pipes: the created init keeps its stdio
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run([interpreter, "-IS", "-c", probe, mode], stdout=out, stderr=err, timeout=60)
            out.seek(0)
            err.seek(0)
            assert p.returncode == 0, err.read()
            outs[mode] = out.read().strip()
    assert outs["control"] == "0" and outs["create"] in ("None", "1"), outs


def test_stop_and_wait_leaves_one_thread():
    """stop(wait=True) (cgroups/join.py, before a clone into a cgroup):
    returns once the thread is gone from /proc/self/task, 200 times over,
    with the interpreter's sentinel of the thread held by the thread until
    its state is deleted (an unheld sentinel raced with that deletion:
    "release unlocked lock", about one run in five of the v2 suite)."""
    import time

    from pyrunc.cgroups.join import ThreadedWarmer

    for _ in range(200):
        warmer = ThreadedWarmer()
        time.sleep(0.001)
        if warmer._sentinel is not None:  # (CPython <= 3.12)
            assert warmer._sentinel.locked()  # held while the thread lives
        warmer.stop(wait=True)
        assert not warmer.running()
        assert not os.path.exists(warmer._thread_task)
        assert len(os.listdir("/proc/self/task")) == 1
