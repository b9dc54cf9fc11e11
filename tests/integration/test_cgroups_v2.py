"""cgroup v2 manager against the real kernel: run inside ../shared/tools/v2vm
(`make test-cgroupv2`, or `v2vm -- .venv/bin/python3 -m pytest tests/integration/test_cgroups_v2.py`).

Each test creates its own cgroup with a real child process, and removes both
even when it fails (fixture finalizers kill by pid, then destroy).
"""

import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

from pyrunc.cgroups import detect_version, load_manager, new_manager
from pyrunc.errors import CgroupError

from cgroup_test_support import BUSYBOX, cpu_ticks, own_cgroup_is_root


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create cgroups"),
    pytest.mark.skipif(
        detect_version() != 2,
        reason="host is cgroup v1/hybrid; the v2 tests run "
        "in a pure v2 VM: make test-cgroupv2 (tests/integration/test_cgroups_v1.py covers v1)",
    ),
]


if not own_cgroup_is_root():
    pytestmark.append(
        pytest.mark.skip(
            reason="run inside /work/shared/tools/v2vm or the "
            "cgroup-sandbox (never create cgroups on the host directly)"
        )
    )


def rd(mgr, name):
    with open(os.path.join(mgr.paths()[""], name)) as f:
        return f.read().strip()


# --- detection and paths ---------------------------------------------------


def test_detects_v2_and_resolves_absolute_path(cell):
    c = cell("/pyrunc-test-abs/x", "abs")
    assert c.mgr.version == 2
    assert c.mgr.paths() == {"": "/sys/fs/cgroup/pyrunc-test-abs/x"}


def test_relative_path_is_under_the_parent_of_own_cgroup():
    own = open("/proc/self/cgroup").read().strip().split(":", 2)[2]
    m = new_manager("rel/x", "x")
    assert m.paths()[""] == os.path.normpath(f"/sys/fs/cgroup/{os.path.dirname(own)}/rel/x")


# --- lifecycle -------------------------------------------------------------


def test_create_enables_controllers_apply_destroy(cell):
    c = cell("/pyrunc-test-nest/a/b", "b")
    c.mgr.create()
    c.mgr.create()  # idempotent
    ctrls = rd(c.mgr, "cgroup.controllers").split()
    assert {"memory", "pids", "cpu", "io"} <= set(ctrls)
    p = c.spawn()
    assert c.mgr.pids() == [p.pid]
    assert open(f"/proc/{p.pid}/cgroup").read().strip() == "0::/pyrunc-test-nest/a/b"
    c.mgr.kill_all(signal.SIGKILL)
    assert p.wait(timeout=5) == -signal.SIGKILL
    c.mgr.destroy()
    assert not c.mgr.exists()
    c.mgr.destroy()
    # only the container's own cgroup goes; the parents it needed stay (as with runc)
    for d in ("/sys/fs/cgroup/pyrunc-test-nest/a", "/sys/fs/cgroup/pyrunc-test-nest"):
        os.rmdir(d)


def test_pids_is_recursive(cell):
    c = cell()
    c.mgr.create()
    p1 = c.spawn()
    sub = os.path.join(c.mgr.paths()[""], "child")
    os.mkdir(sub)
    p2 = c.spawn(apply=False)
    with open(os.path.join(sub, "cgroup.procs"), "w") as f:
        f.write(str(p2.pid))
    assert sorted(c.mgr.pids()) == sorted([p1.pid, p2.pid])
    c.mgr.kill_all(signal.SIGKILL)
    p1.wait()
    p2.wait()
    c.mgr.destroy()
    assert not os.path.exists(sub)


def test_to_dict_round_trip(cell):
    c = cell()
    c.mgr.create()
    again = load_manager(json.loads(json.dumps(c.mgr.to_dict())))
    assert again.version == 2 and again.paths() == c.mgr.paths() and again.exists()


# --- resources -------------------------------------------------------------


