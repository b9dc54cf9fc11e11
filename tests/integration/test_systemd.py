"""The systemd cgroup driver (``--systemd-cgroup``; pyrunc/cgroups/systemd.py).

Two halves:

* pure logic (runs anywhere): cgroupsPath ``slice:prefix:name`` to unit and
  cgroup, slice expansion, ``org.systemd.property.*`` annotations (GVariant
  text), OCI resources to unit properties; on a host without systemd as
  PID 1 (this one) the flag fails with one line and leaves nothing; the
  cgroupfs path never imports the D-Bus library.
* against a real systemd (``make test-systemd``: one boot of
  ``../shared/tools/v2vm --systemd``), pyrunc and Debian's runc side by
  side on the same bundle: the unit lands in its slice with Delegate=yes,
  the limits are in the cgroup files and in ``systemctl show``, survive
  ``systemctl daemon-reload``, ``update`` changes both, pause/resume, ps,
  exec, events --stats and kill --all work on the unit's cgroup, delete and
  a failed create leave no unit, a kubelet-style dashed slice nests; and
  podman with its systemd cgroup manager and containerd's ctr with the
  shim's systemd cgroup option (the engines image).  The same tests (less
  the engines) run on cgroup v1/hybrid in ``make test-systemd-v1``'s box
  (test_systemd_v1.py: systemd as PID 1 of a container on this host), the
  cgroup files and unit properties read per layout (``LIMITS``).
  Skipped (with the reason) where PID 1 is not systemd.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

from helpers import REPO, RUNTIME, Bundle, Runtime, assert_one_error_line, make_rootfs, new_id, wait_for
from pyrunc.cgroups import systemd as S
from pyrunc.errors import CgroupError

CG = "/sys/fs/cgroup"
RUNC = "/usr/sbin/runc"
MiB = 1024 * 1024


# --- pure logic ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path,slice_,unit",
    [
        ("system.slice:docker:abc", "system.slice", "docker-abc.scope"),
        (":cri-containerd:abc", "system.slice", "cri-containerd-abc.scope"),
        ("machine.slice::abc", "machine.slice", "abc.scope"),
        ("system.slice:libpod:", "system.slice", "libpod-cid.scope"),
        (None, "system.slice", "pyrunc-cid.scope"),
        ("", "system.slice", "pyrunc-cid.scope"),
        ("user.slice:x:my-pod.slice", "user.slice", "my-pod.slice"),
        ("-:p:n", "-.slice", "p-n.scope"),
    ],
)
def test_cgroups_path_to_unit(path, slice_, unit):
    assert S.parse_cgroups_path(path, "cid") == (slice_, unit)


@pytest.mark.parametrize(
    "path",
    [
        "a:b",
        "a:b:c:d",
        "/abs/path",
        "noslice:p:n",
        "a--b.slice:p:n",
        "-a.slice:p:n",
        "a/b.slice:p:n",
        ".slice:p:n",
        "system.slice:p:bad+name",
    ],
)
def test_malformed_cgroups_path_names_the_field(path):
    with pytest.raises(CgroupError, match=r"^linux\.cgroupsPath: "):
        S.parse_cgroups_path(path, "cid")


def test_expand_slice():
    assert S.expand_slice("system.slice") == "/system.slice"
    assert (
        S.expand_slice("kubepods-besteffort-pod123.slice")
        == "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod123.slice"
    )
    assert S.expand_slice("-.slice") == "/"
    assert S.unit_cgroup("a-b.slice", "x-1.scope") == "/a.slice/a-b.slice/x-1.scope"
    assert S.unit_cgroup("-.slice", "x-1.scope") == "/x-1.scope"
    assert S.unit_cgroup("system.slice", "p-q.slice") == "/p.slice/p-q.slice"


def test_annotation_properties():
    props = dict(
        S.annotation_properties(
            {
                "org.systemd.property.TimeoutStopUSec": "uint64 123456789",
                "org.systemd.property.CollectMode": "'inactive-or-failed'",
                "org.systemd.property.TimeoutStopSec": "5",  # documented name: converted to USec
                "org.systemd.property.RuntimeMaxUSec": "@t 1000",
                "org.systemd.property.Wants": "['a.service', \"b.service\"]",
                "org.systemd.property.SendSIGHUP": "true",
                "other.annotation": "ignored",
            }
        )
    )
    assert props["CollectMode"] == ("s", "inactive-or-failed")
    assert props["TimeoutStopUSec"] in (("t", 123456789), ("t", 5_000_000))
    assert props["RuntimeMaxUSec"] == ("t", 1000)
    assert props["Wants"] == ("as", ["a.service", "b.service"])
    assert props["SendSIGHUP"] == ("b", True)
    assert ("TimeoutStopUSec", ("t", 5_000_000)) in S.annotation_properties(
        {"org.systemd.property.TimeoutStopSec": "5"}
    )
    assert S.annotation_properties({"org.systemd.property.Nice": "int32 5"}) == [("Nice", ("i", 5))]


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("org.systemd.property.Ab", "true", "property name"),
        ("org.systemd.property.Cpu1", "true", "property name"),
        ("org.systemd.property.CollectMode", "inactive", "GVariant"),
        ("org.systemd.property.CollectMode", "'unterminated", "GVariant"),
        ("org.systemd.property.TasksMax", "uint64 -1", "GVariant"),
    ],
)
def test_bad_annotations_are_one_line(key, value, match):
    with pytest.raises(CgroupError, match=match) as e:
        S.annotation_properties({key: value})
    assert "\n" not in str(e.value) and key in str(e.value)


def test_resource_properties_v2():
    res = {
        "memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "swap": 96 * MiB},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1,3", "mems": "0"},
        "pids": {"limit": 50},
        "blockIO": {"weight": 500},
    }
    props = dict(S.resource_properties(res, 2))
    assert props["MemoryMax"] == ("t", 64 * MiB)
    assert props["MemoryLow"] == ("t", 32 * MiB)
    assert props["MemorySwapMax"] == ("t", 32 * MiB)
    assert props["CPUWeight"] == ("t", 100)
    assert props["CPUQuotaPerSecUSec"] == ("t", 500000)
    assert props["CPUQuotaPeriodUSec"] == ("t", 100000)
    assert props["AllowedCPUs"] == ("ay", bytes([0b1011]))
    assert props["AllowedMemoryNodes"] == ("ay", bytes([1]))
    assert props["TasksMax"] == ("t", 50)
    assert props["IOWeight"] == ("t", 1 + (500 - 10) * 9999 // 990)
    # a quota is kept per second in 10 ms steps: rounded up
    assert dict(S.resource_properties({"cpu": {"quota": 1234, "period": 100000}}, 2))["CPUQuotaPerSecUSec"] == (
        "t",
        20000,
    )
    unlimited = dict(S.resource_properties({"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}}, 2))
    assert unlimited["MemoryMax"] == unlimited["TasksMax"] == ("t", S.INFINITY)
    assert unlimited["CPUQuotaPerSecUSec"] == ("t", S.INFINITY)
    # a pids limit of 0 is 1 for systemd (its minimum; the same limit for a cgroup holding the init)
    assert dict(S.resource_properties({"pids": {"limit": 0}}, 2))["TasksMax"] == ("t", 1)
    assert dict(S.resource_properties({"pids": {"limit": 0}}, 1))["TasksMax"] == ("t", 1)
    v1 = dict(
        S.resource_properties({"memory": {"limit": 64 * MiB}, "cpu": {"shares": 512}, "blockIO": {"weight": 300}}, 1)
    )
    assert v1 == {"MemoryLimit": ("t", 64 * MiB), "CPUShares": ("t", 512), "BlockIOWeight": ("t", 300)}
    # v1 gets the device properties too: systemd rewrites a v1 list from them
    v1_devices = dict(S.resource_properties({"devices": [{"allow": False, "access": "rwm"}]}, 1))
    assert v1_devices["DevicePolicy"] == ("s", "strict") and ("char-pts", "rwm") in v1_devices["DeviceAllow"][1]
    assert S.resource_properties({}, 2) == []


def test_device_properties():
    props = S.device_properties(
        [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]
    )
    assert props[0] == ("DevicePolicy", ("s", "strict"))
    assert props[1] == ("DeviceAllow", ("a(ss)", []))  # the reset comes first
    entries = props[2][1][1]
    assert ("/dev/char/1:3", "rw") in entries
    assert ("char-*", "m") in entries and ("block-*", "m") in entries  # runc's default list
    assert ("char-pts", "rwm") in entries  # 136:* by its /proc/devices name
    assert S.device_properties([{"allow": True, "access": "rwm"}])[0] == ("DevicePolicy", ("s", "auto"))


def test_cgroupfs_path_does_not_load_dbus():
    code = (
        "import sys; from pyrunc.cgroups import new_manager, load_manager, systemd; "
        "m = new_manager(None, 'x'); load_manager(m.to_dict()); "
        "print('jeepney' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == "False", out.stderr


def test_manager_record_round_trip(monkeypatch):
    """Naming, the inner manager's paths and the saved record, without D-Bus:
    before its unit is started, a manager has no paths (create joins by
    apply) and neither kills nor stops anything (a unit of that name is
    someone else's); rebuilt from its record it owns the unit."""
    from pyrunc.cgroups import detect_version, load_manager, new_manager

    monkeypatch.setattr(S, "systemd_running", lambda: True)
    m = new_manager(
        "kubepods-burstable.slice:crio:abc",
        "abc",
        systemd=True,
        annotations={"org.systemd.property.CollectMode": "'inactive-or-failed'"},
    )
    assert isinstance(m, S.SystemdManager)
    assert (m.unit, m.slice, m.version) == ("crio-abc.scope", "kubepods-burstable.slice", detect_version())
    assert m.properties == [("CollectMode", ("s", "inactive-or-failed"))]
    want = "/kubepods.slice/kubepods-burstable.slice/crio-abc.scope"
    assert m.path == want and m.paths() == {}
    m.kill_all(9)
    m.destroy()  # nothing started: no D-Bus, no error
    saved = json.loads(json.dumps(m.to_dict()))
    assert saved["driver"] == "systemd" and saved["unit"] == "crio-abc.scope"
    again = load_manager(saved)
    assert isinstance(again, S.SystemdManager) and again.paths()
    assert all(p.endswith(want) for p in again.paths().values())
    assert again.inner.paths() == m.inner.paths()
    monkeypatch.setattr(S, "systemd_running", lambda: False)
    with pytest.raises(CgroupError, match="systemd is not running"):
        new_manager(None, "abc", systemd=True)


def test_rootless_manager_uses_the_users_instance(monkeypatch):
    """Rootless: the default slice is user.slice, the unit's cgroup lies below
    the user manager's ControlGroup (asked over the user bus, then
    disconnected), the bus address is kept in the record, and a v1 host is
    refused as by runc."""
    import pyrunc.cgroups as C
    from pyrunc.cgroups import load_manager, new_manager

    calls = []

    class FakeBus:
        address = "unix:path=/run/user/1000/bus"

        def __init__(self, *, user=False, address=None):
            calls.append(("open", user, address))

        def manager_property(self, name):
            calls.append(("get", name))
            return "/user.slice/user-1000.slice/user@1000.service"

        def close(self):
            calls.append(("close",))

    monkeypatch.setattr(S, "systemd_running", lambda: True)
    monkeypatch.setattr(S, "Systemd", FakeBus)
    monkeypatch.setattr(C, "detect_version", lambda root=None: 2)
    m = new_manager(None, "abc", systemd=True, rootless=True)
    assert (m.slice, m.unit, m.rootless) == ("user.slice", "pyrunc-abc.scope", True)
    assert m.path == "/user.slice/user-1000.slice/user@1000.service/user.slice/pyrunc-abc.scope"
    assert calls == [("open", True, None), ("get", "ControlGroup"), ("close",)]
    saved = json.loads(json.dumps(m.to_dict()))
    assert saved["bus"] == FakeBus.address and saved["rootless"] is True
    again = load_manager(saved)
    assert again.bus_address == FakeBus.address and again.rootless
    again._systemd()
    assert calls[-1] == ("open", True, FakeBus.address)
    # root's containers keep system.slice and no bus address in the record
    root_mgr = new_manager(None, "abc", systemd=True)
    assert root_mgr.slice == "system.slice" and "bus" not in root_mgr.to_dict()
    # device rules are not set as properties of the user's units
    sent = []
    again._bus = type("B", (), {"call": lambda self, *a, **k: sent.append(a)})()
    monkeypatch.setattr(again.inner, "set", lambda *a, **k: None)
    again.set({"memory": {"limit": 1 << 26}, "devices": [{"allow": False, "access": "rwm"}]}, initial=True)
    names = [p[0] for p in sent[0][2][2]]
    assert names == ["MemoryMax"], names
    monkeypatch.setattr(C, "detect_version", lambda root=None: 1)
    with pytest.raises(CgroupError, match="cgroup v2"):
        new_manager(None, "abc", systemd=True, rootless=True)


def test_user_bus_address_and_host_uid(tmp_path):
    assert S.user_bus_address({"DBUS_SESSION_BUS_ADDRESS": "unix:path=/x"}) == "unix:path=/x"
    (tmp_path / "bus").touch()
    assert S.user_bus_address({"XDG_RUNTIME_DIR": str(tmp_path)}) == f"unix:path={tmp_path}/bus"
    with pytest.raises(CgroupError, match="XDG_RUNTIME_DIR is unset"):
        S.user_bus_address({})
    with pytest.raises(CgroupError, match="bus does not exist"):
        S.user_bus_address({"XDG_RUNTIME_DIR": str(tmp_path / "none")})
    m = tmp_path / "uid_map"
    m.write_text("         0       1000          1\n         1     100000      65536\n")
    assert S.host_uid(0, str(m)) == 1000
    assert S.host_uid(5, str(m)) == 100004
    assert S.host_uid(70000, str(m)) == 70000  # unmapped: as is
    assert S.host_uid(0, str(tmp_path / "missing")) == 0


def _systemd_pid1() -> bool:
    return S.systemd_running()


@pytest.mark.skipif(_systemd_pid1(), reason="checks a host without systemd")
@pytest.mark.parametrize("flags", [["--systemd-cgroup"], ["--cgroup-manager", "systemd"], ["--cgroup-manager=systemd"]])
def test_without_systemd_one_error_line_nothing_left(root, bundle, flags):
    rt = Runtime(root, global_args=flags)
    bundle.config["linux"]["cgroupsPath"] = "system.slice:pyrunc-test:" + new_id()
    bundle.sh("exit 0")
    cid = new_id()
    p = rt.run(cid, bundle)
    line = assert_one_error_line(p, contains="systemd")
    assert "not running" in line
    assert os.listdir(root) == []
    rt.ids.clear()


@pytest.mark.skipif(_systemd_pid1(), reason="checks a host without systemd")
def test_malformed_path_is_one_line_naming_the_field(root, bundle):
    rt = Runtime(root, global_args=["--systemd-cgroup"])
    bundle.config["linux"]["cgroupsPath"] = "no-colon-enough:x"
    bundle.sh("exit 0")
    p = rt.run(new_id(), bundle)
    assert_one_error_line(p, contains="linux.cgroupsPath")
    assert os.listdir(root) == []
    rt.ids.clear()


# --- with systemd as PID 1 (the VM; on cgroup v1 the box of test_systemd_v1.py) ------

needs_systemd = pytest.mark.skipif(
    not _systemd_pid1() or os.geteuid() != 0,
    reason="needs systemd as PID 1 and root: make test-systemd (v2vm --systemd) "
    "or make test-systemd-v1 (a systemd container on this cgroup v1 host)",
)

RUNTIMES = [
    pytest.param(RUNTIME, id="pyrunc"),
    pytest.param(
        RUNC, id="runc", marks=pytest.mark.skipif(not os.path.exists(RUNC), reason=f"{RUNC} is not installed")
    ),
]


def runc_version() -> tuple[int, ...]:
    out = subprocess.run([RUNC, "--version"], capture_output=True, text=True).stdout
    words = out.split()
    ver = words[2] if len(words) > 2 else "0"
    return tuple(int(x) for x in ver.split("+")[0].split("-")[0].split(".")[:2] if x.isdigit())


def systemctl(*args) -> str:
    p = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=60)
    return p.stdout


