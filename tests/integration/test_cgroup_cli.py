"""The cgroup verbs through the CLI on real containers: pause/resume,
update (flags and --resources), ps, events --stats, kill --all.  Limits are
read back from the host's cgroup files; effects are observed inside."""

import json
import os
import time

import pytest

from helpers import cgroup_dirs, in_cgroup_sandbox, new_id, wait_for

pytestmark = pytest.mark.skipif(not in_cgroup_sandbox(), reason="creates cgroups: run under the cgroup sandbox")


def cgroup_file(bundle, *names):
    """The first existing file among ``names`` in the container's cgroups."""
    for d in cgroup_dirs(bundle.cgroups_path):
        for n in names:
            if os.path.exists(os.path.join(d, n)):
                with open(os.path.join(d, n)) as f:
                    return f.read().strip()
    raise AssertionError(f"none of {names} in {cgroup_dirs(bundle.cgroups_path)}")


def ticking(rt, bundle):
    cid = new_id("cg")
    bundle.sh("while true; do echo x >> /shared/ticks; sleep 0.05; done")
    assert rt.run(cid, bundle, "-d").returncode == 0
    ticks = os.path.join(bundle.shared, "ticks")
    wait_for(lambda: os.path.exists(ticks) and os.path.getsize(ticks) > 4)
    return cid, ticks


def test_pause_stops_progress_and_resume_continues(rt, bundle):
    cid, ticks = ticking(rt, bundle)
    assert rt("pause", cid).returncode == 0
    assert rt.status(cid) == "paused"
    assert cgroup_file(bundle, "freezer.state", "cgroup.freeze") in ("FROZEN", "1")
    time.sleep(0.2)
    size = os.path.getsize(ticks)
    time.sleep(0.4)
    assert os.path.getsize(ticks) == size, "the container made progress while paused"
    p = rt("exec", cid, "true")
    assert p.returncode == 255 and "paused" in p.stderr  # exec failures: 255, as runc
    assert rt("resume", cid).returncode == 0
    assert rt.status(cid) == "running"
    wait_for(lambda: os.path.getsize(ticks) > size)
    p = rt("resume", cid)
    assert p.returncode == 1 and "not paused" in p.stderr


def test_update_flags_and_resources_change_live_limits(rt, bundle):
    cid, _ = ticking(rt, bundle)
    assert rt("update", "--pids-limit", "40", "--memory", "64m", cid).returncode == 0
    assert cgroup_file(bundle, "pids.max") == "40"
    assert cgroup_file(bundle, "memory.limit_in_bytes", "memory.max") == str(64 << 20)
    res = {"pids": {"limit": 33}, "cpu": {"shares": 512}}
    p = rt("update", "--resources", "-", cid, input=json.dumps(res))
    assert p.returncode == 0, p.stderr
    assert cgroup_file(bundle, "pids.max") == "33"
    shares = cgroup_file(bundle, "cpu.shares", "cpu.weight")
    assert shares in ("512", "20"), shares  # v2: runc's shares -> weight conversion
    p = rt("update", "--resources", "-", cid, input='{"pids": {"limit": "many"}}')
    assert p.returncode == 1 and "pids" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_ps_lists_the_container_processes(rt, bundle):
    cid, _ = ticking(rt, bundle)
    pid = rt.state_json(cid)["pid"]
    p = rt("ps", "--format", "json", cid)
    assert p.returncode == 0 and pid in json.loads(p.stdout)
    p = rt("ps", cid, "-o", "pid,comm")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split()[0] == "PID" and any(l.split()[0] == str(pid) for l in lines[1:])


def test_events_stats_reports_usage(rt, bundle):
    cid, _ = ticking(rt, bundle)
    p = rt("events", "--stats", cid)
    assert p.returncode == 0, p.stderr
    ev = json.loads(p.stdout.splitlines()[0])
    assert ev["type"] == "stats" and ev["id"] == cid
    assert ev["data"]["pids"]["current"] >= 1
    assert ev["data"]["memory"]["usage"]["usage"] > 0
    assert rt.kill(cid, "KILL").returncode == 0
    rt.wait_status(cid, "stopped")
    p = rt("events", "--stats", cid)
    assert p.returncode == 1 and "not running" in p.stderr


def test_kill_all_reaches_every_process(rt, bundle):
    cid = new_id("cg")
    bundle.sh("sleep 100 & sleep 100 & wait")
    assert rt.run(cid, bundle, "-d").returncode == 0
    wait_for(lambda: len(json.loads(rt("ps", "--format", "json", cid).stdout)) >= 3)
    pids = json.loads(rt("ps", "--format", "json", cid).stdout)
    assert rt.kill(cid, "KILL", all=True).returncode == 0
    wait_for(lambda: not any(os.path.exists(f"/proc/{p}") and _alive(p) for p in pids))
    assert rt.delete(cid).returncode == 0
    assert not cgroup_dirs(bundle.cgroups_path), "cgroup left after delete"


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
