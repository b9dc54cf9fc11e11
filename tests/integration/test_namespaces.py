"""Namespaces: the eight types created or not, joined by path, user-namespace mappings, time offsets."""

import os
import signal
import subprocess

import pytest

from helpers import new_id, ns_inode, runc_lacks, wait_for

# config type -> /proc/PID/ns name
NS_FILE = {
    "pid": "pid",
    "network": "net",
    "ipc": "ipc",
    "uts": "uts",
    "mount": "mnt",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}
UID_MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]
GID_MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def userns_ready(bundle):
    """Add a user namespace with mappings; drop what cannot work for an unmapped host root."""
    bundle.set_namespace("user")
    bundle.config["linux"]["uidMappings"] = UID_MAP
    bundle.config["linux"]["gidMappings"] = GID_MAP
    # a v1 cgroup mount inside a user namespace is not what is being tested here
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/sys/fs/cgroup"]


def create_sleeper(rt, bundle):
    cid = new_id()
    bundle.set_args("sleep", "100")
    p = rt.create(cid, bundle)
    assert p.returncode == 0, p.stderr
    return cid, rt.state_json(cid)["pid"]


@pytest.mark.parametrize(
    "ns_type",
    [
        "pid",
        "network",
        "ipc",
        "uts",
        "user",
        "cgroup",
        pytest.param("time", marks=runc_lacks("time namespace (runc 1.2+)")),
    ],
)
def test_namespace_created_when_listed(rt, bundle, userns_bundle, ns_type):
    if ns_type == "user":
        bundle = userns_bundle
        userns_ready(bundle)
    else:
        bundle.set_namespace(ns_type)
    cid, pid = create_sleeper(rt, bundle)
    ns = NS_FILE[ns_type]
    if ns == "pid":
        # the init's own pid namespace
        assert ns_inode(pid, ns) != ns_inode("self", ns)
    else:
        assert ns_inode(pid, ns) != ns_inode("self", ns)
    if ns_type == "time":
        assert rt.start(cid).returncode == 0


@pytest.mark.parametrize("ns_type", ["pid", "network", "ipc", "uts", "user", "cgroup", "time"])
def test_namespace_shared_with_host_when_absent(rt, bundle, ns_type):
    bundle.drop_namespace(ns_type)
    if ns_type == "uts":
        bundle.config.pop("hostname", None)  # a hostname needs a private UTS namespace
    if ns_type == "network":
        # sysfs cannot be mounted without a private network namespace... bind it instead
        for m in bundle.config["mounts"]:
            if m["destination"] == "/sys":
                m.update(type="bind", source="/sys", options=["rbind", "nosuid", "noexec", "nodev", "ro"])
    cid, pid = create_sleeper(rt, bundle)
    ns = NS_FILE[ns_type]
    if os.path.exists(f"/proc/self/ns/{ns}"):
        assert ns_inode(pid, ns) == ns_inode("self", ns)


@runc_lacks("time namespace (runc 1.2+)")
def test_all_eight_namespaces(rt, userns_bundle):
    bundle = userns_bundle
    userns_ready(bundle)
    for t in ("cgroup", "time"):
        bundle.set_namespace(t)
    cid, pid = create_sleeper(rt, bundle)
    for t, ns in NS_FILE.items():
        assert ns_inode(pid, ns) != ns_inode("self", ns), t
    assert rt.start(cid).returncode == 0
    assert rt.status(cid) == "running"


def test_user_namespace_mappings(rt, userns_bundle):
    bundle = userns_bundle
    userns_ready(bundle)
    bundle.config["linux"]["uidMappings"] = [
        {"containerID": 0, "hostID": 100000, "size": 1000},
        {"containerID": 1000, "hostID": 200000, "size": 1},
    ]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 300000, "size": 65536}]
    bundle.sh("id -u; id -g; cat /proc/self/uid_map; echo ready > /shared/ready; sleep 100")
    cid, pid = create_sleeper(rt, bundle)
    uid_map = [l.split() for l in open(f"/proc/{pid}/uid_map").read().splitlines()]
    gid_map = [l.split() for l in open(f"/proc/{pid}/gid_map").read().splitlines()]
    assert sorted(uid_map) == sorted([["0", "100000", "1000"], ["1000", "200000", "1"]])
    assert gid_map == [["0", "300000", "65536"]]
    # the init runs as container root = host uid 100000
    status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status").read().splitlines())
    assert status["Uid"].split()[0] == "100000"
    assert status["Gid"].split()[0] == "300000"