def show(unit: str, *props: str) -> dict:
    out = systemctl("show", unit, "-p", ",".join(props))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def unit_gone(unit: str) -> bool:
    s = show(unit, "LoadState", "ActiveState")
    return s.get("LoadState") == "not-found" and s.get("ActiveState") == "inactive"


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


# The same tests read the limits on both layouts: pure v2 (the VM) and v1 or
# hybrid (make test-systemd-v1's box: v1 controllers, name=systemd, cgroup2 at
# unified).  Each entry: the v2 file, the v1 controller and file, the v2 and
# v1 unit property (None: systemd keeps no such property there).
V2 = os.path.exists(CG + "/cgroup.controllers")
LIMITS = {
    "memory": ("memory.max", "memory", "memory.limit_in_bytes", "MemoryMax", "MemoryLimit"),
    "cpu": ("cpu.weight", "cpu", "cpu.shares", "CPUWeight", "CPUShares"),
    "pids": ("pids.max", "pids", "pids.max", "TasksMax", "TasksMax"),
    "quota": ("cpu.max", "cpu", "cpu.cfs_quota_us", "CPUQuotaPerSecUSec", "CPUQuotaPerSecUSec"),
    "period": ("cpu.max", "cpu", "cpu.cfs_period_us", "CPUQuotaPeriodUSec", "CPUQuotaPeriodUSec"),
    "cpus": ("cpuset.cpus", "cpuset", "cpuset.cpus", "AllowedCPUs", "AllowedCPUs"),
    "freeze": ("cgroup.freeze", "freezer", "freezer.state", None, None),
    "procs": ("cgroup.procs", "pids", "cgroup.procs", None, None),
}
FROZEN, THAWED = ("1", "0") if V2 else ("FROZEN", "THAWED")


