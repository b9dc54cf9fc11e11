"""process.user ids in config.json: outside 0..2^31-1 they are refused (issue 16).

setresuid, setresgid and setgroups take 32-bit ids, and 4294967295 is their
-1, "leave this id unchanged": a runtime that passes uid 4294967295 on starts
the container process as root.  runc 1.1.5 refuses every uid, gid and
additional gid above 2147483647 ("uids and gids must be in range
0-2147483647") and leaves nothing behind; the largest valid id runs with
exactly the ids asked for.  pyrunc does the same, and says which field is
wrong; `pyrunc validate` gives the same verdict as `create`.

Accepted ids are checked from the host: /proc/<pid>/status of the container
process.  (The exec side, --user and --additional-gids, is in
test_exec_ids.py.)
"""

from __future__ import annotations

import os
import subprocess

import pytest

import helpers
from helpers import assert_one_error_line, new_id, started

MAX = 2147483647


def status_ids(pid) -> dict[str, list[int]]:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    return {k: [int(x) for x in fields.get(k, "").split()] for k in ("Uid", "Gid", "Groups")}


@pytest.mark.parametrize(
    "user",
    [
        {"uid": 0, "gid": 0},
        {"uid": MAX, "gid": MAX},
        {"uid": 1000, "gid": MAX, "additionalGids": [0, MAX]},
        {"uid": MAX, "gid": 0, "additionalGids": [MAX - 1, 5, MAX]},
    ],
    ids=["zero", "max", "additional-bounds", "mixed"],
)
def test_ids_at_the_boundaries_are_applied_exactly(any_rt, bundle, user):
    bundle.config["process"]["user"] = user
    _, pid = started(any_rt, bundle, "sleep", "1000")
    ids = status_ids(pid)
    assert ids["Uid"] == [user["uid"]] * 4, ids
    assert ids["Gid"] == [user["gid"]] * 4, ids
    # the kernel keeps the supplementary groups sorted and without duplicates
    assert ids["Groups"] == sorted(set(user.get("additionalGids", []))), ids


REFUSED = [
    ("uid", 4294967295),
    ("uid", 2147483648),
    ("gid", 4294967295),
    ("gid", 2147483648),
    ("additionalGids", 4294967295),
    ("additionalGids", 2147483648),
]


@pytest.mark.parametrize("verb", ["create", "run"])
@pytest.mark.parametrize("field, value", REFUSED, ids=[f"{f}={v}" for f, v in REFUSED])
def test_ids_out_of_range_are_refused_and_leave_nothing(any_rt, bundle, field, value, verb):
    user = {"uid": 1000, "gid": 1000}
    if field == "additionalGids":
        user[field] = [5, value]
        shown = "process.user.additionalGids[1]"
    else:
        user[field] = value
        shown = f"process.user.{field}"
    bundle.config["process"]["user"] = user
    bundle.set_args("sleep", "1000")
    cid = new_id("ids")
    p = getattr(any_rt, verb)(cid, bundle)
    line = assert_one_error_line(p)
    assert "0-2147483647" in line or "0..2147483647" in line, line
    if any_rt.name == "pyrunc":
        # runc's line does not say which id is wrong; pyrunc names the field
        assert f"config.json: {shown}: {value} is out of range 0..2147483647" in line, line
    assert os.listdir(any_rt.root) == [], "state left behind"
    assert helpers.cgroup_dirs(bundle.cgroups_path) == [], "cgroup left behind"
    assert any_rt.list("-q").stdout.split() == []
    if any_rt.name == "pyrunc":
        # `validate` judges the same config the same way (runc has no validate)
        v = subprocess.run([any_rt.path, "validate", "--bundle", bundle.path], capture_output=True, text=True)
        assert v.returncode == 1, v.stdout
        assert v.stdout.splitlines() == [f"config.json: {shown}: {value} is out of range 0..2147483647"]
