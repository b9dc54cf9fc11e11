"""Containers on a pure cgroup v2 host, end to end through the CLI.

Runs inside ../shared/tools/v2vm (``make test-cgroupv2``); skipped on a v1 or
hybrid host (tests/integration/test_cgroups_v1.py and the container suites cover v1).

What is checked, reading the host's cgroup files and observing inside:
the container's cgroup is a leaf whose controllers are enabled in its
parent's subtree_control, and the init is in it; /sys/fs/cgroup inside is a
fresh cgroup2 mount with a cgroup namespace and a bind of the container's
cgroup without one; the eBPF device filter lets the default devices and
resources.devices through and denies the rest (linux.devices nodes
included); pause/resume through
cgroup.freeze; ps; events --stats; update of live limits; a memory limit
OOM-kills (137 and an oom event); a pids limit stops a fork bomb;
delete --force empties the cgroup (cgroup.kill) and removes it.
"""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from helpers import in_cgroup_sandbox, new_id, pid_alive, wait_for
from pyrunc.cgroups import detect_version

CG = "/sys/fs/cgroup"

pytestmark = [
    pytest.mark.skipif(
        detect_version() != 2, reason="host is cgroup v1/hybrid; these run in a pure v2 VM: make test-cgroupv2"
    ),
    pytest.mark.skipif(
        not in_cgroup_sandbox(), reason="run inside ../shared/tools/v2vm (never create cgroups on the host directly)"
    ),
]


def cg_dir(bundle) -> str:
    # the test process sits in the VM's root cgroup: a relative cgroupsPath
    # lands right below the root (runc takes the parent of its own cgroup)
    return os.path.join(CG, bundle.cgroups_path)


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def run_ok(rt, bundle, script) -> str:
    bundle.sh(script)
    p = rt.run(new_id("v2"), bundle)
    assert p.returncode == 0, f"rc={p.returncode} stdout={p.stdout!r} stderr={p.stderr!r}"
    return p.stdout


def start_detached(rt, bundle, script) -> tuple[str, int]:
    cid = new_id("v2")
    bundle.sh(script)
    p = rt.run(cid, bundle, "-d")
    assert p.returncode == 0, p.stderr
    return cid, rt.state_json(cid)["pid"]


def set_limits(bundle, **res):
    bundle.config["linux"].setdefault("resources", {}).update(res)


# --------------------------------------------------------------------------
# the cgroup itself


def test_cgroup_is_a_leaf_with_controllers_enabled_by_the_parent(rt, bundle):
    set_limits(bundle, memory={"limit": 64 << 20}, pids={"limit": 40}, cpu={"quota": 50000, "period": 100000})
    cid = new_id("v2")
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    pid = rt.state_json(cid)["pid"]
    d = cg_dir(bundle)
    parent_enabled = read(os.path.join(os.path.dirname(d), "cgroup.subtree_control")).split()
    for ctrl in ("memory", "pids", "cpu"):
        assert ctrl in parent_enabled, parent_enabled
    assert set(parent_enabled) <= set(read(os.path.join(d, "cgroup.controllers")).split())
    assert read(os.path.join(d, "cgroup.subtree_control")) == ""  # a leaf
    assert read(os.path.join(d, "cgroup.procs")).split() == [str(pid)]  # created init is in it
    assert read(f"/proc/{pid}/cgroup") == f"0::/{bundle.cgroups_path}"
    assert read(os.path.join(d, "memory.max")) == str(64 << 20)
    assert read(os.path.join(d, "pids.max")) == "40"
    assert read(os.path.join(d, "cpu.max")) == "50000 100000"
    assert rt.start(cid).returncode == 0
    assert rt.delete(cid, force=True).returncode == 0
    assert not os.path.exists(d)