def cg_file(cgroup: str, what: str) -> str:
    """The file of limit ``what`` (LIMITS) of ``cgroup`` (a path below the root)."""
    v2file, ctrl, v1file, _, _ = LIMITS[what]
    return f"{CG}{cgroup}/{v2file}" if V2 else f"{CG}/{ctrl}{cgroup}/{v1file}"


def prop(what: str) -> str:
    """The unit property of limit ``what`` on this layout."""
    return LIMITS[what][3 if V2 else 4]


def cpu_value(shares: int, cgroup: str, rt) -> str:
    """What cpu.weight (v2) or cpu.shares (v1) holds for ``shares``: runc 1.1
    (Debian's) converts shares to weight linearly, pyrunc as runc >= 1.3."""
    if not V2:
        return str(shares)
    return str(S.R.cpu_shares_to_weight(shares)) if rt.path != RUNC else read(cg_file(cgroup, "cpu"))


def probe_device() -> tuple[int, int] | None:
    """A character device of this machine outside runc's default list that
    anyone may open (loop-control, cpu_dma_latency, vga_arbiter), to check
    the device rules with: the container makes its node (mknod is allowed:
    "c *:* m"), and only the rules decide whether it opens."""
    for major, minor in ((10, 237), (10, 259), (10, 256)):
        if os.path.exists(f"/sys/dev/char/{major}:{minor}"):
            return major, minor
    return None


def cg_dirs(cgroup: str) -> list[str]:
    """``cgroup`` in every hierarchy mounted under /sys/fs/cgroup (v2: the one)."""
    if V2:
        return [CG + cgroup]
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2") and fields[4].startswith(CG + "/"):
                out.append(fields[4] + cgroup)
    return out


def cg_gone(cgroup: str) -> bool:
    return not any(os.path.exists(d) for d in cg_dirs(cgroup))


def proc_cgroup(pid) -> str:
    """The process's cgroup in the v2 tree (hybrid: the unified line systemd keeps)."""
    with open(f"/proc/{pid}/cgroup") as f:
        return next(line.strip()[3:] for line in f if line.startswith("0::"))


@pytest.fixture(params=RUNTIMES)
def srt(request, root):
    """The runtime under test (pyrunc, then runc) with --systemd-cgroup; every
    container deleted and every unit it named stopped afterwards."""
    rt = Runtime(root, path=request.param, global_args=["--systemd-cgroup"])
    rt.units = []
    rt.slices = []
    yield rt
    problems = rt.cleanup()
    for unit in rt.units + rt.slices:
        systemctl("stop", unit)
        systemctl("reset-failed", unit)
    # v1: the runtimes (runc as pyrunc) make a slice's directory in the
    # hierarchies systemd does not manage (freezer, cpuset) and leave it
    for slice_ in sorted(rt.slices, key=lambda s: -S.expand_slice(s).count("/")):
        for d in cg_dirs(S.expand_slice(slice_)) if not V2 else ():
            try:
                os.rmdir(d)
            except OSError:
                pass
    assert not problems, problems


