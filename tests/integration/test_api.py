"""The library API (pyrunc/runtime.py, docs/api.md) in-process: every
method of Runtime from a pytest fixture, checked from the host (/proc,
cgroup files), and its errors with runc's messages.

create, run and exec refuse a writable interpreter (CVE-2019-5736), and
this pytest runs the host's interpreter as is: so the in-process tests run
in a second pytest started sealed (pyrunc.exeseal.reexec_sealed, as
docs/api.md tells a library caller), by the one test that runs here
unsealed, next to the check that the refusal holds."""

import os
import signal
import subprocess
import sys

import pytest

from helpers import REPO, cgroup_dirs, exec_done, new_id, pid_alive, runtime_is_pyrunc, wait_for
from pyrunc.errors import ContainerNotExist, ContainerNotRunning, InvalidState, PyruncError
from pyrunc import waiter
from pyrunc.exeseal import exe_is_sealed
from pyrunc.runtime import ContainerState, Event, Process, Runtime, Stats

SEALED = exe_is_sealed()
pytestmark = pytest.mark.skipif(not runtime_is_pyrunc, reason="pyrunc's library")
in_process = pytest.mark.skipif(not SEALED, reason="run by test_in_process_under_a_sealed_interpreter")

INNER = (
    "from pyrunc.exeseal import reexec_sealed; reexec_sealed(); import sys, pytest; sys.exit(pytest.main(sys.argv[1:]))"
)


