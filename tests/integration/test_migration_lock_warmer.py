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

from helpers import RUNTIME, runtime_is_pyrunc, wait_for

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
def test_create_warms_the_lock_before_the_init_joins(rt, bundle, warmer):
    bundle.set_args("true").write()
    env = dict(os.environ)
    if not warmer:
        env["PYRUNC_TEST_NO_WARMER"] = "1"
    cid = "warm-" + os.urandom(3).hex()
    rt._track(cid)
    with tempfile.NamedTemporaryFile("r") as trace, tempfile.TemporaryFile("w+") as err:
        # strace follows the init too, which waits for start: it is stopped
        # (and detaches) once create has returned
        tracer = subprocess.Popen(
            ["strace", "-f", "-q", "-e", "trace=openat,write,exit_group", "-o", trace.name]
            + [RUNTIME, "--root", rt.root, "create", "--bundle", bundle.path, cid],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
        try:
            lines = wait_for(lambda: _runtime_exited(trace.name), timeout=60)
        finally:
            tracer.kill()  # strace detaches; SIGTERM waits for the init, which waits for start
            tracer.wait(timeout=30)
        err.seek(0)
        assert lines[-1].endswith("exited with 0 +++"), err.read()
    runtime_pid = int(lines[0].split()[0])
    # the runtime's fds on its own cgroup.procs, and its writes of its own pid there
    own_fds = {
        m.group(2)
        for ln in lines
        if ln.startswith(f"{runtime_pid} ") and (m := re.search(r'openat\(.*"(.*)/cgroup.procs".* = (\d+)$', ln))
    }
    pokes = [
        i
        for i, ln in enumerate(lines)
        if ln.startswith(f"{runtime_pid} ")
        and (m := re.match(rf'{runtime_pid} write\((\d+), "{runtime_pid}", \d+\)', ln))
        and m.group(1) in own_fds
    ]
    state = rt.state_json(cid)
    assert state["status"] == "created"
    init = state["pid"]
    # the init's late join (the intermediate of a new cgroup namespace also
    # writes these files, early: not the write the warmer is for)
    joins = [i for i, ln in enumerate(lines) if re.match(rf'{init} write\(\d+, "0", 1\) += 1', ln)]
    assert joins, "the init never joined its cgroups"
    if not warmer:
        assert pokes == []  # what the check below would see without it
        return
    assert pokes, "the runtime never moved itself into its own cgroup"
    assert pokes[0] < joins[0]
    with open(f"/proc/{init}/cgroup") as f:
        assert any(line.rstrip().endswith(bundle.cgroups_path) for line in f)  # the init is in its cgroups


def _runtime_exited(path):
    """The trace up to the runtime's own exit (the first traced process),
    or None while it runs."""
    with open(path) as f:
        lines = f.read().splitlines()
    if not lines:
        return None
    pid = lines[0].split()[0]
    for i, ln in enumerate(lines):
        if ln.startswith(f"{pid} +++ exited with"):
            return lines[: i + 1]
    return None