def systemd_bundle(bundle: Bundle, rt, slice_="system.slice", prefix="pyrunc-test"):
    """Give ``bundle`` a slice:prefix:name cgroupsPath; return (cid, unit, cgroup
    path below the hierarchies' root)."""
    cid = new_id("sd")
    bundle.config["linux"]["cgroupsPath"] = f"{slice_}:{prefix}:{cid}"
    unit = f"{prefix}-{cid}.scope"
    rt.units.append(unit)
    return cid, unit, S.unit_cgroup(slice_, unit)


@needs_systemd
def test_unit_limits_update_reload_delete(srt, bundle):
    cid, unit, cg = systemd_bundle(bundle, srt)
    bundle.config["linux"]["resources"].update(
        {
            "memory": {"limit": 64 * MiB},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
            "pids": {"limit": 50},
        }
    )
    bundle.set_args("sleep", "1000")
    p = srt.run(cid, bundle, "-d")
    assert p.returncode == 0, p.stderr
    pid = srt.state_json(cid)["pid"]
    cpu = cpu_value(512, cg, srt)

    names = [prop(w) for w in ("memory", "cpu", "pids", "quota", "period", "cpus")]
    s = show(unit, "Slice", "ControlGroup", "Delegate", "ActiveState", *names)
    assert s["Slice"] == "system.slice" and s["ControlGroup"] == f"/system.slice/{unit}", s
    assert s["Delegate"] == "yes" and s["ActiveState"] == "active", s
    assert [s[n] for n in names] == [str(64 * MiB), cpu, "50", "500ms", "100ms", "0"], s
    assert str(pid) in read(cg_file(cg, "procs")).split()
    assert proc_cgroup(pid) == cg

    def files():
        quota = (
            read(cg_file(cg, "quota")) if V2 else " ".join((read(cg_file(cg, "quota")), read(cg_file(cg, "period"))))
        )
        return [read(cg_file(cg, w)) for w in ("memory", "cpu", "pids", "cpus")] + [quota]

    assert files() == [str(64 * MiB), cpu, "50", "0", "50000 100000"]

    systemctl("daemon-reload")
    assert files() == [str(64 * MiB), cpu, "50", "0", "50000 100000"], "daemon-reload undid a limit"

    p = srt(
        "update", "--memory", str(128 * MiB), "--pids-limit", "80", "--cpu-share", "2048", "--cpu-quota", "30000", cid
    )
    assert p.returncode == 0, p.stderr
    cpu = cpu_value(2048, cg, srt)
    s = show(unit, *names)
    assert [s[n] for n in names] == [str(128 * MiB), cpu, "80", "300ms", "100ms", "0"], s
    assert files() == [str(128 * MiB), cpu, "80", "0", "30000 100000"]
    systemctl("daemon-reload")
    assert files() == [str(128 * MiB), cpu, "80", "0", "30000 100000"], "daemon-reload undid an update"

    # the rest works on the unit's cgroup through the files
    assert srt("pause", cid).returncode == 0
    assert read(cg_file(cg, "freeze")) == FROZEN and srt.status(cid) == "paused"
    assert srt("resume", cid).returncode == 0
    assert read(cg_file(cg, "freeze")) == THAWED and srt.status(cid) == "running"
    p = srt("exec", "-d", cid, "sleep", "999")
    assert p.returncode == 0, p.stderr
    wait_for(lambda: len(read(cg_file(cg, "procs")).split()) == 2)
    # the exec'd process is in the scope in every hierarchy
    p = srt("exec", cid, "cat", "/proc/self/cgroup")
    assert p.returncode == 0, p
    lines = p.stdout.split()
    assert lines and all(line.endswith(f"/system.slice/{unit}") for line in lines), p
    p = srt("ps", "--format", "json", cid)
    assert p.returncode == 0 and pid in json.loads(p.stdout) and len(json.loads(p.stdout)) == 2
    p = srt("events", "--stats", cid)
    assert p.returncode == 0, p.stderr
    ev = json.loads(p.stdout)
    assert ev["type"] == "stats" and ev["data"]["memory"]["usage"]["usage"] > 0
    assert ev["data"]["pids"]["current"] == 2
    assert srt.kill(cid, "KILL", all=True).returncode == 0
    wait_for(lambda: srt.status(cid) == "stopped")

    p = srt.delete(cid)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: unit_gone(unit), timeout=10)
    assert cg_gone(cg), [d for d in cg_dirs(cg) if os.path.exists(d)]


@needs_systemd
def test_delete_force_running_stops_unit(srt, bundle):
    cid, unit, cg = systemd_bundle(bundle, srt)
    bundle.set_args("sleep", "1000")
    assert srt.run(cid, bundle, "-d").returncode == 0
    assert show(unit, "ActiveState")["ActiveState"] == "active"
    p = srt.delete(cid, force=True)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: unit_gone(unit), timeout=10)
    assert cg_gone(cg)


@needs_systemd
def test_failed_create_leaves_no_unit(srt, bundle):
    cid, unit, cg = systemd_bundle(bundle, srt)
    # fails after the cgroup exists: the hook runs once the init is in it
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    bundle.set_args("sleep", "1000")
    p = srt.create(cid, bundle)
    assert p.returncode != 0
    wait_for(lambda: unit_gone(unit), timeout=10)
    assert cg_gone(cg), [d for d in cg_dirs(cg) if os.path.exists(d)]
    assert unit not in systemctl("list-units", "--all", "--no-legend")


@needs_systemd
def test_dashed_slice_nests(srt, bundle):
    pod = "pod" + new_id("")[-8:].replace("-", "")
    slice_ = f"kubepods-besteffort-{pod}.slice"
    srt.slices += [slice_, "kubepods-besteffort.slice", "kubepods.slice"]
    cid, unit, cg = systemd_bundle(bundle, srt, slice_=slice_, prefix="cri-containerd")
    bundle.set_args("sleep", "1000")
    p = srt.run(cid, bundle, "-d")
    assert p.returncode == 0, p.stderr
    want = f"/kubepods.slice/kubepods-besteffort.slice/{slice_}/{unit}"
    s = show(unit, "Slice", "ControlGroup", "Delegate")
    assert s == {"Slice": slice_, "ControlGroup": want, "Delegate": "yes"}, s
    assert cg == want and all(os.path.isdir(d) for d in cg_dirs(cg))
    pid = srt.state_json(cid)["pid"]
    assert proc_cgroup(pid) == want
    assert srt.delete(cid, force=True).returncode == 0
    wait_for(lambda: unit_gone(unit), timeout=10)


@needs_systemd
def test_default_unit_name(srt, bundle):
    bundle.config["linux"].pop("cgroupsPath")
    cid = new_id("sd")
    unit = ("runc" if srt.path == RUNC else "pyrunc") + f"-{cid}.scope"
    srt.units.append(unit)
    bundle.set_args("sleep", "1000")
    assert srt.run(cid, bundle, "-d").returncode == 0
    s = show(unit, "Slice", "ControlGroup")
    assert s == {"Slice": "system.slice", "ControlGroup": f"/system.slice/{unit}"}, s
    assert srt.delete(cid, force=True).returncode == 0
    wait_for(lambda: unit_gone(unit), timeout=10)