def test_memory_pids_cpu_are_written(cell):
    c = cell()
    c.mgr.create()
    c.spawn()
    c.mgr.set(
        {
            "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20, "swappiness": 10},
            "pids": {"limit": 17},
            "cpu": {
                "shares": 1024,
                "quota": 50000,
                "period": 100000,
                "burst": 1000,
                "cpus": "0",
                "mems": "0",
                "idle": 0,
            },
        }
    )
    assert rd(c.mgr, "memory.max") == str(64 << 20)
    assert rd(c.mgr, "memory.low") == str(32 << 20)
    if os.path.exists(os.path.join(c.mgr.paths()[""], "memory.swap.max")):
        assert rd(c.mgr, "memory.swap.max") == str(32 << 20)  # swap alone, not mem+swap
    assert rd(c.mgr, "pids.max") == "17"
    assert rd(c.mgr, "cpu.weight") == "100"  # 1024 shares -> default weight
    assert rd(c.mgr, "cpu.max") == "50000 100000"
    assert rd(c.mgr, "cpu.max.burst") == "1000"
    assert rd(c.mgr, "cpuset.cpus") == "0"
    c.mgr.set({"cpu": {"shares": 2}})
    assert rd(c.mgr, "cpu.weight") == "1"
    c.mgr.set({"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}})
    assert rd(c.mgr, "memory.max") == "max"
    assert rd(c.mgr, "pids.max") == "max"
    assert rd(c.mgr, "cpu.max").startswith("max")


def test_pids_limit_zero_is_a_limit(cell):
    c = cell()
    c.mgr.create()
    c.mgr.set({"pids": {"limit": 0}})
    assert rd(c.mgr, "pids.max") == "0"


def test_pids_limit_stops_forks(cell):
    c = cell()
    c.mgr.create()
    c.mgr.set({"pids": {"limit": 3}})
    # the shell waits until it is in the cgroup, then tries to start 6 sleeps:
    # 2 fit next to it, the 3rd fork fails and (busybox) sh gives up
    r, w = os.pipe()
    errfile = tempfile.TemporaryFile()
    p = subprocess.Popen(
        [BUSYBOX, "sh", "-c", "read -r _; for i in 1 2 3 4 5 6; do busybox sleep 30 & done; exec busybox sleep 30"],
        stdin=r,
        stderr=errfile,
    )
    c.procs.append(p)
    c.mgr.apply(p.pid)
    os.close(r)
    os.write(w, b"go\n")
    os.close(w)
    p.wait(timeout=30)
    errfile.seek(0)
    err = errfile.read().decode()
    assert p.returncode != 0 and "fork" in err, err
    assert len(c.mgr.pids()) == 2
    assert rd(c.mgr, "pids.current") == "2"


def fs_events(mgr, name):
    out = {}
    for line in rd(mgr, name).splitlines():
        k, v = line.split()
        out[k] = int(v)
    return out


def test_memory_limit_oom_kills(cell):
    c = cell()
    c.mgr.create()
    c.mgr.set({"memory": {"limit": 16 << 20, "swap": 16 << 20}})
    r, w = os.pipe()
    p = subprocess.Popen(
        [BUSYBOX, "sh", "-c", "read -r _; exec busybox dd if=/dev/zero of=/dev/null bs=64M count=1"],
        stdin=r,
        stderr=subprocess.DEVNULL,
    )
    c.procs.append(p)
    c.mgr.apply(p.pid)
    os.close(r)
    os.write(w, b"go\n")
    os.close(w)
    assert p.wait(timeout=60) == -signal.SIGKILL
    assert c.mgr.oom_kill_count() >= 1
    assert c.mgr.stats()["memory"]["event_count"]["oom_kill"] >= 1


def test_checkbeforeupdate_refuses_limit_below_usage(cell):
    c = cell()
    c.mgr.create()
    r, w = os.pipe()
    p = subprocess.Popen(
        [BUSYBOX, "sh", "-c", "read -r _; busybox dd if=/dev/zero bs=8M count=1 | busybox sleep 60"],
        stdin=r,
        stderr=subprocess.DEVNULL,
    )
    c.procs.append(p)
    c.mgr.apply(p.pid)
    os.close(r)
    os.write(w, b"go\n")
    os.close(w)
    deadline = time.monotonic() + 20
    while int(rd(c.mgr, "memory.current")) < 8 << 20:
        assert time.monotonic() < deadline, "the 8 MiB buffer never showed up"
        time.sleep(0.05)
    with pytest.raises(CgroupError, match=r"memory\.limit.*checkBeforeUpdate"):
        c.mgr.set({"memory": {"limit": 4 << 20, "checkBeforeUpdate": True}})
    assert rd(c.mgr, "memory.max") == "max"
    c.mgr.kill_all(signal.SIGKILL)


def test_io_throttle_and_weight(cell):
    c = cell()
    c.mgr.create()
    dev = None
    for line in open("/proc/partitions").read().splitlines()[2:]:
        maj, mnr, _blocks, name = line.split()
        if int(mnr) == 0:
            dev = (int(maj), int(mnr))
            break
    if dev is None:
        pytest.skip("no whole block device in this VM")
    c.mgr.set(
        {
            "blockIO": {
                "throttleReadBpsDevice": [{"major": dev[0], "minor": dev[1], "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": dev[0], "minor": dev[1], "rate": 100}],
            }
        }
    )
    line = [ln for ln in rd(c.mgr, "io.max").splitlines() if ln.startswith(f"{dev[0]}:{dev[1]} ")]
    assert line and "rbps=1048576" in line[0] and "wiops=100" in line[0]
    base = c.mgr.paths()[""]
    if os.path.exists(os.path.join(base, "io.weight")):
        c.mgr.set({"blockIO": {"weight": 500}})
        assert rd(c.mgr, "io.weight") == f"default {1 + 490 * 9999 // 990}"
    elif os.path.exists(os.path.join(base, "io.bfq.weight")):
        c.mgr.set({"blockIO": {"weight": 500}})
        assert "500" in rd(c.mgr, "io.bfq.weight")


def test_hugetlb_limit_and_rsvd(cell):
    c = cell()
    c.mgr.create()
    base = c.mgr.paths()[""]
    if not os.path.exists(os.path.join(base, "hugetlb.2MB.max")):
        pytest.skip("no hugetlb 2MB in this kernel")
    c.mgr.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}]})
    assert rd(c.mgr, "hugetlb.2MB.max") == str(4 << 21)
    if os.path.exists(os.path.join(base, "hugetlb.2MB.rsvd.max")):
        assert rd(c.mgr, "hugetlb.2MB.rsvd.max") == str(4 << 21)
    with pytest.raises(CgroupError, match=r"hugepageLimits\[0\]\.pageSize"):
        c.mgr.set({"hugepageLimits": [{"pageSize": "3XB", "limit": 1}]})