@pytest.mark.parametrize("cgroupns,mode", [(False, "ro"), (True, "ro"), (True, "rw")])
def test_sys_fs_cgroup_shows_the_container_cgroup(rt, bundle, cgroupns, mode):
    """With a cgroup namespace a fresh cgroup2 mount shows the namespace root;
    without one, a bind of the container's directory.  Both show its limits."""
    if cgroupns:
        bundle.set_namespace("cgroup")
    for m in bundle.config["mounts"]:
        if m["type"] == "cgroup":
            m["options"] = [o for o in m["options"] if o not in ("ro", "rw")] + [mode]
    set_limits(bundle, pids={"limit": 42})
    out = run_ok(
        rt, bundle, "cat /proc/self/cgroup; cat /sys/fs/cgroup/pids.max; grep ' /sys/fs/cgroup ' /proc/self/mountinfo"
    )
    own, limit, mnt = out.splitlines()
    assert limit == "42"
    f = mnt.split()
    sep = f.index("-")
    assert f[sep + 1] == "cgroup2"
    opts = set(f[5].split(","))
    assert mode in opts and {"nosuid", "nodev", "noexec"} <= opts, mnt
    if cgroupns:
        assert own == "0::/" and f[3] == "/"
    else:
        assert own == f"0::/{bundle.cgroups_path}" and f[3] == f"/{bundle.cgroups_path}"


def test_exec_joins_the_cgroup_and_its_namespace(rt, bundle):
    bundle.set_namespace("cgroup")
    cid, pid = start_detached(rt, bundle, "sleep 100")
    p = rt("exec", cid, "cat", "/proc/self/cgroup")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "0::/"
    assert len(read(os.path.join(cg_dir(bundle), "cgroup.procs")).split()) == 1  # exec has ended


# --------------------------------------------------------------------------
# eBPF device filter


def test_device_filter_allows_defaults_and_resources_devices_only(rt, bundle):
    # /dev/kmsg (1:11) is not on the default list: a linux.devices entry
    # creates the node but does not allow it (as in runc); only the deny-all
    # config's own rules and the default list decide (opening it write-only
    # needs no capability, so EPERM is the filter's)
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/zero2", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666},
        {"path": "/dev/kmsg2", "type": "c", "major": 1, "minor": 11, "fileMode": 0o600},
    ]
    # a node of a device the filter does not allow (/dev/console, 5:1); without
    # the filter opening it gives anything but EPERM
    os.mknod(os.path.join(bundle.shared, "console"), stat.S_IFCHR | 0o666, os.makedev(5, 1))
    script = "; ".join(
        [
            "echo x > /dev/null && echo null ok",
            "head -c 3 /dev/zero | wc -c",
            "head -c 3 /dev/urandom | wc -c",
            "head -c 3 /dev/random | wc -c",
            "head -c 3 /dev/zero2 | wc -c",
            "(exec 3<>/dev/ptmx && echo ptmx ok)",
            "(echo pyrunc-v2-test > /dev/kmsg2) 2>&1",
            "(exec 3<>/dev/tty) 2>&1",  # allowed; no controlling terminal: ENXIO
            "(echo x > /dev/full) 2>&1",  # allowed: ENOSPC
            "(exec 3</shared/console) 2>&1",
            "true",
        ]
    )
    lines = run_ok(rt, bundle, script).splitlines()
    assert lines[:6] == ["null ok", "3", "3", "3", "3", "ptmx ok"], lines
    assert "Operation not permitted" in lines[6], lines
    assert "No such device or address" in lines[7], lines
    assert "No space left on device" in lines[8], lines
    assert "Operation not permitted" in lines[9], lines


# --------------------------------------------------------------------------
# pause/resume, ps, events, update


def _counter(bundle):
    return int(open(os.path.join(bundle.shared, "n")).read() or 0)


def test_pause_freezes_and_resume_thaws(rt, bundle):
    cid, pid = start_detached(rt, bundle, "i=0; while :; do i=$((i+1)); echo $i > /shared/n; usleep 20000; done")
    d = cg_dir(bundle)
    wait_for(lambda: os.path.exists(os.path.join(bundle.shared, "n")) and _counter(bundle) > 0, timeout=30)
    assert rt("pause", cid).returncode == 0
    assert rt.status(cid) == "paused"
    assert read(os.path.join(d, "cgroup.freeze")) == "1"
    assert "frozen 1" in read(os.path.join(d, "cgroup.events"))
    before = _counter(bundle)
    time.sleep(1)
    assert _counter(bundle) == before
    assert rt("resume", cid).returncode == 0
    assert rt.status(cid) == "running"
    assert read(os.path.join(d, "cgroup.freeze")) == "0"
    wait_for(lambda: _counter(bundle) > before, timeout=30)