@needs_systemd
@pytest.mark.skipif(probe_device() is None, reason="no character device to check device rules with")
def test_annotations_and_devices(srt, bundle):
    cid, unit, cg = systemd_bundle(bundle, srt)
    bundle.config["annotations"] = {
        "org.systemd.property.TimeoutStopUSec": "uint64 123456789",
        "org.systemd.property.CollectMode": "'inactive-or-failed'",
    }
    # mknod allowed by the capabilities: only the device rules refuse it
    for caps in bundle.config["process"]["capabilities"].values():
        caps.append("CAP_MKNOD")
    bundle.set_args("sleep", "1000")
    p = srt.run(cid, bundle, "-d")
    assert p.returncode == 0, p.stderr
    s = show(unit, "TimeoutStopUSec", "CollectMode", "DevicePolicy", "DeviceAllow")
    assert s["TimeoutStopUSec"] == "2min 3.456789s" and s["CollectMode"] == "inactive-or-failed", s
    assert s["DevicePolicy"] == "strict", s
    # v2: systemd's own device program and ours both let the default devices
    # through, also after a daemon-reload re-attached systemd's; denied ones
    # stay denied.  v1: a daemon-reload rewrites the devices list from the
    # unit's properties ("allow all" without them).
    systemctl("daemon-reload")
    dev = probe_device()
    probe = f"mknod /dev/probe0 c {dev[0]} {dev[1]} && echo mknod-ok; (exec 3</dev/probe0) && echo open-allowed"
    p = srt("exec", cid, "sh", "-c", "echo x > /dev/null && head -c1 /dev/urandom >/dev/null && echo ok; " + probe)
    assert p.stdout.splitlines()[:2] == ["ok", "mknod-ok"], p
    assert "open-allowed" not in p.stdout, p
    assert srt.delete(cid, force=True).returncode == 0
    wait_for(lambda: unit_gone(unit), timeout=10)


@needs_systemd
@pytest.mark.skipif(probe_device() is None, reason="no character device to check device rules with")
def test_update_device_rules(srt, bundle):
    """update --resources with device rules: the unit's DeviceAllow follows
    (kept across daemon-reload), and a container busy with /dev/null never
    sees it refused while systemd rewrites the list (on v1 "deny all, then
    allow each", so the container is frozen meanwhile)."""
    if srt.path == RUNC:
        pytest.skip("runc's update takes no device rules")
    dev = probe_device()
    cid, unit, cg = systemd_bundle(bundle, srt)
    bundle.sh("while :; do echo x > /dev/null || echo refused >> /shared/log; done")
    for caps in bundle.config["process"]["capabilities"].values():
        caps.append("CAP_MKNOD")
    p = srt.run(cid, bundle, "-d")
    assert p.returncode == 0, p.stderr
    probe = f"mknod /dev/probe0 c {dev[0]} {dev[1]}; (exec 3</dev/probe0) && echo open-allowed"
    assert "open-allowed" not in srt("exec", cid, "sh", "-c", probe).stdout
    rules = [{"allow": False, "access": "rwm"}]
    node = f"/dev/char/{dev[0]}:{dev[1]}"
    allow = [{"allow": True, "type": "c", "major": dev[0], "minor": dev[1], "access": "r"}]
    for i in range(4):
        p = srt("update", "--resources", "-", cid, input=json.dumps({"devices": rules + allow * (i % 2 == 0)}))
        assert p.returncode == 0, p.stderr
    assert srt.status(cid) == "running"
    allowed = systemctl("show", unit, "-p", "DeviceAllow")  # one line per entry
    assert node not in allowed, allowed
    p = srt("update", "--resources", "-", cid, input=json.dumps({"devices": rules + allow}))
    assert p.returncode == 0, p.stderr
    allowed = systemctl("show", unit, "-p", "DeviceAllow")  # one line per entry
    assert f"{node} r" in allowed, allowed
    assert not os.path.exists(os.path.join(bundle.shared, "log")), "the container was refused /dev/null"
    # (a daemon-reload on v1 rewrites the list the same way, unfrozen: systemd's
    # doing, with runc as with pyrunc; the rules are checked after it, not the window)
    systemctl("daemon-reload")
    p = srt("exec", cid, "sh", "-c", probe)
    assert "open-allowed" in p.stdout, p
    assert srt.delete(cid, force=True).returncode == 0
    wait_for(lambda: unit_gone(unit), timeout=10)


@needs_systemd
def test_pids_limit_zero(srt, bundle):
    """pids.limit 0 is a limit (runtime-spec 1.3: "a valid limit value ... SHOULD
    be treated as such"): pids.max is 0.  systemd refuses TasksMax=0, so the
    unit gets TasksMax=1 (as with runc >= 1.4), the same limit for a cgroup
    that holds the container's init (no fork succeeds): a daemon-reload
    rewrites pids.max to 1, not to systemd's default."""
    if srt.path == RUNC and runc_version() < (1, 4):
        pytest.skip("this runc takes a pids limit of 0 for no limit (runc < 1.4)")
    cid, unit, cg = systemd_bundle(bundle, srt)
    bundle.config["linux"]["resources"]["pids"] = {"limit": 0}
    bundle.set_args("sleep", "1000")
    p = srt.run(cid, bundle, "-d")
    assert p.returncode == 0, p.stderr
    assert show(unit, "TasksMax")["TasksMax"] == "1"
    assert read(cg_file(cg, "pids")) == ("1" if srt.path == RUNC else "0")
    systemctl("daemon-reload")
    assert read(cg_file(cg, "pids")) in ("0", "1"), "daemon-reload undid the limit"
    p = srt("exec", cid, "sh", "-c", "/bin/true; echo rc=$?")
    assert "rc=0" not in p.stdout, p
    p = srt("update", "--pids-limit", "20", cid)
    assert p.returncode == 0, p.stderr
    assert (show(unit, "TasksMax")["TasksMax"], read(cg_file(cg, "pids"))) == ("20", "20")
    assert srt.delete(cid, force=True).returncode == 0
    wait_for(lambda: unit_gone(unit), timeout=10)


@needs_systemd
def test_delete_resets_a_failed_unit(srt, bundle):
    """A unit that failed (here: its RuntimeMaxSec ran out and the init, PID 1 of
    its namespace, ignored SIGTERM until systemd killed it) lingers as failed;
    delete resets it, so no unit is left."""
    cid, unit, cg = systemd_bundle(bundle, srt)
    bundle.config["annotations"] = {
        "org.systemd.property.RuntimeMaxUSec": "uint64 1000000",
        "org.systemd.property.TimeoutStopUSec": "uint64 500000",
    }
    bundle.set_args("sleep", "1000")
    p = srt.run(cid, bundle, "-d")
    assert p.returncode == 0, p.stderr
    wait_for(lambda: show(unit, "ActiveState")["ActiveState"] == "failed", timeout=20)
    wait_for(lambda: srt.status(cid) == "stopped")
    p = srt.delete(cid)
    assert p.returncode == 0, p.stderr
    if srt.path == RUNC and runc_version() < (1, 2):
        # runc 1.1 stops the unit but leaves it failed (runc >= 1.2 resets it)
        assert show(unit, "ActiveState")["ActiveState"] == "failed"
        return
    wait_for(lambda: unit_gone(unit), timeout=10)
    assert cg_gone(cg), [d for d in cg_dirs(cg) if os.path.exists(d)]


