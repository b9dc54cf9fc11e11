"""`pyrunc validate [--bundle DIR | FILE] [--host-specific]` (issue 3 item 4).

The CLI tests drive the real binary on this host; the expected host
problems are derived from what this host really lacks (read the same way
a user would: /proc, /sys), so they hold on cgroup v1 and v2 machines.
The rule tests feed made-up HostFacts to pyrunc.config.host.
"""

import json
import os
import subprocess

import pytest

from helpers import RUNTIME, default_config
from pyrunc.config.host import HostFacts, host_problems, parse_cpu_list


def validate(*args, cwd=None):
    proc = subprocess.run([RUNTIME, "validate", *map(str, args)], capture_output=True, text=True, timeout=30, cwd=cwd)
    return proc.returncode, proc.stdout.splitlines(), proc.stderr


@pytest.fixture
def make(tmp_path):
    """make(config, name) -> a bundle dir holding config.json and an empty rootfs."""

    def make_bundle(config, name="b"):
        path = tmp_path / name
        path.mkdir()
        (path / "rootfs").mkdir()
        (path / "config.json").write_text(json.dumps(config))
        return path

    return make_bundle


def valid_config():
    cfg = default_config()
    cfg["ociVersion"] = "1.3.0"
    return cfg


# --------------------------------------------------------------------------
# CLI forms and exit codes


def test_valid_bundle_exits_0_with_and_without_host_checks(make):
    b = make(valid_config())
    for extra in ((), ("--host-specific",)):
        rc, out, err = validate("--bundle", b, *extra)
        assert (rc, out, err) == (0, [f"{b}/config.json: valid"], ""), extra


def test_forms_bundle_flag_positional_dir_file_and_config_flag(make, tmp_path):
    b = make(valid_config())
    other = tmp_path / "other.json"
    other.write_text(json.dumps(valid_config()))
    assert validate(b)[0] == 0  # positional bundle dir
    assert validate(b / "config.json")[0] == 0  # positional file
    assert validate("--bundle", b, "-f", other)[0] == 0  # file judged with the bundle's root
    assert validate(cwd=b)[0] == 0  # default: the current directory
    assert validate("--host-specific", cwd=b)[0] == 0


def test_every_problem_one_line_exit_1(make):
    cfg = valid_config()
    cfg["process"]["cwd"] = "srv"
    cfg["linux"]["resources"]["memory"] = {"limit": "1g"}
    cfg["linux"]["sysctl"] = {"kernel.hostname": "x"}
    rc, out, err = validate("--bundle", make(cfg))
    assert rc == 1 and err == ""
    assert len(out) == 3, out
    assert all(line.startswith("config.json: ") for line in out), out
    assert any(line.startswith("config.json: process.cwd: ") for line in out)
    assert any('linux.resources.memory.limit: "1g" is not of type integer' in line for line in out)


def test_missing_bundle_and_bad_json(tmp_path):
    rc, out, _ = validate("--bundle", tmp_path / "nope")
    assert rc == 1 and len(out) == 1 and "not a directory" in out[0]
    (tmp_path / "config.json").write_text('{\n  "ociVersion": 1.0,\n  oops\n}')
    (tmp_path / "rootfs").mkdir()
    rc, out, _ = validate("--host-specific", tmp_path)
    assert rc == 1 and len(out) == 1 and "invalid JSON at line 3" in out[0], out


def test_usage_errors(make):
    b = make(valid_config())
    for argv in ((b, b), ("--bundle", b, b / "config.json"), ("--bogus",)):
        rc, out, err = validate(*argv)
        assert rc == 1 and out == [], (argv, rc, out, err)  # the problem is on stderr, not stdout
        assert len(err.strip().splitlines()) == 1, err


# --------------------------------------------------------------------------
# host-specific problems, on this real host


def host_lacks_v1_controller():
    facts = HostFacts.probe()
    if facts.cgroup_version != 1:
        return None
    for field, controller in (
        (("hugepageLimits",), "hugetlb"),
        (("network", "classID"), "net_cls"),
        (("network", "priorities"), "net_prio"),
        (("rdma",), "rdma"),
    ):
        if controller not in facts.controllers:
            return field, controller
    return None


