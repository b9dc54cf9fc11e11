"""exec --user / --additional-gids: ids outside 0..2^31-1 are refused (issue 16).

setresuid, setresgid and setgroups take 32-bit ids, and 4294967295 is their
-1, "leave this id unchanged": a runtime that passes it on starts the
process with its own ids, root.  runc refuses every id above 2^31-1 (and
negative ones) with exit status 255 and starts nothing; the largest valid
id must give exactly the ids asked for.  Checked from the host:
/proc/<pid>/status of the exec'd process and the container's process list.
"""

from __future__ import annotations

import json
import os

import pytest

from helpers import exec_done, started, wait_for

MAX = 2147483647


@pytest.fixture
def running(any_rt, bundle):
    cid, init = started(any_rt, bundle, "sleep", "1000")
    return any_rt, cid, init


def container_pids(rt, cid) -> set[int]:
    p = rt("ps", "--format", "json", cid)
    assert p.returncode == 0, p.stderr
    return set(json.loads(p.stdout) or [])


def status_ids(pid) -> dict[str, list[int]]:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    return {k: [int(x) for x in fields.get(k, "").split()] for k in ("Uid", "Gid", "Groups")}


def one_line(p) -> str:
    assert "Traceback" not in p.stderr, p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, p.stderr
    return lines[0]


@pytest.mark.parametrize(
    "flags, flag",
    [
        (["--user", "4294967295"], "--user"),
        (["--user", "4294967295:4294967295"], "--user"),
        (["--user", "0:4294967295"], "--user"),
        (["--user", "2147483648"], "--user"),
        (["--user", "-1"], "--user"),
        (["--user", "0:-1"], "--user"),
        (["--additional-gids", "4294967295"], "--additional-gids"),
        (["--additional-gids", "0", "--additional-gids", "2147483648"], "--additional-gids"),
    ],
    ids=lambda v: " ".join(map(str, v)) if isinstance(v, list) else None,
)
def test_out_of_range_ids_are_refused_and_nothing_starts(running, tmp_path, flags, flag):
    rt, cid, init = running
    before = container_pids(rt, cid)
    pid_file = tmp_path / "exec.pid"
    p = rt("exec", "--detach", "--pid-file", pid_file, *flags, cid, "sleep", "1000")
    assert p.returncode == 255, (p.returncode, p.stderr)
    line = one_line(p)
    assert "0-2147483647" in line, line
    if rt.name == "pyrunc":
        # runc's line only says "uids and gids must be in range 0-2147483647";
        # pyrunc names the flag and the value too
        assert flag in line and flags[-1].split(":")[-1] in line, line
    assert not pid_file.exists()
    assert container_pids(rt, cid) == before == {init}
    assert rt.status(cid) == "running"


@pytest.mark.parametrize(
    "field, value", [("uid", 4294967295), ("gid", 4294967295), ("uid", 2147483648), ("additionalGids", [4294967295])]
)
def test_out_of_range_ids_in_a_process_document_are_refused(running, tmp_path, field, value):
    rt, cid, init = running
    user = {"uid": 0, "gid": 0, field: value}
    doc = {"args": ["sleep", "1000"], "cwd": "/", "env": ["PATH=/bin"], "user": user}
    (tmp_path / "process.json").write_text(json.dumps(doc))
    p = rt("exec", "--detach", "--process", tmp_path / "process.json", cid)
    assert p.returncode == 255, (p.returncode, p.stderr)
    assert "0-2147483647" in one_line(p)
    assert container_pids(rt, cid) == {init}


def test_an_additional_gid_that_is_no_number_is_a_usage_error(running):
    rt, cid, init = running
    p = rt("exec", "--detach", "--additional-gids", "abc", cid, "sleep", "1000")
    # a flag value its parser rejects: exit 1, as for any flag syntax error
    # (runc then prints its usage text too)
    assert p.returncode == 1, p.stderr
    assert "abc" in p.stderr and "Traceback" not in p.stderr
    assert container_pids(rt, cid) == {init}


@pytest.mark.parametrize(
    "flags, uid, gid, groups",
    [
        (["--user", "2147483647"], MAX, 0, []),  # the container's gid (0) stays
        (["--user", "2147483647:2147483647"], MAX, MAX, []),
        (["--user", "0:2147483647"], 0, MAX, []),
        (["--additional-gids", "2147483647"], 0, 0, [MAX]),
        (["--user", "1000:1000", "--additional-gids", "2147483647", "--additional-gids", "0"], 1000, 1000, [0, MAX]),
    ],
    ids=lambda v: " ".join(map(str, v)) if isinstance(v, list) else None,
)
def test_the_largest_ids_are_given_exactly(running, tmp_path, flags, uid, gid, groups):
    rt, cid, init = running
    pid_file = tmp_path / "exec.pid"
    p = rt("exec", "--detach", "--pid-file", pid_file, *flags, cid, "sleep", "1000")
    assert p.returncode == 0, p.stderr
    pid = int(pid_file.read_text())
    wait_for(lambda: exec_done(pid, "sleep"))
    assert pid in container_pids(rt, cid)
    ids = status_ids(pid)
    assert ids["Uid"] == [uid] * 4  # real, effective, saved, filesystem
    assert ids["Gid"] == [gid] * 4
    assert sorted(ids["Groups"]) == groups
    os.kill(pid, 9)


@pytest.mark.parametrize(
    "user, uid", [("", 0), ("+5", 5), ("5:", None), (":5", None), (" 5", None), ("5:5:5", None), ("abc", None)]
)
def test_user_flag_syntax(running, tmp_path, user, uid):
    """runc's reading of --user: "" is unset, a sign is allowed (Go's Atoi);
    an empty part, blanks or a third part are refused, exit 255."""
    rt, cid, init = running
    pid_file = tmp_path / "exec.pid"
    p = rt("exec", "--detach", "--pid-file", pid_file, "--user", user, cid, "sleep", "1000")
    if uid is None:
        assert p.returncode == 255, (p.returncode, p.stderr)
        one_line(p)
        assert container_pids(rt, cid) == {init}
        return
    assert p.returncode == 0, p.stderr
    pid = int(pid_file.read_text())
    wait_for(lambda: exec_done(pid, "sleep"))
    assert status_ids(pid)["Uid"] == [uid] * 4
    os.kill(pid, 9)