@needs_systemd
def test_unit_name_taken_is_refused(srt, bundle, make_bundle):
    if srt.path == RUNC and runc_version() < (1, 2):
        # runc 1.1 ignores UnitExists and joins the unit (its delete then
        # hangs); runc >= 1.2 refuses, after resetting a failed unit once
        pytest.skip("this runc joins an existing unit (runc < 1.2)")
    cid, unit, d = systemd_bundle(bundle, srt)
    bundle.set_args("sleep", "1000")
    assert srt.run(cid, bundle, "-d").returncode == 0
    other = make_bundle("b2")
    other.config["linux"]["cgroupsPath"] = bundle.config["linux"]["cgroupsPath"]
    other.set_args("sleep", "1000")
    cid2 = new_id("sd")
    p = srt.run(cid2, other, "-d")
    assert p.returncode != 0
    if srt.path != RUNC:
        assert_one_error_line(p, contains="already exists")
    # the first container and its unit are untouched
    assert show(unit, "ActiveState")["ActiveState"] == "active"
    assert srt.status(cid) == "running"
    assert srt.delete(cid, force=True).returncode == 0
    wait_for(lambda: unit_gone(unit), timeout=10)


@needs_systemd
def test_cgroup_manager_flag_selects_systemd(root, bundle):
    rt = Runtime(root, global_args=["--cgroup-manager", "systemd"])
    cid = new_id("sd")
    unit = f"pyrunc-test-{cid}.scope"
    bundle.config["linux"]["cgroupsPath"] = f"system.slice:pyrunc-test:{cid}"
    bundle.set_args("sleep", "1000")
    try:
        p = rt.run(cid, bundle, "-d")
        assert p.returncode == 0, p.stderr
        assert show(unit, "ActiveState")["ActiveState"] == "active"
        assert rt.delete(cid, force=True).returncode == 0
        wait_for(lambda: unit_gone(unit), timeout=10)
    finally:
        rt.cleanup()
        systemctl("stop", unit)


# --- podman with cgroup_manager = "systemd" (the engines image) ----------------------