def test_host_specific_reports_what_this_host_lacks(make, tmp_path):
    cfg = valid_config()
    cfg["mounts"].append(
        {"destination": "/data", "type": "bind", "source": str(tmp_path / "gone"), "options": ["rbind"]}
    )
    cfg["mounts"].append({"destination": "/x", "type": "nosuchfs0", "source": "none"})
    plain_file = tmp_path / "not-executable"
    plain_file.write_text("#!/bin/sh\n")
    plain_file.chmod(0o644)
    cfg["hooks"] = {"prestart": [{"path": str(tmp_path / "no-hook")}], "poststop": [{"path": str(plain_file)}]}
    cfg["linux"]["sysctl"] = {"net.ipv4.no_such_sysctl": "1"}
    cfg["linux"]["netDevices"] = {"pyrnodev0": {}}
    cfg["linux"]["resources"]["cpu"] = {"cpus": "0-4095"}
    cfg["process"]["execCPUAffinity"] = {"initial": "4095"}
    b = make(cfg)

    rc, plain, _ = validate("--bundle", b)
    assert (rc, plain) == (0, [f"{b}/config.json: valid"])  # spec-valid
    rc, out, err = validate("--bundle", b, "--host-specific")
    assert rc == 1 and err == "", err
    fields = [line.split(": ")[1] for line in out]
    assert fields == [
        "mounts[7].source",
        "mounts[8].type",
        "hooks.prestart[0].path",
        "hooks.poststop[0].path",
        "linux.resources.cpu.cpus",
        "process.execCPUAffinity.initial",
        'linux.sysctl["net.ipv4.no_such_sysctl"]',
        "linux.netDevices.pyrnodev0",
    ], out
    text = "\n".join(out)
    assert "the bind source does not exist" in text
    assert '"nosuchfs0" is not a filesystem this kernel knows' in text
    assert 'no-hook" does not exist on this host' in text
    assert 'not-executable" is not an executable file' in text
    assert "not online on this host" in text
    assert "no such network interface on this host" in text
    assert "is not a sysctl of this kernel" in text


def test_host_specific_missing_cgroup_controller(make):
    lacking = host_lacks_v1_controller()
    if lacking is None:
        pytest.skip("this host mounts every cgroup v1 controller the test knows (or is v2)")
    field, controller = lacking
    cfg = valid_config()
    res = cfg["linux"]["resources"]
    value = {"hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}], "rdma": {"mlx4_0": {"hcaHandles": 1}}}.get(
        field[0]
    )
    if field[0] == "network":
        res["network"] = {"classID": 1} if field[1] == "classID" else {"priorities": [{"name": "lo", "priority": 1}]}
    else:
        res[field[0]] = value
    rc, out, _ = validate("--host-specific", make(cfg))
    wanted = "config.json: linux.resources.%s: needs the %s controller" % (".".join(field), controller)
    assert rc == 1 and any(line.startswith(wanted) for line in out), out


def test_host_specific_unified_on_v1(make):
    if HostFacts.probe().cgroup_version != 1:
        pytest.skip("cgroup v2 host: unified is applicable")
    cfg = valid_config()
    cfg["linux"]["resources"]["unified"] = {"memory.high": "1000000"}
    rc, out, _ = validate("--host-specific", make(cfg))
    assert rc == 1 and out == [
        "config.json: linux.resources.unified: cgroup v2 settings cannot be applied: "
        "this host uses cgroup v1 (hybrid hierarchies included)"
    ], out


