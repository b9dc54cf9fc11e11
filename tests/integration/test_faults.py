"""Fault injection: the runtime SIGKILLed at every stage of create, start,
exec and delete (``PYRUNC_TEST_FAULT=<point>``, pyrunc/faults.py), and the
container's own setup stages killed likewise.

After each kill: ``state`` is valid JSON with a consistent status (or a
clean "does not exist"), a pid file is absent or names the container's
init, ``delete --force`` removes everything (state dir, cgroups, mounts,
processes, orphaned runtime forks) and the same id works again.
"""

from __future__ import annotations

import os
import time

import pytest

import helpers
from helpers import new_id
from test_reliability_support import assert_clean, new_tag, state_or_none, tagged_env, tagged_pids

pytestmark = pytest.mark.skipif(not helpers.runtime_is_pyrunc, reason="pyrunc's test fault hook")

KILLED = -9

CREATE_POINTS = [
    "create:state-dir",
    "create:cgroup",
    "create:direct-forked",
    "create:forked",
    "create:init-pid",
    "create:runtime-setup",
    "create:ready",
]
# points inside the container's setup stages: the runtime survives and must
# report the failure as one line and undo the create itself
STAGE_POINTS = ["intermediate:joined", "intermediate:unshared", "init:forked", "init:mounted", "init:pivoted"]


def _faulty(point, tag):
    return tagged_env(tag, PYRUNC_TEST_FAULT=point)


