"""cgroup v1 manager against the real kernel (run under ../shared/tools/cgroup-sandbox).

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
        detect_version() != 1,
        reason="host is pure cgroup v2; v1 tests need a "
        "v1/hybrid hierarchy (the v2 suite is tests/integration/test_cgroups_v2.py)",
    ),
]


if not own_cgroup_is_root():
    pytestmark.append(
        pytest.mark.skip(
            reason="run under /work/shared/tools/cgroup-sandbox (never create cgroups on the host directly)"
        )
    )


def rd(mgr, controller, name):
    with open(os.path.join(mgr.paths()[controller], name)) as f:
        return f.read().strip()


# --- detection and paths ---------------------------------------------------


def test_detects_v1_and_resolves_absolute_path(cell):
    c = cell("/pyrunc-test-abs/x", "abs")
    assert c.mgr.version == 1
    paths = c.mgr.paths()
    assert paths["memory"] == "/sys/fs/cgroup/memory/pyrunc-test-abs/x"
    assert paths["pids"] == "/sys/fs/cgroup/pids/pyrunc-test-abs/x"
    assert "freezer" in paths and "devices" in paths


def test_relative_path_is_under_own_cgroup(cell):
    own = subprocess.run(["cat", "/proc/self/cgroup"], capture_output=True, text=True).stdout
    c = cell("rel/x", "x")
    mem_own = [line.split(":", 2)[2] for line in own.splitlines() if "memory" in line.split(":")[1].split(",")][0]
    assert c.mgr.paths()["memory"] == os.path.normpath(f"/sys/fs/cgroup/memory/{mem_own}/rel/x")


def test_default_path_is_the_id_relative(cell):
    m = new_manager(None, "defaultid")  # resolved only; nothing created
    assert m.paths()["pids"].endswith("/defaultid")


def test_rejects_dotdot_and_systemd_syntax():
    with pytest.raises(CgroupError, match="cgroupsPath"):
        new_manager("/a/../../b", "x")
    with pytest.raises(CgroupError, match="systemd"):
        new_manager("system.slice:runc:x", "x")


# --- lifecycle -------------------------------------------------------------


def test_create_apply_pids_destroy(cell):
    c = cell()
    c.mgr.create()
    c.mgr.create()  # idempotent
    assert c.mgr.exists()
    for d in set(c.mgr.paths().values()):
        assert os.path.isdir(d)
    p = c.spawn()
    assert c.mgr.pids() == [p.pid]
    for d in set(c.mgr.paths().values()):
        assert str(p.pid) in open(os.path.join(d, "cgroup.procs")).read().split()
    # cpuset got cpus/mems from its parent, or the apply above would have failed
    assert rd(c.mgr, "cpuset", "cpuset.cpus") != ""
    p.kill()
    p.wait()
    c.mgr.destroy()
    assert not c.mgr.exists()
    c.mgr.destroy()  # idempotent


def test_pids_is_recursive(cell):
    c = cell()
    c.mgr.create()
    p1 = c.spawn()
    p2 = c.spawn(apply=False)
    for d in set(c.mgr.paths().values()):
        sub = os.path.join(d, "child")
        os.mkdir(sub)
        if d.startswith("/sys/fs/cgroup/cpuset/"):
            for f in ("cpuset.cpus", "cpuset.mems"):
                with open(os.path.join(sub, f), "w") as fh:
                    fh.write(open(os.path.join(d, f)).read())
        with open(os.path.join(sub, "cgroup.procs"), "w") as f:
            f.write(str(p2.pid))
    assert sorted(c.mgr.pids()) == sorted([p1.pid, p2.pid])
    # destroy removes sub-cgroups too (after the processes are gone)
    c.mgr.kill_all(signal.SIGKILL)
    p1.wait()
    p2.wait()
    c.mgr.destroy()
    assert not os.path.exists(sub)


def test_to_dict_round_trip(cell):
    c = cell()
    c.mgr.create()
    saved = json.loads(json.dumps(c.mgr.to_dict()))
    again = load_manager(saved)
    assert again.version == 1 and again.paths() == c.mgr.paths()
    assert again.exists()


# --- resources -------------------------------------------------------------


def test_memory_pids_cpu_are_written(cell):
    c = cell()
    c.mgr.create()
    c.spawn()
    c.mgr.set(
        {
            "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swappiness": 10, "disableOOMKiller": False},
            "pids": {"limit": 17},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0", "idle": 0},
        }
    )
    assert int(rd(c.mgr, "memory", "memory.limit_in_bytes")) == 64 << 20
    assert int(rd(c.mgr, "memory", "memory.soft_limit_in_bytes")) == 32 << 20
    assert rd(c.mgr, "memory", "memory.swappiness") == "10"
    assert rd(c.mgr, "pids", "pids.max") == "17"
    assert rd(c.mgr, "cpu", "cpu.shares") == "512"
    assert rd(c.mgr, "cpu", "cpu.cfs_quota_us") == "50000"
    assert rd(c.mgr, "cpu", "cpu.cfs_period_us") == "100000"
    assert rd(c.mgr, "cpuset", "cpuset.cpus") == "0"
    # update: a live change, and -1 means unlimited
    c.mgr.set({"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}})
    assert int(rd(c.mgr, "memory", "memory.limit_in_bytes")) > 1 << 60
    assert rd(c.mgr, "pids", "pids.max") == "max"
    assert rd(c.mgr, "cpu", "cpu.cfs_quota_us") == "-1"


def test_pids_limit_zero_is_a_limit(cell):
    c = cell()
    c.mgr.create()
    c.mgr.set({"pids": {"limit": 0}})
    assert rd(c.mgr, "pids", "pids.max") == "0"


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
    assert rd(c.mgr, "pids", "pids.current") == "2"


def _swap_too(mgr, limit):
    mem = {"limit": limit}
    if os.path.exists(os.path.join(mgr.paths()["memory"], "memory.memsw.limit_in_bytes")):
        mem["swap"] = limit  # no swapping out of the limit
    return {"memory": mem}


def test_memory_limit_oom_kills(cell):
    c = cell()
    c.mgr.create()
    c.mgr.set(_swap_too(c.mgr, 16 << 20))
    # dd allocates and fills a 64 MiB buffer: more than the limit
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
    assert p.wait(timeout=30) == -signal.SIGKILL
    assert c.mgr.oom_kill_count() >= 1
    mem = c.mgr.stats()["memory"]
    assert mem["usage"]["max"] > 15 << 20  # it reached the limit (failcnt stays 0 with memsw)


def test_checkbeforeupdate_refuses_limit_below_usage(cell):
    c = cell()
    c.mgr.create()
    # dd holds its filled 8 MiB buffer while blocked writing into a pipe nobody reads
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
    deadline = time.monotonic() + 10
    while int(rd(c.mgr, "memory", "memory.usage_in_bytes")) < 8 << 20:
        assert time.monotonic() < deadline, "the 8 MiB buffer never showed up"
        time.sleep(0.05)
    with pytest.raises(CgroupError, match=r"memory\.limit.*checkBeforeUpdate"):
        c.mgr.set({"memory": {"limit": 4 << 20, "checkBeforeUpdate": True}})
    assert int(rd(c.mgr, "memory", "memory.limit_in_bytes")) > 1 << 60
    c.mgr.kill_all(signal.SIGKILL)


def test_bad_values_name_the_field(cell):
    c = cell()
    c.mgr.create()
    with pytest.raises(CgroupError, match=r"linux\.resources\.unified"):
        c.mgr.set({"unified": {"memory.max": "1000000"}})
    with pytest.raises(CgroupError, match=r"linux\.resources\.memory\.swappiness"):
        c.mgr.set({"memory": {"swappiness": 101}})
    with pytest.raises(CgroupError, match=r"linux\.resources\.pids\.limit"):
        c.mgr.set({"pids": {"limit": "many"}})
    with pytest.raises(CgroupError, match=r"linux\.resources\.cpu\.cpus"):
        c.mgr.set({"cpu": {"cpus": "999"}})
    with pytest.raises(CgroupError, match=r"linux\.resources\.devices\[0\]\.access"):
        c.mgr.set({"devices": [{"allow": True, "access": "rwx"}]})


def test_unmounted_controller_is_a_clear_error(cell):
    c = cell()
    c.mgr.create()
    missing = [k for k in ("hugetlb", "net_cls", "rdma") if k not in c.mgr.paths()]
    if "hugetlb" in missing:
        with pytest.raises(CgroupError, match=r"hugepageLimits.*hugetlb.*not mounted"):
            c.mgr.set({"hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 21}]})
    if "net_cls" in missing:
        with pytest.raises(CgroupError, match=r"network\.classID.*net_cls.*not mounted"):
            c.mgr.set({"network": {"classID": 0x100001}})
    if "rdma" in missing:
        with pytest.raises(CgroupError, match=r"rdma.*not mounted"):
            c.mgr.set({"rdma": {"mlx5_1": {"hcaHandles": 3}}})
    if not missing:
        pytest.skip("hugetlb, net_cls and rdma are all mounted here")


def test_devices_default_deny_plus_allow_list(cell):
    c = cell()
    c.mgr.create()
    c.mgr.set(
        {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"},
                {"allow": True, "type": "b", "major": 7, "access": "rw"},
            ]
        }
    )
    lines = rd(c.mgr, "devices", "devices.list").splitlines()
    assert "a *:* rwm" not in lines
    assert "b 7:* rw" in lines
    assert "c 1:3 rwm" in lines  # default list re-allows /dev/null fully
    assert "c 136:* rwm" in lines and "c 5:2 rwm" in lines
    # the effect: /dev/kmsg (c 1:11) opens outside the cgroup but not inside; /dev/null does
    probe = "busybox true </dev/kmsg && echo kmsg-ok; busybox true </dev/null && echo null-ok"
    outside = subprocess.run([BUSYBOX, "sh", "-c", probe], capture_output=True, text=True)
    assert "kmsg-ok" in outside.stdout
    inside = subprocess.run(
        [BUSYBOX, "sh", "-c", f"echo $$ > {c.mgr.paths()['devices']}/cgroup.procs; " + probe],
        capture_output=True,
        text=True,
    )
    assert "Operation not permitted" in inside.stderr and "null-ok" in inside.stdout


def test_devices_allow_all(cell):
    c = cell()
    c.mgr.create()
    c.mgr.set({"devices": [{"allow": True, "access": "rwm"}]})
    assert rd(c.mgr, "devices", "devices.list") == "a *:* rwm"


def test_blkio_weight_and_throttle(cell):
    c = cell()
    c.mgr.create()
    dev = None
    for line in open("/proc/partitions").read().splitlines()[2:]:
        maj, mnr, _blocks, name = line.split()
        if not name[-1].isdigit() or name.startswith("nvme"):
            dev = (int(maj), int(mnr))
            break
    if dev is None:
        pytest.skip("no block device")
    res = {
        "blockIO": {
            "throttleReadBpsDevice": [{"major": dev[0], "minor": dev[1], "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": dev[0], "minor": dev[1], "rate": 100}],
        }
    }
    c.mgr.set(res)
    assert f"{dev[0]}:{dev[1]} 1048576" in rd(c.mgr, "blkio", "blkio.throttle.read_bps_device")
    assert f"{dev[0]}:{dev[1]} 100" in rd(c.mgr, "blkio", "blkio.throttle.write_iops_device")


# --- freeze / kill ---------------------------------------------------------


def test_freeze_stops_progress_and_thaw_resumes(cell):
    c = cell()
    c.mgr.create()
    p = c.spawn("sh", "-c", "while :; do :; done")
    time.sleep(0.3)
    c.mgr.freeze()
    assert c.mgr.is_frozen()
    assert rd(c.mgr, "freezer", "freezer.state") == "FROZEN"
    t0 = cpu_ticks(p.pid)
    time.sleep(0.5)
    assert cpu_ticks(p.pid) == t0, "a frozen process kept running"
    c.mgr.thaw()
    assert not c.mgr.is_frozen()
    time.sleep(0.5)
    assert cpu_ticks(p.pid) > t0, "a thawed process made no progress"


def test_kill_all_kills_everything(cell):
    c = cell()
    c.mgr.create()
    ps = [c.spawn() for _ in range(3)]
    c.mgr.kill_all(signal.SIGKILL)
    for p in ps:
        assert p.wait(timeout=5) == -signal.SIGKILL
    assert c.mgr.pids() == []
    assert not c.mgr.is_frozen()


def test_kill_all_other_signal(cell):
    c = cell()
    c.mgr.create()
    p = c.spawn()
    c.mgr.kill_all(signal.SIGTERM)
    assert p.wait(timeout=5) == -signal.SIGTERM


def test_kill_all_while_paused(cell):
    c = cell()
    c.mgr.create()
    p = c.spawn()
    c.mgr.freeze()
    c.mgr.kill_all(signal.SIGTERM)  # pending until resume; stays paused
    assert c.mgr.is_frozen() and p.poll() is None
    c.mgr.thaw()
    assert p.wait(timeout=5) == -signal.SIGTERM
    p2 = c.spawn()
    c.mgr.freeze()
    c.mgr.kill_all(signal.SIGKILL)  # must take effect on a paused container
    assert p2.wait(timeout=5) == -signal.SIGKILL


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
    assert s["cpuset"]["cpus"]
    json.dumps(s)
