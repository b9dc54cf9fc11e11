"""Concurrency through the CLI: racing creates of one id, many parallel
lifecycles of distinct ids, and state/kill/delete racing on one container.

Sizes: the default run does 8 workers x 10 lifecycles; set
``PYRUNC_RELIABILITY_FULL=1`` for the issue's 8 x 50.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

import helpers
from helpers import new_id
from test_reliability_support import assert_clean, leftovers

FULL = os.environ.get("PYRUNC_RELIABILITY_FULL") == "1"
WORKERS = 8
LIFECYCLES = 50 if FULL else 10
RACERS = 50


def test_parallel_creates_of_one_id(rt, bundle):
    """Exactly one of 50 concurrent creates wins; the others fail with one
    clean line; after delete nothing of any of them is left."""
    cid = new_id("race")
    bundle.set_args("sleep", "100")
    bundle.write()
    rt.ids.append(cid)  # the fixture's cleanup deletes it whatever happens
    procs = [rt.spawn("create", "--bundle", bundle.path, cid) for _ in range(RACERS)]
    results = [p.result(timeout=120) for p in procs]
    winners = [r for r in results if r.returncode == 0]
    losers = [r for r in results if r.returncode != 0]
    assert len(winners) == 1, [(r.returncode, r.stderr) for r in results]
    for r in losers:
        line = helpers.assert_one_error_line(r)
        assert "exist" in line.lower(), line
    st = rt.state_json(cid)
    assert st["status"] == "created"
    # one init, one cgroup: the losers touched neither
    inits = [
        p
        for p in os.listdir("/proc")
        if p.isdigit() and helpers.pid_alive(int(p)) and _cgroup_has(int(p), bundle.cgroups_path)
    ]
    assert inits == [str(st["pid"])]
    assert rt.delete(cid, force=True).returncode == 0
    assert_clean(rt, cid, bundle)


def _cgroup_has(pid, cgroups_path):
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            return any(line.rstrip("\n").endswith("/" + cgroups_path) for line in f)
    except OSError:
        return False


def _lifecycle(rt, bundle, cid):
    """create, start, state, kill, wait, delete of one container; returns
    the seconds it took.  Raises AssertionError with the step that failed."""
    t0 = time.monotonic()
    bundle.config["linux"]["cgroupsPath"] = helpers.CGROUP_PREFIX + uuid.uuid4().hex[:12]
    bundle.sh(f"echo {cid} > /shared/{cid}; exec sleep 100")
    p = rt.create(cid, bundle)
    assert p.returncode == 0, f"create {cid}: {p.stderr}"
    p = rt.start(cid)
    if p.returncode != 0:
        d = os.path.join(rt.root, cid)
        files = {n: open(os.path.join(d, n), "rb").read()[:300] for n in os.listdir(d) if n.endswith(".json")}
        raise AssertionError(f"start {cid}: {p.stderr!r}; state files {files}")
    st = rt.state_json(cid)
    assert st["status"] == "running" and st["id"] == cid, st
    helpers.wait_for(lambda: os.path.exists(os.path.join(bundle.shared, cid)), timeout=10)
    p = rt.kill(cid, "KILL")
    assert p.returncode == 0, f"kill {cid}: {p.stderr}"
    rt.wait_status(cid, "stopped")
    p = rt.delete(cid)
    assert p.returncode == 0, f"delete {cid}: {p.stderr}"
    left = leftovers(rt, cid, bundle)
    assert not left, left
    with open(os.path.join(bundle.shared, cid)) as f:
        assert f.read() == cid + "\n"
    return time.monotonic() - t0


def test_parallel_lifecycles(rt, make_bundle, record_property):
    bundles = [make_bundle(f"w{i}") for i in range(WORKERS)]

    def worker(i):
        times = []
        for n in range(LIFECYCLES):
            times.append(_lifecycle(rt, bundles[i], new_id(f"w{i}n{n}")))
        return times

    t0 = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        per_worker = list(pool.map(worker, range(WORKERS)))
    wall = time.monotonic() - t0
    times = sorted(t for w in per_worker for t in w)
    assert len(times) == WORKERS * LIFECYCLES
    assert os.listdir(rt.root) == []
    summary = (
        f"{WORKERS}x{LIFECYCLES} lifecycles in {wall:.1f}s; per lifecycle median "
        f"{times[len(times) // 2]:.2f}s max {times[-1]:.2f}s"
    )
    record_property("lifecycles", summary)
    print(summary)


# --------------------------------------------------------------------------
# state / kill / delete racing on one container

STATUSES = {"creating", "created", "running", "paused", "stopped"}


def _check_state_result(p, cid):
    """``state`` gives valid JSON with a consistent status, or one clean
    "does not exist" line."""
    if p.returncode != 0:
        line = helpers.assert_one_error_line(p)
        assert "not exist" in line or "does not exist" in line, line
        return None
    st = json.loads(p.stdout)
    assert st["id"] == cid
    assert st["status"] in STATUSES, st
    if st["status"] in ("running", "created", "paused"):
        assert st["pid"] > 0, st
    if st["status"] == "stopped":
        assert st["pid"] == 0, st
    return st["status"]


@pytest.mark.parametrize("round_", range(3))
def test_state_kill_delete_race(rt, bundle, round_):
    cid = new_id("sk")
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    if round_ != 1:
        assert rt.start(cid).returncode == 0
    state_path = os.path.join(rt.root, cid, "state.json")
    ops = ["state"] * 24 + ["kill"] * 6 + ["kill-all"] * 2 + ["delete"] * 3 + ["delete-force"] * 3 + ["list"] * 4
    random.Random(round_).shuffle(ops)
    argv = {
        "state": ("state", cid),
        "kill": ("kill", cid, "KILL"),
        "kill-all": ("kill", "--all", cid, "KILL"),
        "delete": ("delete", cid),
        "delete-force": ("delete", "--force", cid),
        "list": ("list", "-f", "json"),
    }
    raw_reads = []
    spawned = []
    for op in ops:
        spawned.append((op, rt.spawn(*argv[op])))
        # read the state file directly while commands run: never a torn write
        try:
            with open(state_path, "rb") as f:
                raw_reads.append(f.read())
        except FileNotFoundError:
            pass
    results = [(op, s.result(timeout=60)) for op, s in spawned]
    for data in raw_reads:
        json.loads(data)
    force_ok = 0
    for op, p in results:
        if op == "state":
            _check_state_result(p, cid)
        elif op == "list":
            assert p.returncode == 0, p.stderr
            for entry in json.loads(p.stdout) or []:
                assert entry["status"] in STATUSES
        else:
            if p.returncode != 0:
                helpers.assert_one_error_line(p)
            elif op == "delete-force":
                force_ok += 1
    assert force_ok >= 1, [(op, p.returncode, p.stderr) for op, p in results if op.startswith("delete")]
    # the container is gone and everything of it with it
    p = rt.state(cid)
    helpers.assert_one_error_line(p)
    assert_clean(rt, cid, bundle)