@pytest.mark.skipif(SEALED, reason="this session is sealed: the tests run in it directly")
def test_in_process_under_a_sealed_interpreter(tmp_path):
    log = tmp_path / "inner.log"
    with open(log, "w") as out:
        p = subprocess.run(
            [
                sys.executable,
                "-c",
                INNER,
                __file__,
                "-q",
                "-p",
                "no:cacheprovider",
                "-rfEs",
                f"--basetemp={tmp_path / 'inner'}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            timeout=600,
        )
    text = log.read_text()
    assert p.returncode == 0, text[-8000:]
    summary = text.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, text[-3000:]


@pytest.mark.skipif(SEALED, reason="needs an unsealed interpreter")
@pytest.mark.parametrize("verb", ["create", "run", "exec"])
def test_unsealed_caller_is_refused(tmp_path, verb):
    rt = Runtime(root=str(tmp_path / "state"))
    with pytest.raises(PyruncError, match="writable interpreter"):
        if verb == "exec":
            os.makedirs(tmp_path / "state" / "c1")
            (tmp_path / "state" / "c1" / "state.json").write_text('{"id": "c1", "init_pid": 1}')
            (tmp_path / "state" / "c1" / "config.json").write_text("{}")
            rt.exec("c1", ["true"], process={"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}})
        else:
            getattr(rt, verb)("c1", str(tmp_path))
    if verb != "exec":
        assert not os.path.exists(tmp_path / "state") or os.listdir(tmp_path / "state") == []


# --- in-process, sealed --------------------------------------------------------
@pytest.fixture
def runtime(root):
    """A Runtime on a fresh root; whatever a test leaves is deleted."""
    rt = Runtime(root=root)
    yield rt
    for s in rt.list():
        rt.delete(s.id, force=True)
    assert rt.list() == []


def cgroup_file(bundle, *names):
    for d in cgroup_dirs(bundle.cgroups_path):
        for n in names:
            if os.path.exists(os.path.join(d, n)):
                with open(os.path.join(d, n)) as f:
                    return f.read().strip()
    raise AssertionError(f"none of {names} in {cgroup_dirs(bundle.cgroups_path)}")


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)


def wait_stopped(runtime, cid):
    wait_for(lambda: runtime.state(cid).status == "stopped")


def sleeping(runtime, bundle, cid=None):
    cid = cid or new_id("api")
    bundle.set_args("sleep", "1000")
    bundle.write()
    return cid, runtime.run(cid, bundle.path, detach=True)


@in_process
def test_create_without_a_record(runtime, bundle):
    """record=False (the CLI's call): None back, the same container made."""
    cid = new_id("api")
    bundle.set_args("sleep", "1000")
    bundle.write()
    from pyrunc import cgroups

    before = cgroups.mounts_of_call()
    assert runtime.create(cid, bundle.path, record=False) is None
    # the call read the host's mount table for its cgroup lookups afresh:
    # a long-lived caller sees what was mounted since its last call
    assert cgroups.mounts_of_call() is not before
    s = runtime.state(cid)
    assert (s.id, s.status) == (cid, "created") and pid_alive(s.pid)
    runtime.delete(cid, force=True)
    assert not pid_alive(s.pid)


@in_process
def test_create_start_state_kill_delete(runtime, bundle):
    cid = new_id("api")
    bundle.set_args("sleep", "1000")
    bundle.write()
    s = runtime.create(cid, bundle.path)
    assert isinstance(s, ContainerState)
    assert (s.id, s.status, s.bundle, s.owner) == (cid, "created", bundle.path, "")
    assert s.rootfs == os.path.join(bundle.path, "rootfs") and s.pid > 0
    assert runtime.state(cid) == s
    assert list(s.to_dict()) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"]
    with pytest.raises(AttributeError):
        s.status = "running"
    assert len(proc_status(s.pid)["NSpid"].split()) == 2  # pid 1 of its own pid namespace
    if waiter.program() is not None:
        # this process lives on: the init becomes the waiter once create
        # returned, not once this process exits (pyrunc/waiter.py)
        wait_for(lambda: proc_status(s.pid)["Name"] == waiter.NAME)
    assert runtime.start(cid) is None
    assert runtime.state(cid).status == "running"
    # start returns once only the execve is left, as runc's start does
    wait_for(lambda: exec_done(s.pid, "sleep"))
    with open(f"/proc/{s.pid}/cmdline", "rb") as f:
        assert f.read() == b"sleep\x001000\x00"
    with pytest.raises(InvalidState, match="^cannot start an already running container$"):
        runtime.start(cid)
    with pytest.raises(InvalidState, match="that is not stopped: running$"):
        runtime.delete(cid)
    runtime.kill(cid, signal.SIGKILL)
    wait_stopped(runtime, cid)
    assert runtime.state(cid).pid == 0
    with pytest.raises(ContainerNotRunning) as e:
        runtime.kill(cid, signal.SIGTERM)
    assert str(e.value) == "container not running"
    with pytest.raises(InvalidState, match="^cannot start a container that has stopped$"):
        runtime.start(cid)
    runtime.delete(cid)
    assert not pid_alive(s.pid)
    assert cgroup_dirs(bundle.cgroups_path) == []
    with pytest.raises(ContainerNotExist):
        runtime.state(cid)


@in_process
def test_run_in_the_foreground(runtime, bundle):
    before = signal.getsignal(signal.SIGINT)
    bundle.sh("exit 7")
    bundle.write()
    p = runtime.run(new_id("api"), bundle.path)
    assert p == Process(id=p.id, pid=None, exit_status=7)
    assert runtime.list() == []  # deleted
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back
    bundle.sh("kill -9 $$")  # not pid 1 (which SIGKILL from inside cannot kill)
    bundle.drop_namespace("pid")
    bundle.write()
    cid = new_id("api")
    assert runtime.run(cid, bundle.path, keep=True).exit_status == 137
    assert runtime.state(cid).status == "stopped"
    runtime.delete(cid)


@in_process
def test_exec(runtime, bundle):
    cid, init = sleeping(runtime, bundle)
    assert init.pid == runtime.state(cid).pid and init.exit_status is None
    assert runtime.exec(cid, ["sh", "-c", "exit 3"]).exit_status == 3
    p = runtime.exec(cid, ["sleep", "1000"], env=["GREETING=hi"], user="1000:1000", detach=True)
    assert p.exit_status is None and p.pid > 0
    status = proc_status(p.pid)
    assert status["Uid"].split()[0] == "1000" and status["Gid"].split()[0] == "1000"
    with open(f"/proc/{p.pid}/environ", "rb") as f:
        assert b"GREETING=hi" in f.read().split(b"\0")
    assert os.readlink(f"/proc/{p.pid}/ns/pid") == os.readlink(f"/proc/{init.pid}/ns/pid")
    assert sorted(runtime.ps(cid)) == sorted([init.pid, p.pid])
    assert [n for n in os.listdir(runtime.store.dir(cid)) if n.endswith(".pid")] == []
    q = runtime.exec(cid, process={"args": ["sh", "-c", "exit 5"], "cwd": "/", "user": {"uid": 0, "gid": 0}})
    assert q.exit_status == 5
    runtime.kill(cid, signal.SIGKILL, all=True)
    wait_stopped(runtime, cid)
    with pytest.raises(InvalidState, match="^cannot exec in a stopped container$"):
        runtime.exec(cid, ["true"])


@in_process
def test_pause_resume(runtime, bundle):
    cid, init = sleeping(runtime, bundle)
    runtime.pause(cid)
    assert runtime.state(cid).status == "paused"
    assert cgroup_file(bundle, "freezer.state", "cgroup.freeze") in ("FROZEN", "1")
    with pytest.raises(InvalidState, match="paused"):
        runtime.exec(cid, ["true"])
    runtime.resume(cid)
    assert runtime.state(cid).status == "running"
    assert cgroup_file(bundle, "freezer.state", "cgroup.freeze") in ("THAWED", "0")
    with pytest.raises(InvalidState, match="^container not paused$"):
        runtime.resume(cid)
    runtime.kill(cid, signal.SIGKILL)
    wait_stopped(runtime, cid)
    with pytest.raises(ContainerNotRunning, match="^container not running$"):
        runtime.pause(cid)


@in_process
def test_update_stats_events(runtime, bundle):
    cid, init = sleeping(runtime, bundle)
    merged = runtime.update(cid, {"memory": {"limit": 64 << 20}, "pids": {"limit": 50}})
    assert merged["memory"]["limit"] == 64 << 20 and merged["pids"] == {"limit": 50}
    assert cgroup_file(bundle, "memory.limit_in_bytes", "memory.max") == str(64 << 20)
    assert cgroup_file(bundle, "pids.max") == "50"
    merged = runtime.update(cid, {"memory": {"reservation": 32 << 20}})
    assert merged["memory"] == {**merged["memory"], "limit": 64 << 20, "reservation": 32 << 20}
    stored = runtime.store.load_config(cid).resources.to_dict()
    assert stored["memory"]["limit"] == 64 << 20 and stored["pids"] == {"limit": 50}
    st = runtime.stats(cid)
    assert isinstance(st, Stats) and st.id == cid
    assert st.memory_limit == 64 << 20 and st.pids_current == 1
    assert st.memory_usage > 0 and st.cpu_usage_total >= 0
    events = runtime.events(cid, interval=0.05)
    first = next(events)
    assert first.type == "stats" and first.data["pids"]["current"] == 1
    runtime.kill(cid, signal.SIGKILL)
    wait_stopped(runtime, cid)
    rest = list(events)  # ends once the container stopped
    assert all(isinstance(e, Event) for e in rest) and len(rest) <= 1
    with pytest.raises(ContainerNotRunning, match=f"^container with id {cid} is not running$"):
        runtime.stats(cid)
    with pytest.raises(ContainerNotRunning):
        runtime.events(cid)
    with pytest.raises(ContainerNotRunning):
        runtime.update(cid, {"pids": {"limit": 10}})
    with pytest.raises(PyruncError, match="LinuxResources"):
        runtime.update(cid, [1])


@in_process
def test_list(runtime, bundle, make_bundle):
    a, _ = sleeping(runtime, bundle)
    other = make_bundle("b2")
    other.set_args("sleep", "1000")
    other.write()
    b = new_id("api")
    runtime.create(b, other.path)
    states = {s.id: s for s in runtime.list()}
    assert {k: v.status for k, v in states.items()} == {a: "running", b: "created"}
    assert all(s.owner == "root" for s in states.values())


@in_process
@pytest.mark.parametrize(
    "verb", ["state", "start", "kill", "delete", "pause", "resume", "ps", "stats", "events", "exec", "update"]
)
def test_a_container_that_does_not_exist(runtime, verb):
    args = {"exec": (["true"],), "update": ({"pids": {"limit": 1}},)}.get(verb, ())
    with pytest.raises(ContainerNotExist) as e:
        getattr(runtime, verb)("nope", *args)
    assert str(e.value) == "container does not exist"


@in_process
def test_delete_force(runtime, bundle):
    cid, init = sleeping(runtime, bundle)
    runtime.delete(cid, force=True)
    assert not pid_alive(init.pid)
    assert runtime.list() == []
    runtime.delete("nope", force=True)  # no error, as runc