def test_unified_is_written_and_checked(cell):
    c = cell()
    c.mgr.create()
    c.mgr.set({"unified": {"pids.max": "42", "memory.high": "100000000"}})
    assert rd(c.mgr, "pids.max") == "42"
    assert (
        rd(c.mgr, "memory.high") == "99999744"
        or rd(c.mgr, "memory.high") == "100000000"
        or int(rd(c.mgr, "memory.high")) <= 100000000
    )
    with pytest.raises(CgroupError, match=r"unified\.nosuch\.max.*nosuch controller"):
        c.mgr.set({"unified": {"nosuch.max": "1"}})
    with pytest.raises(CgroupError, match=r"unified\.\.\./x"):
        c.mgr.set({"unified": {"../x": "1"}})


def test_v1_only_settings_are_errors(cell):
    c = cell()
    c.mgr.create()
    with pytest.raises(CgroupError, match=r"linux\.resources\.network"):
        c.mgr.set({"network": {"classID": 1}})
    with pytest.raises(CgroupError, match=r"linux\.resources\.cpu\.realtimeRuntime"):
        c.mgr.set({"cpu": {"realtimeRuntime": 1000}})
    with pytest.raises(CgroupError, match=r"linux\.resources\.memory\.swap"):
        c.mgr.set({"memory": {"limit": 100 << 20, "swap": 50 << 20}})