needs_podman = pytest.mark.skipif(
    not _systemd_pid1() or os.geteuid() != 0 or not shutil.which("podman"),
    reason="needs systemd as PID 1, root and podman: make test-systemd (v2vm --systemd --image engines)",
)


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """podman with all its state in a temporary directory, the systemd cgroup
    manager and a busybox image; everything removed afterwards."""
    d = str(tmp_path_factory.mktemp("podman"))
    rootfs = os.path.join(d, "rootfs")
    make_rootfs(rootfs)
    shutil.rmtree(os.path.join(rootfs, "shared"), ignore_errors=True)
    tar = os.path.join(d, "busybox.tar")
    with tarfile.open(tar, "w") as t:
        for name in sorted(os.listdir(rootfs)):
            t.add(os.path.join(rootfs, name), arcname=name)
    base = [
        "podman",
        "--root",
        f"{d}/root",
        "--runroot",
        f"{d}/run",
        "--tmpdir",
        f"{d}/tmp",
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "systemd",
        "--events-backend",
        "file",
    ]
    os.makedirs(f"{d}/cwd")

    def pm(*args, timeout=120):
        # cwd: conmon writes a file named "oom" into its working directory
        try:
            return subprocess.run(
                [*base, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=f"{d}/cwd"
            )
        except subprocess.TimeoutExpired:
            ps = subprocess.run(["ps", "-eo", "pid,ppid,stat,wchan:24,cmd"], capture_output=True, text=True).stdout
            units = systemctl("list-units", "--all", "--no-legend", "libpod*")
            raise AssertionError(f"podman {' '.join(map(str, args))}: no end in {timeout} s\n{ps}\n{units}") from None

    p = pm("import", tar, "localhost/bb:latest", timeout=300)
    assert p.returncode == 0, p.stderr
    yield pm
    pm("rm", "--all", "--force", "--time", "0")
    pm("system", "reset", "--force")
    shutil.rmtree(d, ignore_errors=True)


@needs_podman
@pytest.mark.timeout(900)  # under emulation a podman run takes 10-20 s
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_podman_systemd_cgroup_manager(podman, runtime):
    """podman's own checklist with its default cgroup manager on systemd hosts:
    podman passes --systemd-cgroup and machine.slice:libpod:ID."""
    name = new_id("pm")
    rt = ["--runtime", runtime]
    try:
        p = podman(
            "run", *rt, "-d", "--name", name, "--memory", "64m", "--pids-limit", "77", "localhost/bb", "sleep", "1000"
        )
        assert p.returncode == 0, p.stderr
        cid = podman("inspect", "--format", "{{.Id}}", name).stdout.strip()
        unit = f"libpod-{cid}.scope"
        d = f"{CG}/machine.slice/{unit}"
        s = show(unit, "Slice", "ControlGroup", "Delegate", "MemoryMax", "TasksMax")
        assert s == {
            "Slice": "machine.slice",
            "ControlGroup": f"/machine.slice/{unit}",
            "Delegate": "yes",
            "MemoryMax": str(64 * MiB),
            "TasksMax": "77",
        }, s
        assert (read(f"{d}/memory.max"), read(f"{d}/pids.max")) == (str(64 * MiB), "77")
        p = podman("exec", name, "sh", "-c", "echo exec-ok")
        assert p.returncode == 0 and p.stdout == "exec-ok\n", p
        assert podman("pause", name).returncode == 0
        assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "paused"
        assert podman("unpause", name).returncode == 0
        p = podman("stats", "--no-stream", "--format", "{{.MemUsage}}", name)
        assert p.returncode == 0 and "67.11MB" in p.stdout, p
        p = podman("update", "--memory", "96m", name)
        assert p.returncode == 0, p.stderr
        assert show(unit, "MemoryMax")["MemoryMax"] == str(96 * MiB)
        systemctl("daemon-reload")
        assert read(f"{d}/memory.max") == str(96 * MiB)
        p = podman("run", *rt, "--rm", "localhost/bb", "sh", "-c", "exit 3")
        assert p.returncode == 3, p.stderr
        assert podman("stop", "-t", "0", name).returncode == 0
        assert podman("rm", name).returncode == 0
        wait_for(lambda: unit_gone(unit), timeout=10)
        p = podman("run", *rt, "--rm", "localhost/bb", "/nonexistent")
        assert p.returncode == 127, p.stderr
        for _ in range(3):
            assert podman("run", *rt, "--rm", "localhost/bb", "true").returncode == 0
        left = systemctl("list-units", "--all", "--no-legend", "libpod-*")
        assert "libpod-" not in left, left
    finally:
        podman("rm", "--force", "--time", "0", name)


# --- containerd (ctr) with the runc shim's systemd cgroup option ----------------------

needs_containerd = pytest.mark.skipif(
    not _systemd_pid1() or os.geteuid() != 0 or not shutil.which("ctr") or not shutil.which("containerd"),
    reason="needs systemd as PID 1, root and containerd: make test-systemd (v2vm --systemd --image engines)",
)


@pytest.fixture(scope="module")
def ctr(tmp_path_factory):
    """The engines image's containerd (started here, stopped afterwards) with a
    busybox image in a namespace of its own."""
    sys.path.insert(0, os.path.join(REPO, "tests", "integration", "engines"))
    import enginelib as el

    d = str(tmp_path_factory.mktemp("ctr"))
    archive = el.build_oci_archive(d, "localhost/bb:latest", el.build_rootfs_tar(d), ["sh"])
    was_active = systemctl("is-active", "containerd").strip() == "active"
    systemctl("start", "containerd")

    def c(*args, timeout=120):
        return subprocess.run(
            ["ctr", "--namespace", "pyrunc-sd", *map(str, args)], capture_output=True, text=True, timeout=timeout
        )

    p = c("images", "import", "--all-platforms", archive, timeout=300)
    assert p.returncode == 0, p.stderr
    yield c
    c("images", "rm", "localhost/bb:latest")
    if not was_active:
        systemctl("stop", "containerd")
    shutil.rmtree(d, ignore_errors=True)


@needs_containerd
@pytest.mark.timeout(600)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_containerd_ctr_systemd_cgroup(ctr, runtime):
    """ctr run --runc-systemd-cgroup (the shim's SystemdCgroup option) with a
    slice:prefix:name cgroup: unit, limit, exec, pause, kill, removal."""
    cid = new_id("ctr")
    unit = f"ctr-{cid}.scope"
    try:
        p = ctr(
            "run",
            "-d",
            "--runc-binary",
            runtime,
            "--runc-systemd-cgroup",
            "--cgroup",
            f"system.slice:ctr:{cid}",
            "--memory-limit",
            64 * MiB,
            "localhost/bb:latest",
            cid,
            "sleep",
            "1000",
        )
        assert p.returncode == 0, p.stderr
        s = show(unit, "Slice", "ControlGroup", "Delegate", "MemoryMax", "ActiveState")
        assert s == {
            "Slice": "system.slice",
            "ControlGroup": f"/system.slice/{unit}",
            "Delegate": "yes",
            "MemoryMax": str(64 * MiB),
            "ActiveState": "active",
        }, s
        assert read(f"{CG}/system.slice/{unit}/memory.max") == str(64 * MiB)
        p = ctr("task", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo exec-ok")
        assert p.returncode == 0 and p.stdout == "exec-ok\n", p
        assert ctr("task", "pause", cid).returncode == 0
        assert "PAUSED" in ctr("task", "ls").stdout
        assert ctr("task", "resume", cid).returncode == 0
        assert ctr("task", "kill", "-s", "KILL", cid).returncode == 0
        wait_for(lambda: "STOPPED" in ctr("task", "ls").stdout, timeout=30)
        assert ctr("task", "rm", cid).returncode == 0
        wait_for(lambda: unit_gone(unit), timeout=10)
    finally:
        ctr("task", "rm", "--force", cid)
        ctr("container", "rm", cid)
        systemctl("stop", unit)


# --- rootless: the user's systemd instance (make test-rootless: v2vm --user) ---------


def _user_systemd() -> bool:
    return (
        _systemd_pid1()
        and os.geteuid() != 0
        and os.path.exists(CG + "/cgroup.controllers")
        and bool(os.environ.get("DBUS_SESSION_BUS_ADDRESS"))
    )


needs_user_systemd = pytest.mark.skipif(
    not _user_systemd(),
    reason="needs an unprivileged user's systemd session on cgroup v2 with systemd as PID 1: "
    "make test-rootless (v2vm --systemd --user)",
)


def user_systemctl(*args) -> str:
    return subprocess.run(["systemctl", "--user", *args], capture_output=True, text=True, timeout=60).stdout


def user_show(unit: str, *props: str) -> dict:
    out = user_systemctl("show", unit, "-p", ",".join(props))
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def user_unit_gone(unit: str) -> bool:
    s = user_show(unit, "LoadState", "ActiveState")
    return s.get("LoadState") == "not-found" and s.get("ActiveState") == "inactive"


def user_manager_cgroup() -> str:
    return (
        user_show("-.slice", "ControlGroup").get("ControlGroup", "")
        or f"/user.slice/user-{os.getuid()}.slice/user@{os.getuid()}.service"
    )


@pytest.fixture(params=RUNTIMES)
def urt(request, root):
    """The runtime under test with --systemd-cgroup, run by the (unprivileged)
    user: its units live in the user's systemd instance."""
    rt = Runtime(root, path=request.param, global_args=["--systemd-cgroup"])
    rt.units = []
    yield rt
    problems = rt.cleanup()
    for unit in rt.units:
        user_systemctl("stop", unit)
        user_systemctl("reset-failed", unit)
    assert not problems, problems


def rootless_bundle(bundle: Bundle, *args) -> Bundle:
    """``bundle`` with pyrunc's ``spec --rootless`` config (the user's ids
    mapped to root, no network namespace, /sys bound)."""
    p = subprocess.run([RUNTIME, "spec", "--rootless"], cwd=bundle.path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    with open(bundle.config_path) as f:
        bundle.config = json.load(f)
    bundle.config["process"]["terminal"] = False
    bundle.set_args(*args)
    return bundle


@needs_user_systemd
def test_rootless_scope_in_the_users_manager(urt, bundle):
    """runc's rootless systemd driver: the scope is made by the user's
    manager in its user.slice, the limits are unit properties of it and in
    the delegated files, kept across the user manager's daemon-reload;
    update, pause, exec, ps, kill --all and delete work; no unit is left."""
    cid = new_id("rl")
    unit = f"pyrunc-test-{cid}.scope"
    urt.units.append(unit)
    rootless_bundle(bundle, "sleep", "1000")
    bundle.config["linux"]["cgroupsPath"] = f"user.slice:pyrunc-test:{cid}"
    bundle.config["linux"]["resources"] = {"memory": {"limit": 64 * MiB}, "pids": {"limit": 50}}
    p = urt.run(cid, bundle, "-d")
    assert p.returncode == 0, p.stderr
    pid = urt.state_json(cid)["pid"]
    cgroup = user_manager_cgroup() + f"/user.slice/{unit}"
    d = CG + cgroup
    s = user_show(unit, "Slice", "ControlGroup", "Delegate", "MemoryMax", "TasksMax", "ActiveState")
    assert s == {
        "Slice": "user.slice",
        "ControlGroup": cgroup,
        "Delegate": "yes",
        "MemoryMax": str(64 * MiB),
        "TasksMax": "50",
        "ActiveState": "active",
    }, s
    assert read(f"/proc/{pid}/cgroup") == "0::" + cgroup
    files = lambda: (read(f"{d}/memory.max"), read(f"{d}/pids.max"))  # noqa: E731
    assert files() == (str(64 * MiB), "50")
    user_systemctl("daemon-reload")
    assert files() == (str(64 * MiB), "50"), "daemon-reload undid a limit"
    p = urt("update", "--memory", str(96 * MiB), "--pids-limit", "60", cid)
    assert p.returncode == 0, p.stderr
    s = user_show(unit, "MemoryMax", "TasksMax")
    assert (s["MemoryMax"], s["TasksMax"]) == (str(96 * MiB), "60"), s
    assert files() == (str(96 * MiB), "60")
    assert urt("pause", cid).returncode == 0
    assert read(f"{d}/cgroup.freeze") == "1" and urt.status(cid) == "paused"
    assert urt("resume", cid).returncode == 0
    assert read(f"{d}/cgroup.freeze") == "0"
    # exec from the login session's scope: the kernel refuses the user the
    # move into the user manager's tree; systemd makes it (pyrunc), runc 1.1
    # leaves the process outside the container's cgroup
    p = urt("exec", "-d", cid, "sleep", "999")
    assert p.returncode == 0, p.stderr
    if urt.path != RUNC:
        wait_for(lambda: len(read(f"{d}/cgroup.procs").split()) == 2)
        p = urt("ps", "--format", "json", cid)
        assert p.returncode == 0 and len(json.loads(p.stdout)) == 2, p
    assert urt.kill(cid, "KILL", all=True).returncode == 0
    wait_for(lambda: urt.status(cid) == "stopped")
    p = urt.delete(cid)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: user_unit_gone(unit), timeout=10)
    assert not os.path.exists(d)


@needs_user_systemd
def test_rootless_default_unit_and_force_delete(urt, bundle):
    """No cgroupsPath: <runtime>-<id>.scope in the user manager's user.slice."""
    cid = new_id("rl")
    unit = ("runc" if urt.path == RUNC else "pyrunc") + f"-{cid}.scope"
    urt.units.append(unit)
    rootless_bundle(bundle, "sleep", "1000")
    bundle.config["linux"].pop("cgroupsPath", None)
    p = urt.run(cid, bundle, "-d")
    assert p.returncode == 0, p.stderr
    s = user_show(unit, "Slice", "ControlGroup")
    assert s == {"Slice": "user.slice", "ControlGroup": user_manager_cgroup() + f"/user.slice/{unit}"}, s
    assert urt.delete(cid, force=True).returncode == 0
    wait_for(lambda: user_unit_gone(unit), timeout=10)


@pytest.fixture(scope="module")
def user_podman(tmp_path_factory):
    """Rootless podman as this user with the systemd cgroup manager (the user's
    instance), vfs storage in a temporary directory, a busybox image."""
    if not _user_systemd() or not shutil.which("podman"):
        pytest.skip("needs rootless podman in a systemd user session: make test-rootless")
    d = str(tmp_path_factory.mktemp("upodman"))
    rootfs = os.path.join(d, "rootfs")
    make_rootfs(rootfs)
    shutil.rmtree(os.path.join(rootfs, "shared"), ignore_errors=True)
    tar = os.path.join(d, "busybox.tar")
    with tarfile.open(tar, "w") as t:
        for name in sorted(os.listdir(rootfs)):
            t.add(os.path.join(rootfs, name), arcname=name)
    base = [
        "podman",
        "--root",
        f"{d}/graph",
        "--runroot",
        f"{d}/run",
        "--tmpdir",
        f"{d}/tmp",
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "systemd",
        "--events-backend",
        "file",
    ]
    os.makedirs(f"{d}/cwd")

    def pm(*args, timeout=300):
        return subprocess.run([*base, *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=f"{d}/cwd")

    p = pm("import", tar, "localhost/bb:latest")
    assert p.returncode == 0, p.stderr
    yield pm
    pm("rm", "--all", "--force", "--time", "0")
    # the storage holds files of subordinate ids: removed from podman's namespace
    pm("unshare", "rm", "-rf", f"{d}/graph", f"{d}/run")
    # podman's pause process (catatonit), which keeps its user namespace, is
    # ours: its pid file is in podman's --tmpdir (podman 4.3) or below
    # XDG_RUNTIME_DIR (later podmans)
    for pid_file in (
        f"{d}/tmp/pause.pid",
        os.path.join(os.environ.get("XDG_RUNTIME_DIR", "/nonexistent"), "libpod/tmp/pause.pid"),
    ):
        try:
            with open(pid_file) as f:
                os.kill(int(f.read().strip()), 9)
        except (OSError, ValueError):
            pass
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_rootless_podman_systemd_cgroup_manager(user_podman, runtime):
    """Rootless podman's default on a systemd host: --cgroup-manager systemd.
    The runtime runs as root of podman's user namespace (mapping the user's
    ids only) and reaches the user's manager on the user bus: memory and
    pids limits in the delegated tree, stats, pause, exec, and nothing left
    under the user's slice after rm."""
    podman = user_podman
    name = new_id("upm")
    rt = ["--runtime", runtime]
    try:
        p = podman(
            "run",
            *rt,
            "-d",
            "--name",
            name,
            "--network",
            "none",
            "--memory",
            "64m",
            "--pids-limit",
            "77",
            "localhost/bb",
            "sleep",
            "1000",
        )
        assert p.returncode == 0, p.stderr
        cid = podman("inspect", "--format", "{{.Id}}", name).stdout.strip()
        unit = f"libpod-{cid}.scope"
        s = user_show(unit, "Slice", "ControlGroup", "Delegate", "MemoryMax", "TasksMax")
        cgroup = s.get("ControlGroup", "")
        assert s["Slice"] == "user.slice" and cgroup.startswith(user_manager_cgroup()), s
        assert (s["Delegate"], s["MemoryMax"], s["TasksMax"]) == ("yes", str(64 * MiB), "77"), s
        assert (read(f"{CG}{cgroup}/memory.max"), read(f"{CG}{cgroup}/pids.max")) == (str(64 * MiB), "77")
        p = podman("exec", name, "sh", "-c", "echo exec-ok")
        assert p.returncode == 0 and p.stdout == "exec-ok\n", p
        p = podman("stats", "--no-stream", "--format", "{{.MemUsage}}", name)
        assert p.returncode == 0 and "67.11MB" in p.stdout, p
        assert podman("pause", name).returncode == 0
        assert podman("inspect", "--format", "{{.State.Status}}", name).stdout.strip() == "paused"
        assert read(f"{CG}{cgroup}/cgroup.freeze") == "1"
        assert podman("unpause", name).returncode == 0
        p = podman("run", *rt, "--rm", "--network", "none", "localhost/bb", "sh", "-c", "exit 3")
        assert p.returncode == 3, p.stderr
        assert podman("rm", "--force", "--time", "0", name).returncode == 0
        wait_for(lambda: user_unit_gone(unit), timeout=10)

        def left():  # units (the container's, conmon's) and cgroups named after it
            units = user_systemctl("list-units", "--all", "--no-legend", f"*{cid}*")
            dirs = subprocess.run(
                ["find", CG + user_manager_cgroup(), "-type", "d", "-name", f"*{cid}*"], capture_output=True, text=True
            ).stdout
            return (units + dirs).strip()

        wait_for(lambda: not left(), timeout=20)
        assert not left(), left()
    finally:
        podman("rm", "--force", "--time", "0", name)