def test_host_specific_devices_bound_in_a_user_namespace(make):
    st = os.stat("/dev/null")
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    cfg = valid_config()
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["devices"] = [
        {"path": "/dev/null", "type": "c", "major": major, "minor": minor},  # the host's: fine
        {"path": "/dev/null", "type": "c", "major": major, "minor": minor + 77},
        {"path": "/dev/pyrunc-no-such-dev", "type": "c", "major": 1, "minor": 3},
    ]
    cfg["linux"]["devices"][1]["path"] = "/dev/zero"
    zero = os.stat("/dev/zero")
    if zero.st_rdev == os.makedev(major, minor + 77):
        pytest.skip("odd device numbers on this host")
    rc, out, _ = validate("--host-specific", make(cfg))
    assert rc == 1, out
    assert out == [
        'config.json: linux.devices[1].path: "/dev/zero": the host\'s node is not device c %d:%d '
        "(it is bound in a user namespace)" % (major, minor + 77),
        'config.json: linux.devices[2].path: "/dev/pyrunc-no-such-dev": in a user namespace the host\'s '
        "node is bound, but this host has none",
    ], out
    # without a user namespace the devices are made with mknod: no host node needed
    cfg["linux"]["namespaces"].pop()
    del cfg["linux"]["uidMappings"], cfg["linux"]["gidMappings"]
    rc, out, _ = validate("--host-specific", make(cfg, "b2"))
    assert rc == 0, out


def test_host_specific_namespace_path(make, tmp_path):
    cfg = valid_config()
    plain = tmp_path / "plain-dir"
    plain.mkdir()
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] not in ("network", "ipc")]
    cfg["linux"]["namespaces"] += [
        {"type": "network", "path": str(tmp_path / "missing")},
        {"type": "ipc", "path": str(plain)},
    ]
    rc, out, _ = validate("--host-specific", make(cfg))
    assert rc == 1
    assert [line.split(": ")[1] for line in out] == ["linux.namespaces[3].path", "linux.namespaces[4].path"], out
    assert "No such file or directory" in out[0] and "is not a namespace file" in out[1]


# --------------------------------------------------------------------------
# the rules, with made-up hosts


def facts(**over):
    base = dict(
        namespaces=["pid", "net", "mnt", "ipc", "uts", "user", "cgroup", "time"],
        cgroup_version=2,
        controllers=["cpu", "cpuset", "memory", "pids", "io", "hugetlb"],
        seccomp={"enabled": True, "archs": ["SCMP_ARCH_X86_64"], "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG"]},
        cap_count=41,
        filesystems=["proc", "tmpfs", "devpts", "mqueue", "sysfs", "cgroup", "cgroup2"],
        online_cpus={0, 1},
        online_nodes={0},
        hugepage_sizes=["2MB"],
        resctrl=False,
        apparmor=False,
        selinux=False,
        max_user_namespaces=100,
    )
    base.update(over)
    return HostFacts(**base)


def lines(cfg, **over):
    return host_problems(cfg, "/nonexistent-bundle", facts(**over))


def test_rules_namespace_kind_missing_from_kernel():
    cfg = valid_config()
    cfg["linux"]["namespaces"].append({"type": "time"})
    assert lines(cfg) == []
    assert lines(cfg, namespaces=["pid", "net", "mnt", "ipc", "uts"]) == [
        'config.json: linux.namespaces[5].type: "time" namespaces are not supported by this kernel '
        "(no /proc/self/ns/time)"
    ]
    cfg["linux"]["namespaces"].append({"type": "user"})
    assert lines(cfg, max_user_namespaces=0) == [
        'config.json: linux.namespaces[6].type: "user": new user namespaces are disabled here '
        "(user.max_user_namespaces is 0)"
    ]