def test_user_namespace_process_sees_root(rt, userns_bundle):
    bundle = userns_bundle
    userns_ready(bundle)
    bundle.sh("id -u; id -g; grep CapEff /proc/self/status")
    p = rt.run(new_id(), bundle)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[:2] == ["0", "0"]


@runc_lacks("time namespace (runc 1.2+)")
def test_time_namespace_offsets(rt, bundle):
    offset = 10 * 86400
    bundle.set_namespace("time")
    bundle.config["linux"]["timeOffsets"] = {
        "boottime": {"secs": offset, "nanosecs": 0},
        "monotonic": {"secs": offset, "nanosecs": 0},
    }
    bundle.sh("cat /proc/uptime; cat /proc/self/timens_offsets")
    host_before = float(open("/proc/uptime").read().split()[0])
    p = rt.run(new_id(), bundle)
    host_after = float(open("/proc/uptime").read().split()[0])
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    inside = float(lines[0].split()[0])
    assert host_before + offset - 1 <= inside <= host_after + offset + 1
    offsets = {l.split()[0]: l.split()[1:] for l in lines[1:]}
    assert offsets["monotonic"][0] == str(offset)
    assert offsets["boottime"][0] == str(offset)


def test_cgroup_namespace_root(rt, bundle):
    bundle.set_namespace("cgroup")
    bundle.sh("cat /proc/self/cgroup")
    p = rt.run(new_id(), bundle)
    assert p.returncode == 0, p.stderr
    for line in p.stdout.splitlines():
        assert line.split(":", 2)[2] == "/", line


@pytest.fixture
def ns_holder():
    """A process (not ours to outlive the test) holding fresh net, uts and ipc namespaces."""
    proc = subprocess.Popen(
        [
            "unshare",
            "--net",
            "--uts",
            "--ipc",
            "/bin/busybox",
            "sh",
            "-c",
            "hostname held-ns; ip link set lo up 2>/dev/null; exec sleep 1000",
        ]
    )
    try:
        wait_for(
            lambda: (
                os.readlink(f"/proc/{proc.pid}/ns/net") != os.readlink("/proc/self/ns/net")
                and open(f"/proc/{proc.pid}/comm").read().strip() == "sleep"
            ),
            timeout=5,
        )
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_join_network_namespace_by_path(rt, bundle, ns_holder):
    path = f"/proc/{ns_holder}/ns/net"
    bundle.set_namespace("network", path)
    cid, pid = create_sleeper(rt, bundle)
    assert ns_inode(pid, "net") == ns_inode(ns_holder, "net")
    assert ns_inode(pid, "net") != ns_inode("self", "net")
    # the other namespaces are still fresh
    assert ns_inode(pid, "uts") != ns_inode(ns_holder, "uts")


def test_join_network_namespace_sees_its_interfaces(rt, bundle, ns_holder):
    bundle.set_namespace("network", f"/proc/{ns_holder}/ns/net")
    bundle.sh("cat /sys/class/net/lo/operstate; ls /sys/class/net")
    p = rt.run(new_id(), bundle)
    assert p.returncode == 0, p.stderr
    held = sorted(
        subprocess.run(
            ["nsenter", f"--net=/proc/{ns_holder}/ns/net", "ls", "/sys/class/net"], capture_output=True, text=True
        ).stdout.split()
    )
    # sysfs mounted in the joined namespace shows that namespace's devices
    assert sorted(p.stdout.split()[1:]) == held or sorted(p.stdout.split()[1:]) == ["lo"]


def test_join_uts_and_ipc_by_path(rt, bundle, ns_holder):
    bundle.set_namespace("uts", f"/proc/{ns_holder}/ns/uts")
    bundle.set_namespace("ipc", f"/proc/{ns_holder}/ns/ipc")
    bundle.config.pop("hostname", None)
    cid, pid = create_sleeper(rt, bundle)
    assert ns_inode(pid, "uts") == ns_inode(ns_holder, "uts")
    assert ns_inode(pid, "ipc") == ns_inode(ns_holder, "ipc")
    assert rt.start(cid).returncode == 0


def test_join_nonexistent_namespace_path_fails(rt, bundle):
    bundle.set_namespace("network", "/proc/999999999/ns/net")
    bundle.set_args("true")
    p = rt.create(new_id(), bundle)
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    assert os.listdir(rt.root) == []


def test_join_wrong_namespace_type_fails(rt, bundle, ns_holder):
    bundle.set_namespace("network", f"/proc/{ns_holder}/ns/uts")
    bundle.set_args("true")
    p = rt.create(new_id(), bundle)
    assert p.returncode == 1
    assert "Traceback" not in p.stderr
    assert os.listdir(rt.root) == []