def _check_pid_file(path, state):
    """A pid file is either absent or names the container's live init."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        text = f.read()
    assert text.strip().isdigit(), f"pid file holds {text!r}"
    pid = int(text)
    assert state is not None and state["pid"] == pid, f"pid file {pid} but state {state}"
    assert helpers.pid_alive(pid)


def _works_again(rt, cid, bundle):
    bundle.sh("echo again > /shared/out")
    p = rt.create(cid, bundle)
    assert p.returncode == 0, p.stderr
    p = rt.start(cid)
    if p.returncode != 0:
        d = os.path.join(rt.root, cid)
        files = {n: open(os.path.join(d, n), "rb").read()[:300] for n in os.listdir(d) if n.endswith(".json")}
        raise AssertionError(f"start after recreate: {p.stderr!r} {files}")
    rt.wait_status(cid, "stopped")
    with open(os.path.join(bundle.shared, "out")) as f:
        assert f.read() == "again\n"
    assert rt.delete(cid).returncode == 0
    assert_clean(rt, cid, bundle)


def _delete_force_cleans(rt, cid, bundle, tag):
    p = rt.delete(cid, force=True)
    assert p.returncode == 0, p.stderr
    assert_clean(rt, cid, bundle, tag)


@pytest.mark.parametrize("point", CREATE_POINTS)
def test_killed_during_create(rt, bundle, tmp_path, point):
    cid, tag = new_id("fc"), new_tag()
    pid_file = str(tmp_path / "pid")
    bundle.set_args("sleep", "100")
    p = rt.create(cid, bundle, "--pid-file", pid_file, env=_faulty(point, tag))
    if point == "create:direct-forked" and p.returncode == 0:
        _delete_force_cleans(rt, cid, bundle, tag)
        pytest.skip("this host's create keeps the intermediate stage (creation._init_forked_directly)")
    assert p.returncode == KILLED, f"fault point {point} not reached: rc={p.returncode} {p.stderr}"
    state = state_or_none(rt, cid)
    if state is not None:
        assert state["id"] == cid
        assert state["status"] in ("creating", "created", "stopped"), state
        if state["status"] == "created":
            assert helpers.pid_alive(state["pid"])
    _check_pid_file(pid_file, state)
    _delete_force_cleans(rt, cid, bundle, tag)
    _works_again(rt, cid, bundle)


def test_killed_at_ready_leaves_a_startable_container(rt, bundle):
    """Killed after the init is ready: the state already names the init, so
    the container is a normal created container."""
    cid, tag = new_id("fr"), new_tag()
    bundle.sh("echo started > /shared/out")
    p = rt.create(cid, bundle, env=_faulty("create:ready", tag))
    assert p.returncode == KILLED
    assert rt.status(cid) == "created"
    assert rt.start(cid).returncode == 0
    rt.wait_status(cid, "stopped")
    with open(os.path.join(bundle.shared, "out")) as f:
        assert f.read() == "started\n"
    _delete_force_cleans(rt, cid, bundle, tag)


@pytest.mark.parametrize("point", STAGE_POINTS)
def test_setup_stage_killed(rt, bundle, tmp_path, point):
    cid, tag = new_id("fs"), new_tag()
    pid_file = str(tmp_path / "pid")
    bundle.set_args("sleep", "100")
    p = rt.create(cid, bundle, "--pid-file", pid_file, env=_faulty(point, tag))
    helpers.assert_one_error_line(p)
    assert not os.path.exists(pid_file)
    assert state_or_none(rt, cid) is None
    assert_clean(rt, cid, bundle, tag)
    _works_again(rt, cid, bundle)


def _created(rt, cid, bundle, *args):
    bundle.set_args(*args)
    p = rt.create(cid, bundle)
    assert p.returncode == 0, p.stderr
    return rt.state_json(cid)


def test_killed_during_start(rt, bundle):
    cid, tag = new_id("fst"), new_tag()
    _created(rt, cid, bundle, "sleep", "100")
    p = rt.start(cid, env=_faulty("start:connected", tag))
    assert p.returncode == KILLED
    # The init may or may not have exec'd; either way the status says so.
    time.sleep(0.3)
    state = state_or_none(rt, cid)
    assert state is not None
    init_cmd = open(f"/proc/{state['pid']}/cmdline", "rb").read() if helpers.pid_alive(state["pid"]) else b""
    if init_cmd.startswith(b"sleep"):
        assert state["status"] == "running", state
    else:
        assert state["status"] == "stopped", (state, init_cmd)
    p = rt.start(cid)
    helpers.assert_one_error_line(p)
    _delete_force_cleans(rt, cid, bundle, tag)
    _works_again(rt, cid, bundle)


def test_killed_during_exec(rt, bundle, tmp_path):
    cid, tag = new_id("fe"), new_tag()
    _created(rt, cid, bundle, "sleep", "100")
    assert rt.start(cid).returncode == 0
    pid_file = str(tmp_path / "exec.pid")
    p = rt("exec", "-d", "--pid-file", pid_file, cid, "sleep", "50", env=_faulty("exec:forked", tag))
    assert p.returncode == KILLED
    assert not os.path.exists(pid_file)
    # the orphaned exec setup process notices and exits by itself
    helpers.wait_for(lambda: not tagged_pids(tag), timeout=5)
    assert rt.status(cid) == "running"
    p = rt("exec", cid, "true")
    assert p.returncode == 0, p.stderr
    _delete_force_cleans(rt, cid, bundle, tag)
    _works_again(rt, cid, bundle)


@pytest.mark.parametrize("point", ["delete:killed", "delete:cgroup-gone"])
def test_killed_during_delete(rt, bundle, point):
    cid, tag = new_id("fd"), new_tag()
    _created(rt, cid, bundle, "sleep", "100")
    assert rt.start(cid).returncode == 0
    p = rt.delete(cid, force=True, env=_faulty(point, tag))
    assert p.returncode == KILLED
    state = state_or_none(rt, cid)
    assert state is not None and state["status"] == "stopped", state
    _delete_force_cleans(rt, cid, bundle, tag)
    _works_again(rt, cid, bundle)


@pytest.mark.parametrize("point", ["create:init-pid", "create:ready", "start:connected"])
def test_killed_during_run(rt, bundle, point):
    cid, tag = new_id("frun"), new_tag()
    bundle.set_args("sleep", "100")
    p = rt.run(cid, bundle, "-d", env=_faulty(point, tag))
    assert p.returncode == KILLED
    state = state_or_none(rt, cid)
    assert state is None or state["status"] in ("creating", "created", "running", "stopped")
    _delete_force_cleans(rt, cid, bundle, tag)
    _works_again(rt, cid, bundle)


def test_pid_file_is_replaced_atomically(rt, bundle, tmp_path):
    """A stale pid file from an earlier container is replaced whole by create
    (never truncated or half-written), and not touched by a failed create."""
    pid_file = tmp_path / "pid"
    pid_file.write_text("999999")
    cid = new_id("fp")
    bundle.config["process"]["args"] = ["/does-not-exist"]
    p = rt.create(cid, bundle, "--pid-file", str(pid_file))
    helpers.assert_one_error_line(p)
    assert pid_file.read_text() == "999999"
    bundle.set_args("sleep", "100")
    p = rt.create(cid, bundle, "--pid-file", str(pid_file))
    assert p.returncode == 0, p.stderr
    st = rt.state_json(cid)
    assert pid_file.read_text() == str(st["pid"])
    assert not [n for n in os.listdir(tmp_path) if n.startswith("pid.")]