def test_rules_cgroup_versions_and_controllers():
    cfg = valid_config()
    res = cfg["linux"]["resources"]
    res.update(
        {
            "memory": {"limit": 1 << 20},
            "pids": {"limit": 10},
            "blockIO": {"weight": 100},
            "network": {"classID": 7},
            "cpu": {"realtimeRuntime": 1},
        }
    )
    assert lines(cfg, controllers=["memory", "pids", "io", "cpu"]) == [
        "config.json: linux.resources.cpu.realtimeRuntime: cannot be applied on cgroup v2 (this host)",
        "config.json: linux.resources.network.classID: cannot be applied on cgroup v2 (this host)",
    ]
    assert lines(cfg, controllers=["pids", "io", "cpu"])[0] == (
        "config.json: linux.resources.memory: needs the memory controller, which cgroup v2 on this host does not offer"
    )
    v1 = lines(cfg, cgroup_version=1, controllers=["memory", "pids", "cpu", "devices", "net_cls"])
    assert v1 == [
        "config.json: linux.resources.blockIO: needs the blkio controller, which cgroup v1 on this host does not offer"
    ]
    res["unified"] = {"memory.high": "max"}
    assert lines(cfg, cgroup_version=1, controllers=["memory", "pids", "cpu", "devices", "net_cls", "blkio"]) == [
        "config.json: linux.resources.unified: cgroup v2 settings cannot be applied: this host uses "
        "cgroup v1 (hybrid hierarchies included)"
    ]


def test_rules_seccomp_capabilities_hugepages_lsm_resctrl():
    cfg = valid_config()
    cfg["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_AARCH64"],
        "flags": ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
    }
    cfg["process"]["capabilities"]["bounding"].append("CAP_CHECKPOINT_RESTORE")
    cfg["linux"]["resources"]["hugepageLimits"] = [{"pageSize": "1GB", "limit": 0}]
    cfg["process"]["apparmorProfile"] = "docker-default"
    cfg["linux"]["intelRdt"] = {"closID": "x"}
    got = lines(cfg, cap_count=38)
    assert got == [
        'config.json: linux.resources.hugepageLimits[0].pageSize: "1GB" is not a huge page size of this host '
        "(it has 2MB)",
        "config.json: linux.intelRdt: needs resctrl, which is not mounted on this host",
        'config.json: linux.seccomp.architectures[0]: "SCMP_ARCH_AARCH64" is not known to this libseccomp',
        'config.json: linux.seccomp.flags[0]: "SECCOMP_FILTER_FLAG_SPEC_ALLOW" is not supported by this kernel',
        'config.json: process.capabilities.bounding[3]: "CAP_CHECKPOINT_RESTORE" is not known to this kernel '
        "(cap_last_cap is 37)",
        'config.json: process.apparmorProfile: "docker-default" cannot be applied: AppArmor is not enabled '
        "on this host",
    ], got
    assert lines(
        cfg, seccomp={"enabled": False}, cap_count=41, hugepage_sizes=["2MB", "1GB"], resctrl=True, apparmor=True
    ) == [
        "config.json: linux.seccomp: seccomp filters are not available here (needs libseccomp and a kernel "
        "with seccomp filter support)"
    ]


def test_rules_tolerate_wrong_types():
    """The schema layer reports shapes; host rules must not crash on them."""
    cfg = valid_config()
    cfg["linux"]["namespaces"] = [1, {"type": 5}, {"type": "user", "path": 7}]
    cfg["linux"]["resources"] = {"cpu": "x", "memory": [1], "hugepageLimits": "x"}
    cfg["mounts"] = "x"
    cfg["hooks"] = {"prestart": [None, {"path": 3}]}
    cfg["process"]["capabilities"] = {"bounding": [1, None]}
    cfg["linux"]["seccomp"] = {"architectures": "x", "flags": [1]}
    host_problems(cfg, "/", facts())
    host_problems([], "/", facts())
    host_problems({"linux": None, "process": 3}, "/", facts())


def test_cpu_list_parser():
    assert parse_cpu_list("0-3,5") == {0, 1, 2, 3, 5}
    assert parse_cpu_list("") == set()
    assert parse_cpu_list("3-1") is None
    assert parse_cpu_list("a") is None
    assert parse_cpu_list("0-") is None


def test_probe_reads_this_host():
    f = HostFacts.probe()
    assert {"pid", "mnt", "net"} <= f.namespaces
    assert f.cgroup_version in (1, 2)
    with open("/proc/sys/kernel/cap_last_cap") as fh:
        assert f.cap_count == int(fh.read()) + 1
    assert "proc" in f.filesystems and 0 in f.online_cpus
