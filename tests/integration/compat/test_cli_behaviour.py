"""Small CLI behaviours callers rely on, against runc (issue 17 item 7).

* ``kill ID 0``: signal 0 is the existence check of kill(2), accepted.
* ``list`` before anything was ever created under ``--root``: an empty list.
* ``exec`` failures exit 255 (runc's ``exec failed``), not 1: before the
  process runs nothing else tells a caller that the process never ran; a
  process that ran exits with its own status.
* ``ps`` of a stopped container: an empty listing, exit 0.
* create/run into a cgroup that another container paused: refused at once
  (the container's setup would stop at its first step and hang).
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from helpers import Runtime, TIMEOUT, cgroup_dirs, frozen_parent_cgroup, new_id, pid_alive, started


def error_line(p) -> str:
    assert "Traceback" not in p.stderr, p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, p.stderr
    return lines[0]


def compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


# -- kill 0 -----------------------------------------------------------------------


def test_kill_signal_0_checks_that_the_container_runs(any_rt, bundle):
    cid, init = started(any_rt, bundle, "sleep", "1000")
    for extra in ((), ("--all",)):
        p = any_rt("kill", *extra, cid, "0")
        assert p.returncode == 0, (extra, p.stderr)
    assert any_rt.status(cid) == "running" and pid_alive(init)  # nothing was delivered
    assert any_rt.kill(cid, "KILL").returncode == 0
    any_rt.wait_status(cid, "stopped")
    p = any_rt("kill", cid, "0")
    assert p.returncode == 1
    assert "not running" in error_line(p)
    # --all signals what is left in the cgroup: nothing, which is no error
    assert any_rt("kill", "--all", cid, "0").returncode == 0
    p = any_rt("kill", new_id("none"), "0")
    assert p.returncode == 1 and "does not exist" in error_line(p)


# -- list -------------------------------------------------------------------------


def test_list_before_the_state_root_exists_is_empty(any_rt, tmp_path):
    never = str(tmp_path / "never-created")
    rt = Runtime(never, path=any_rt.path)
    try:
        p = rt.list()
        assert p.returncode == 0, p.stderr
        assert p.stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        p = rt.list("--format", "json")
        assert (p.returncode, p.stdout) == (0, "null\n"), p.stderr
        p = rt.list("-q")
        assert (p.returncode, p.stdout) == (0, ""), p.stderr
        if any_rt.name == "pyrunc":
            # runc 1.1 creates the root as a side effect (1.2 fails instead);
            # listing creates nothing in pyrunc
            assert not os.path.exists(never)
    finally:
        shutil.rmtree(never, ignore_errors=True)


def test_list_layout_is_runcs(any_rt, bundle):
    """Text: runc's tabwriter columns (at least 12 wide, 3 spaces more than
    the longest cell); json: one compact line."""
    cid, _ = started(any_rt, bundle, "sleep", "1000")
    lines = any_rt.list().stdout.splitlines()
    head = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    cells = lines[1].split()
    assert cells[0] == cid and len(cells) == 6, lines
    widths = [max(12, len(h) + 3, len(c) + 3) for h, c in zip(head[:5], cells[:5])]

    def layout(row):
        return "".join(v.ljust(w) for v, w in zip(row[:5], widths)) + row[5]

    assert lines == [layout(head), layout(cells)]
    p = any_rt.list("--format", "json")
    assert p.stdout.count("\n") == 1 and ": " not in p.stdout and ", " not in p.stdout
    assert [s["id"] for s in json.loads(p.stdout)] == [cid]


# -- exec failures ---------------------------------------------------------------


@pytest.mark.parametrize(
    "flags, command, says",
    [
        ([], ["/no/such/binary"], "/no/such/binary"),
        ([], ["no-such-command"], "executable file not found"),
        (["--cwd", "/no/such/dir"], ["true"], "/no/such/dir"),
        (["--detach"], ["no-such-command"], "executable file not found"),
        (["--process", "/no/such/process.json"], [], "/no/such/process.json"),
        ([], [], None),  # no command at all
    ],
    ids=["missing-path", "not-in-PATH", "missing-cwd", "detached", "process-file", "no-args"],
)
def test_exec_failures_exit_255_and_start_nothing(any_rt, bundle, flags, command, says):
    cid, init = started(any_rt, bundle, "sleep", "1000")
    p = any_rt("exec", *flags, cid, *command)
    assert p.returncode == 255, (p.returncode, p.stderr)
    line = error_line(p)
    if says:
        assert says in line, line
    assert json.loads(any_rt("ps", "--format", "json", cid).stdout) == [init]


def test_exec_into_missing_paused_or_stopped_containers_exits_255(any_rt, bundle):
    p = any_rt("exec", new_id("none"), "true")
    assert p.returncode == 255 and "does not exist" in error_line(p)
    cid, init = started(any_rt, bundle, "sleep", "1000")
    assert any_rt("pause", cid).returncode == 0
    try:
        p = any_rt("exec", cid, "true")
        assert p.returncode == 255 and "paused" in error_line(p)
    finally:
        assert any_rt("resume", cid).returncode == 0
    assert any_rt.kill(cid, "KILL").returncode == 0
    any_rt.wait_status(cid, "stopped")
    for extra in ((), ("--detach",)):
        p = any_rt("exec", *extra, cid, "true")
        assert p.returncode == 255 and "stopped" in error_line(p), p.stderr


def test_exec_exit_status_is_the_process_s_and_usage_errors_stay_1(any_rt, bundle):
    cid, _ = started(any_rt, bundle, "sleep", "1000")
    assert any_rt("exec", cid, "sh", "-c", "exit 7").returncode == 7
    assert any_rt("exec", cid, "sh", "-c", "exit 255").returncode == 255
    p = any_rt("exec")  # no container id: the command line is wrong, exit 1
    assert p.returncode == 1 and "Traceback" not in p.stderr


# -- ps ---------------------------------------------------------------------------


def test_ps_of_running_and_stopped_containers(any_rt, bundle):
    cid, init = started(any_rt, bundle, "sleep", "1000")
    p = any_rt("ps", "--format", "json", cid)
    assert (p.returncode, p.stdout) == (0, compact([init]) + "\n"), p.stderr
    assert any_rt.kill(cid, "KILL").returncode == 0
    any_rt.wait_status(cid, "stopped")
    p = any_rt("ps", "--format", "json", cid)
    assert (p.returncode, p.stdout) == (0, "null\n"), p.stderr
    for extra in ((), ("-ef",)):
        p = any_rt("ps", cid, *extra)
        assert p.returncode == 0, p.stderr
        lines = p.stdout.splitlines()
        assert len(lines) == 1 and "PID" in lines[0].split(), p.stdout  # the header alone
    p = any_rt("ps", new_id("none"))
    assert p.returncode == 1 and "does not exist" in error_line(p)


# -- a frozen cgroup -------------------------------------------------------------


@pytest.mark.parametrize("verb", ["create", "run"])
def test_create_in_a_cgroup_paused_by_another_container_is_refused(any_rt, bundle, make_bundle, verb):
    first, init = started(any_rt, bundle, "sleep", "1000")
    other = make_bundle("other", args=("sleep", "1000"))
    other.config["linux"]["cgroupsPath"] = bundle.cgroups_path  # the same cgroup
    assert any_rt("pause", first).returncode == 0
    try:
        cid = new_id("frozen")
        extra = ("--detach",) if verb == "run" else ()
        # a hang shows as subprocess.TimeoutExpired; the refusal is immediate
        p = getattr(any_rt, verb)(cid, other, *extra, timeout=TIMEOUT // 2)
        assert p.returncode == 1, p.stderr
        lines = [line for line in p.stderr.splitlines() if line.strip()]
        if any_rt.name == "runc":
            # runc 1.1 warns twice about the non-empty cgroup before its error
            lines = lines[-1:]
        assert len(lines) == 1 and "unexpectedly frozen" in lines[0], p.stderr
        assert any_rt.state(cid).returncode != 0  # nothing of it is left
        # the other container was not touched: still paused, still there
        assert any_rt.status(first) == "paused" and pid_alive(init)
    finally:
        assert any_rt("resume", first).returncode == 0
    assert any_rt.status(first) == "running"


def test_create_under_a_frozen_parent_cgroup_is_refused(any_rt, bundle):
    """A pod-style parent frozen by someone else: the new level is frozen
    too.  pyrunc refuses at once and removes the level it made."""
    if any_rt.name == "runc":
        pytest.skip("runc 1.1.5 hangs in create until the parent is thawed (tried by hand)")
    cid = new_id("frozen")
    with frozen_parent_cgroup() as parent:
        try:
            bundle.config["linux"]["cgroupsPath"] = parent + "/ctr"
            bundle.set_args("sleep", "1000")
            p = any_rt.create(cid, bundle, timeout=TIMEOUT // 2)
            assert p.returncode == 1 and "unexpectedly frozen" in error_line(p), p.stderr
            assert any_rt.state(cid).returncode != 0
            assert cgroup_dirs(parent + "/ctr") == []
        finally:
            any_rt.delete(cid, force=True)  # if it was made after all, before its parent goes


def test_a_failed_create_leaves_a_container_sharing_its_cgroup_alone(any_rt, bundle, make_bundle):
    """Undoing a failed create kills its own processes, not what else is in
    a shared cgroupsPath, and does not remove that cgroup."""
    first, init = started(any_rt, bundle, "sleep", "1000")
    other = make_bundle("other", args=("/no/such/binary",))
    other.config["linux"]["cgroupsPath"] = bundle.cgroups_path
    cid = new_id("fails")
    p = any_rt.create(cid, other)
    assert p.returncode == 1 and "/no/such/binary" in p.stderr, p.stderr
    assert any_rt.state(cid).returncode != 0
    assert any_rt.status(first) == "running" and pid_alive(init)
    assert json.loads(any_rt("ps", "--format", "json", first).stdout) == [init]


def test_exec_into_a_cgroup_paused_by_another_container_is_refused(any_rt, bundle, make_bundle):
    """Two containers in one cgroupsPath; pausing one freezes both: exec into
    the other is refused as into a paused container, not left hanging."""
    first, _ = started(any_rt, bundle, "sleep", "1000")
    other = make_bundle("other")
    other.config["linux"]["cgroupsPath"] = bundle.cgroups_path
    second, _ = started(any_rt, other, "sleep", "1000")
    assert any_rt("pause", first).returncode == 0
    try:
        p = any_rt("exec", second, "true", timeout=TIMEOUT // 2)
        assert p.returncode == 255 and "paused" in error_line(p), p.stderr
    finally:
        assert any_rt("resume", first).returncode == 0
    assert any_rt("exec", second, "true").returncode == 0