# --- devices (eBPF) --------------------------------------------------------


def _probe(mgr, *paths):
    """Open each path for reading from a shell inside the cgroup; return {path: ok}."""
    script = f"echo $$ > {mgr.paths()['']}/cgroup.procs; " + "; ".join(
        f"busybox true <{p} 2>/dev/null && echo 'ok {p}' || echo 'no {p}'" for p in paths
    )
    out = subprocess.run([BUSYBOX, "sh", "-c", script], capture_output=True, text=True).stdout
    return {line.split()[1]: line.split()[0] == "ok" for line in out.splitlines()}


def test_device_filter_default_deny_plus_allow_list(cell):
    from pyrunc.cgroups import ebpf

    c = cell()
    c.mgr.create()
    outside = subprocess.run(
        [BUSYBOX, "sh", "-c", "busybox true </dev/kmsg && echo ok"], capture_output=True, text=True
    ).stdout
    assert "ok" in outside
    c.mgr.set({"devices": [{"allow": False, "access": "rwm"}]})
    got = _probe(c.mgr, "/dev/kmsg", "/dev/null", "/dev/zero", "/dev/urandom")
    assert got == {"/dev/kmsg": False, "/dev/null": True, "/dev/zero": True, "/dev/urandom": True}
    # an explicit allow for c 1:11 (kmsg), read only
    c.mgr.set(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"},
            ]
        }
    )
    assert _probe(c.mgr, "/dev/kmsg") == {"/dev/kmsg": True}
    fd = os.open(c.mgr.paths()[""], os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(ebpf.attached_program_ids(fd)) == 1  # the update replaced, not stacked
    finally:
        os.close(fd)
    # the default list applies at create even without a devices field
    c.mgr.set({}, initial=True)
    assert _probe(c.mgr, "/dev/kmsg", "/dev/null") == {"/dev/kmsg": False, "/dev/null": True}
    # allow everything
    c.mgr.set({"devices": [{"allow": True, "access": "rwm"}]})
    assert _probe(c.mgr, "/dev/kmsg") == {"/dev/kmsg": True}


# --- freeze / kill ---------------------------------------------------------


def test_freeze_stops_progress_and_thaw_resumes(cell):
    c = cell()
    c.mgr.create()
    p = c.spawn("sh", "-c", "while :; do :; done")
    time.sleep(0.5)
    c.mgr.freeze()
    assert c.mgr.is_frozen()
    assert "frozen 1" in rd(c.mgr, "cgroup.events")
    t0 = cpu_ticks(p.pid)
    time.sleep(1.0)
    assert cpu_ticks(p.pid) == t0, "a frozen process kept running"
    c.mgr.thaw()
    assert not c.mgr.is_frozen()
    time.sleep(1.0)
    assert cpu_ticks(p.pid) > t0, "a thawed process made no progress"


def test_kill_all_uses_cgroup_kill(cell):
    c = cell()
    c.mgr.create()
    ps = [c.spawn() for _ in range(3)]
    c.mgr.kill_all(signal.SIGKILL)
    for p in ps:
        assert p.wait(timeout=5) == -signal.SIGKILL
    assert c.mgr.pids() == []


def test_kill_all_other_signal_while_frozen(cell):
    c = cell()
    c.mgr.create()
    p = c.spawn()
    c.mgr.freeze()
    c.mgr.kill_all(signal.SIGTERM)  # delivered on thaw; the cgroup stays frozen
    assert c.mgr.is_frozen()
    c.mgr.thaw()
    assert p.wait(timeout=5) == -signal.SIGTERM


def test_stats_shape(cell):
    c = cell()
    c.mgr.create()
    c.spawn()
    c.mgr.set({"pids": {"limit": 50}, "memory": {"limit": 64 << 20}})
    s = c.mgr.stats()
    assert set(s) >= {"cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"}
    assert s["pids"] == {"current": 1, "limit": 50}
    assert s["memory"]["usage"]["limit"] == 64 << 20
    assert "kernel" in s["cpu"]["usage"] and "user" in s["cpu"]["usage"]
    json.dumps(s)