def test_ps_events_stats_and_update(rt, bundle):
    set_limits(bundle, memory={"limit": 64 << 20}, pids={"limit": 40})
    cid, pid = start_detached(rt, bundle, "sleep 100 & sleep 100")
    d = cg_dir(bundle)
    wait_for(lambda: len(read(os.path.join(d, "cgroup.procs")).split()) == 2, timeout=30)
    p = rt("ps", "--format", "json", cid)
    assert p.returncode == 0, p.stderr
    pids = json.loads(p.stdout)
    assert pid in pids and len(pids) == 2
    p = rt("events", "--stats", cid)
    assert p.returncode == 0, p.stderr
    ev = json.loads(p.stdout)
    assert ev["type"] == "stats" and ev["id"] == cid
    data = ev["data"]
    assert data["pids"]["current"] == 2 and data["pids"]["limit"] == 40
    assert data["memory"]["usage"]["limit"] == 64 << 20
    assert data["memory"]["usage"]["usage"] > 0
    p = rt("update", "--memory", "32M", "--pids-limit", "10", "--cpu-quota", "20000", "--cpu-period", "100000", cid)
    assert p.returncode == 0, p.stderr
    assert read(os.path.join(d, "memory.max")) == str(32 << 20)
    assert read(os.path.join(d, "pids.max")) == "10"
    assert read(os.path.join(d, "cpu.max")) == "20000 100000"


# --------------------------------------------------------------------------
# limits observed inside


def test_memory_limit_oom_kills_with_an_oom_event(rt, bundle):
    set_limits(bundle, memory={"limit": 16 << 20, "swap": 16 << 20})
    # the init survives; its child (busybox tail keeps the whole line) is OOM-killed
    cid, pid = start_detached(rt, bundle, "head -c 64m /dev/zero | tail > /dev/null; echo $? > /shared/rc; sleep 100")
    events = rt.spawn("events", "--interval", "200ms", cid)
    try:
        wait_for(lambda: os.path.exists(os.path.join(bundle.shared, "rc")), timeout=60)
        time.sleep(1)
    finally:
        events.kill()
    assert open(os.path.join(bundle.shared, "rc")).read().strip() == "137"
    assert read(os.path.join(cg_dir(bundle), "memory.events")).count("oom_kill 0") == 0
    kinds = [json.loads(line)["type"] for line in events.result().stdout.splitlines() if line]
    assert "oom" in kinds, kinds


def test_pids_limit_stops_a_fork_bomb(rt, bundle):
    set_limits(bundle, pids={"limit": 8})
    # a failed fork ends a non-interactive busybox sh: the bomb is a subshell
    cid, pid = start_detached(
        rt, bundle, "(for i in $(seq 20); do sleep 100 & done) 2>/shared/err; echo done > /shared/done; sleep 100"
    )
    wait_for(lambda: os.path.exists(os.path.join(bundle.shared, "done")), timeout=60)
    d = cg_dir(bundle)
    assert 6 <= int(read(os.path.join(d, "pids.current"))) <= 8
    assert read(os.path.join(d, "pids.events")) != "max 0"  # refused forks were counted
    assert "fork" in open(os.path.join(bundle.shared, "err")).read()


def test_delete_force_kills_every_process_and_removes_the_cgroup(rt, bundle):
    cid, pid = start_detached(rt, bundle, "sleep 100 & sleep 100 & sleep 100")
    d = cg_dir(bundle)
    wait_for(lambda: len(read(os.path.join(d, "cgroup.procs")).split()) == 3, timeout=30)
    members = [int(x) for x in read(os.path.join(d, "cgroup.procs")).split()]
    assert rt.delete(cid, force=True).returncode == 0
    assert not os.path.exists(d)
    assert not any(pid_alive(p) for p in members)


