"""The cgroup migration lock is warmed while the stages work
(pyrunc/cgroups/join.py, MigrationLockWarmer; docs/performance.md).

What can be checked without timing: the runtime's writes are migrations
of itself into its own cgroup (nothing moves), they come before the init's
late join and go on while it has not happened, and the init's join still
puts it in the container's cgroups.
"""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from helpers import RUNTIME, runtime_is_pyrunc

pytestmark = pytest.mark.skipif(
    not runtime_is_pyrunc or not shutil.which("strace") or os.geteuid() != 0,
    reason="pyrunc's create, traced with strace, as root",
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


@pytest.mark.parametrize("warmer", [True, False], ids=["warmer", "control-without"])
def test_create_pokes_its_own_cgroup_while_the_stages_work(rt, bundle, warmer):
    """The runtime's process alone is traced (following the stages under
    ptrace changes their timing and can stall them): after forking the
    stages it writes its own pid to its own cgroup.procs, first at once,
    then while it waits; and the init still ends up in its cgroups."""
    bundle.set_args("true").write()
    env = dict(os.environ)
    if not warmer:
        env["PYRUNC_TEST_NO_WARMER"] = "1"
    cid = "warm-" + os.urandom(3).hex()
    rt._track(cid)
    # output to files: the created init keeps its stdio, so a pipe's EOF never comes
    with tempfile.NamedTemporaryFile("r") as trace, tempfile.TemporaryFile("w+") as err:
        p = subprocess.run(
            ["strace", "-qq", "-e", "trace=openat,write,clone,clone3,fork", "-o", trace.name]
            + [RUNTIME, "--root", rt.root, "create", "--bundle", bundle.path, cid],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            timeout=60,
        )
        err.seek(0)
        assert p.returncode == 0, err.read()
        lines = trace.read().splitlines()
    # fd -> the cgroup.procs it was opened on (later openings reuse numbers: the last one before a write counts)
    procs_fd = {}
    pokes = []
    fork = None
    for i, ln in enumerate(lines):
        if m := re.search(r'openat\(.*"(.*)/cgroup.procs", O_WRONLY\|O_CLOEXEC\) = (\d+)$', ln):
            procs_fd[m.group(2)] = m.group(1)
        elif fork is None and re.match(r"(clone|clone3|fork)\(", ln):
            fork = i
        elif (m := re.match(r'write\((\d+), "(\d+)", \d+\)', ln)) and m.group(1) in procs_fd:
            pokes.append((i, procs_fd[m.group(1)], m.group(2)))
    state = rt.state_json(cid)
    assert state["status"] == "created"
    with open(f"/proc/{state['pid']}/cgroup") as f:
        assert any(line.rstrip().endswith(bundle.cgroups_path) for line in f)  # the init is in its cgroups
    if not warmer:
        assert pokes == []  # what the checks below would see without it
        return
    assert pokes, "the runtime never moved itself into its own cgroup"
    assert fork is not None and pokes[0][0] > fork, "poked before forking the stages (it would block them)"
    assert len({pid for _, _, pid in pokes}) == 1  # always the runtime itself, never the init
    assert all(not d.endswith(bundle.cgroups_path) for _, d, _ in pokes)  # its own cgroup, not the container's


@pytest.mark.parametrize("warmer", [True, False], ids=["warmer", "control-without"])
def test_exec_pokes_from_a_thread_from_its_start_until_the_stage_joined(rt, bundle, warmer):
    """exec warms the lock from a thread (cgroups/join.py, ThreadedWarmer):
    the writes are the runtime's own pid to its own cgroup.procs, made by a
    thread of the runtime, the first one before the stage is forked; the
    exec'd process is in the container's cgroups all the same."""
    bundle.set_args("sleep", "60").write()
    cid = "warm-" + os.urandom(3).hex()
    rt.run(cid, bundle, "-d")
    env = dict(os.environ)
    if not warmer:
        env["PYRUNC_TEST_NO_WARMER"] = "1"
    with tempfile.NamedTemporaryFile("r") as trace:
        p = subprocess.run(
            ["strace", "-qq", "-f", "-e", "trace=openat,write,clone,clone3", "-o", trace.name]
            + [RUNTIME, "--root", rt.root, "exec", cid, "cat", "/proc/self/cgroup"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert p.returncode == 0, p.stderr
        lines = trace.read().splitlines()
    assert any(ln.rstrip().endswith(bundle.cgroups_path) for ln in p.stdout.splitlines())  # joined
    main_pid = lines[0].split()[0]
    procs_fd = {}
    pokes = []  # (line, tid, cgroup dir, pid written)
    stage_fork = None
    for i, ln in enumerate(lines):
        tid, _, call = ln.partition(" ")
        call = call.lstrip()
        if tid == main_pid and (m := re.search(r'openat\(.*"(.*)/cgroup.procs", O_WRONLY\|O_CLOEXEC\) = (\d+)$', call)):
            procs_fd[m.group(2)] = m.group(1)
        elif tid == main_pid and stage_fork is None and re.match(r"clone\(", call):
            stage_fork = i  # os.fork (the warmer's thread comes from clone3)
        elif (m := re.match(r'write\((\d+), "(\d+)", \d+\)', call)) and m.group(1) in procs_fd:
            if m.group(2) != "0":  # "0": the stage's own join
                pokes.append((i, tid, procs_fd[m.group(1)], m.group(2)))
    if not warmer:
        assert pokes == []  # what the checks below would see without it
        return
    assert pokes, "exec never moved itself into its own cgroup"
    assert stage_fork is not None and pokes[0][0] < stage_fork, "the first poke came after the stage's fork"
    assert {tid for _, tid, _, _ in pokes} != {main_pid}  # from a thread, not the main one
    assert {pid for _, _, _, pid in pokes} == {main_pid}  # always the runtime itself
    assert all(not d.endswith(bundle.cgroups_path) for _, _, d, _ in pokes)  # its own cgroup