@pytest.mark.parametrize("cgroupns", [False, True])
def test_run_true_in_512_kib(rt, bundle, cgroupns):
    """The late join keeps the Python stages out of the container's memory
    cgroup, also when the init has its own cgroup namespace."""
    if cgroupns:
        bundle.set_namespace("cgroup")
    set_limits(bundle, memory={"limit": 512 << 10, "swap": 512 << 10})
    bundle.set_args("true")
    p = rt.run(new_id("v2"), bundle)
    assert p.returncode == 0, p.stderr


# --------------------------------------------------------------------------
# a stage born in the container's cgroup (clone3 with CLONE_INTO_CGROUP)


def _strace(rt, *args) -> tuple[str, list[str]]:
    """The runtime under strace -f (-y: fds with their paths); returns
    (stdout, trace lines)."""
    import shutil

    from helpers import run_traced

    if not shutil.which("strace"):
        pytest.skip("strace is not installed")
    return run_traced(rt, ["-f", "-y", "-e", "trace=clone,clone3,write"], *args)


def _with_userns(bundle):
    bundle.set_namespace("user")
    for key in ("uidMappings", "gidMappings"):
        bundle.config["linux"][key] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    # (no cgroup mount: a user namespace's root may not mount the host's hierarchy)
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/sys/fs/cgroup"]


def _forks(lines) -> list[str]:
    return [ln for ln in lines if "clone" in ln or "cgroup.procs" in ln]


def _births_and_joins(lines, bundle) -> tuple[list[str], list[str]]:
    """(clone3 calls made into the container's cgroup, writes to its
    cgroup.procs) in a trace."""
    procs = f"/sys/fs/cgroup/{bundle.cgroups_path}/cgroup.procs>"
    births = [ln for ln in lines if "clone3(" in ln and "CLONE_INTO_CGROUP" in ln]
    assert not any(" = -1 " in ln for ln in births), births
    joins = [ln for ln in lines if " write(" in ln and procs in ln.split(",")[0]]
    return births, joins


@pytest.mark.parametrize("userns", [True, False], ids=["userns", "control-late-join"])
def test_create_forks_the_stages_into_the_cgroup(rt, bundle, userns_bundle, userns):
    """With a user namespace the stages are charged to the container from
    their fork anyway: the runtime creates them in its cgroup (clone3 with
    CLONE_INTO_CGROUP), nothing writes to its cgroup.procs, and the
    container's process is in it.  The control: without one the init joins
    late, by a write (cgroups/join.py), and no clone3 goes into the cgroup."""
    if userns:
        bundle = userns_bundle
        _with_userns(bundle)
    bundle.set_args("cat", "/proc/self/cgroup").write()
    cid = new_id("v2")
    rt._track(cid)
    out, lines = _strace(rt, "run", "--bundle", bundle.path, cid)
    assert out.strip() == f"0::/{bundle.cgroups_path}"
    births, joins = _births_and_joins(lines, bundle)
    if userns:
        assert len(births) == 1, _forks(lines)
        assert joins == [], joins
    else:
        assert births == []
        assert joins and all('"0"' in ln for ln in joins), joins  # the init's own late join


def test_exec_forks_its_stage_into_the_cgroup(rt, userns_bundle):
    """exec into a container with a user namespace: its stage is born in
    the container's cgroup, no write to any cgroup.procs (no lock warmer
    either); the process is in it."""
    bundle = userns_bundle
    _with_userns(bundle)
    bundle.set_args("sleep", "100")
    cid = new_id("v2")
    assert rt.run(cid, bundle, "-d").returncode == 0
    out, lines = _strace(rt, "exec", cid, "cat", "/proc/self/cgroup")
    assert out.strip() == f"0::/{bundle.cgroups_path}"
    births, joins = _births_and_joins(lines, bundle)
    assert len(births) == 1 and joins == [], _forks(lines)
    # nothing to migrate, so no lock warmed (runtime.py, _exec_stage_born_in_cgroup)
    assert not [ln for ln in lines if " write(" in ln and "/cgroup.procs>" in ln.split(",")[0]], _forks(lines)
    assert len(read(os.path.join(cg_dir(bundle), "cgroup.procs")).split()) == 1  # exec has ended
