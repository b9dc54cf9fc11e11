"""Semantic rules of runtime-spec v1.3.0 that the schema cannot express.

Each case starts from a valid config, changes one thing, and expects one
problem line naming the field (and, where given, a phrase of the rule).
"""

import copy
import json
from pathlib import Path

import pytest

from pyrunc.config import semantic
from pyrunc.config.validate import validate_config
from pyrunc.errors import ConfigError

DATA = Path(__file__).resolve().parents[1] / "data" / "validation"


@pytest.fixture
def rich():
    return json.loads((DATA / "rich-config.json").read_text())


@pytest.fixture
def default():
    return json.loads((DATA / "runc-spec-default.json").read_text())


def ns(*kinds, **paths):
    out = [{"type": k} for k in kinds]
    out += [{"type": k, "path": p} for k, p in paths.items()]
    return out


def test_valid_bases_pass(rich, default):
    assert semantic.problems(rich) == []
    assert semantic.problems(default) == []
    validate_config(rich)
    validate_config(default)


def only_problem(doc):
    found = semantic.problems(doc)
    assert len(found) == 1, found
    line = found[0]
    assert "\n" not in line and line.startswith("config.json: ")
    with pytest.raises(ConfigError) as e:
        semantic.check(doc)
    assert str(e.value) == line
    return line


# Each case: (id, mutate(doc), expected path, expected phrase)
def _set(path, value):
    def mutate(doc):
        node = doc
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
        node[path[-1]] = value

    return mutate


def _del(path):
    def mutate(doc):
        node = doc
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]

    return mutate


def _both(*mutations):
    def mutate(doc):
        for m in mutations:
            m(doc)

    return mutate


CASES = [
    # common (spec MUSTs the conformance suite pins stay refused although runc
    # 1.1.5 runs them: non-SemVer ociVersion, empty annotation key, relative
    # masked/readonly paths, errnoRet without an errno action, listenerMetadata
    # without listenerPath; see docs/validation.md)
    ("semver", _set(("ociVersion",), "1.3"), "ociVersion", "not a SemVer"),
    ("semver-leading-zero", _set(("ociVersion",), "1.03.0"), "ociVersion", "not a SemVer"),
    ("annotation-empty-key", _set(("annotations", ""), "x"), 'annotations[""]', "must not be empty"),
    (
        "errnoret-with-allow",
        _set(("linux", "seccomp", "syscalls", 0, "errnoRet"), 1),
        "linux.seccomp.syscalls[0].errnoRet",
        "only allowed with action",
    ),
    (
        "default-errnoret-with-kill",
        _set(("linux", "seccomp", "defaultAction"), "SCMP_ACT_KILL"),
        "linux.seccomp.defaultErrnoRet",
        "only allowed with defaultAction",
    ),
    (
        "listener-metadata-alone",
        _both(_del(("linux", "seccomp", "listenerPath")), _del(("linux", "seccomp", "syscalls", 3))),
        "linux.seccomp.listenerMetadata",
        "listenerPath",
    ),
    ("masked-relative", _set(("linux", "maskedPaths", 0), "proc/kcore"), "linux.maskedPaths[0]", "absolute"),
    ("readonly-relative", _set(("linux", "readonlyPaths", 0), "proc"), "linux.readonlyPaths[0]", "absolute"),
    ("root-missing", _del(("root",)), "root", "required"),
    ("root-empty", _set(("root", "path"), ""), "root.path", "root filesystem"),
    ("hostname-too-long", _set(("hostname",), "h" * 65), "hostname", "longer than 64 bytes"),
    ("domainname-too-long", _set(("domainname",), "\u00e9" * 33), "domainname", "longer than 64 bytes"),
    (
        "hostname-no-uts",
        _both(_set(("linux", "namespaces"), ns("mount", "user", "network", "ipc", "time")), _del(("domainname",))),
        "hostname",
        "uts namespace",
    ),
    # process
    ("process-missing", _del(("process",)), "process", "required"),
    ("cwd-relative", _set(("process", "cwd"), "srv"), "process.cwd", "absolute"),
    ("args-missing", _del(("process", "args")), "process.args", "required"),
    ("args-empty", _set(("process", "args"), []), "process.args", "at least one"),
    ("env-no-equals", _set(("process", "env", 1), "TERM"), "process.env[1]", "NAME=VALUE"),
    ("env-empty-name", _set(("process", "env", 1), "=x"), "process.env[1]", "empty variable name"),
    (
        "rlimit-duplicate",
        _set(("process", "rlimits", 1, "type"), "RLIMIT_NOFILE"),
        "process.rlimits[1].type",
        "duplicates rlimits[0]",
    ),
    (
        "rlimit-unknown",
        _set(("process", "rlimits", 1, "type"), "RLIMIT_FOO"),
        "process.rlimits[1].type",
        "not a Linux resource limit",
    ),
    (
        "rlimit-soft-above-hard",
        _set(("process", "rlimits", 0, "soft"), 5000),
        "process.rlimits[0].soft",
        "greater than hard",
    ),
    (
        "uid-minus-one",
        _set(("process", "user", "uid"), 4294967295),
        "process.user.uid",
        "4294967295 is out of range 0..2147483647",
    ),
    (
        "uid-above-int32",
        _set(("process", "user", "uid"), 2147483648),
        "process.user.uid",
        "2147483648 is out of range 0..2147483647",
    ),
    ("gid-minus-one", _set(("process", "user", "gid"), 4294967295), "process.user.gid", "out of range"),
    (
        "additional-gid-minus-one",
        _set(("process", "user", "additionalGids"), [5, 4294967295]),
        "process.user.additionalGids[1]",
        "4294967295 is out of range 0..2147483647",
    ),
    ("args-nul", _set(("process", "args", 0), "/bin/s\0h"), "process.args[0]", "NUL"),
    ("cwd-nul", _set(("process", "cwd"), "/sr\0v"), "process.cwd", "NUL"),
    ("oom-range", _set(("process", "oomScoreAdj"), 1001), "process.oomScoreAdj", "-1000..1000"),
    ("ioprio-range", _set(("process", "ioPriority", "priority"), 8), "process.ioPriority.priority", "0..7"),
    ("nice-range", _set(("process", "scheduler", "nice"), 20), "process.scheduler.nice", "-20..19"),
    ("sched-priority-non-rt", _set(("process", "scheduler", "priority"), 5), "process.scheduler.priority", "must be 0"),
    (
        "sched-priority-rt",
        _both(_set(("process", "scheduler", "policy"), "SCHED_FIFO"), _set(("process", "scheduler", "priority"), 0)),
        "process.scheduler.priority",
        "1..99",
    ),
    (
        "sched-deadline",
        _both(
            _set(("process", "scheduler", "policy"), "SCHED_DEADLINE"),
            _set(("process", "scheduler", "runtime"), 2000),
            _set(("process", "scheduler", "deadline"), 1000),
        ),
        "process.scheduler.runtime",
        "greater than deadline",
    ),
    ("cpu-affinity", _set(("process", "execCPUAffinity", "final"), "3-1"), "process.execCPUAffinity.final", "CPU list"),
    # mounts
    ("mount-uid-without-gid", _del(("mounts", 1, "gidMappings")), "mounts[1].gidMappings", "uidMappings is set"),
    ("mount-mapping-not-bind", _set(("mounts", 1, "options"), ["ro"]), "mounts[1].uidMappings", "bind mounts"),
    (
        "mount-idmap-no-mappings-no-userns",
        _both(
            _del(("mounts", 1, "uidMappings")),
            _del(("mounts", 1, "gidMappings")),
            _set(("linux", "namespaces"), ns("mount", "uts", "network", "ipc", "time")),
            _del(("linux", "uidMappings")),
            _del(("linux", "gidMappings")),
        ),
        "mounts[1].options",
        "idmap",
    ),
    ("mount-bind-no-source", _del(("mounts", 1, "source")), "mounts[1].source", "needs a source"),
    ("mount-empty-destination", _set(("mounts", 0, "destination"), ""), "mounts[0].destination", "path"),
    (
        "mount-in-proc",
        _set(("mounts", 0), {"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}),
        "mounts[0].destination",
        "inside /proc",
    ),
    (
        "mount-in-proc-dotdot",
        _set(("mounts", 0), {"destination": "/x/../proc/1", "type": "tmpfs", "source": "tmpfs"}),
        "mounts[0].destination",
        "inside /proc",
    ),
    (
        "mount-on-proc-not-procfs",
        _set(("mounts", 0), {"destination": "/proc", "type": "tmpfs", "source": "t"}),
        "mounts[0].destination",
        "proc mount",
    ),
    (
        "mount-no-type",
        _set(("mounts", 0), {"destination": "/mnt", "source": "tmpfs"}),
        "mounts[0].type",
        "not a bind mount",
    ),
    ("mount-destination-nul", _set(("mounts", 0, "destination"), "/x\0y"), "mounts[0].destination", "NUL"),
    (
        "mount-mapping-zero-size",
        _both(_set(("mounts", 1, "uidMappings", 0, "size"), 0)),
        "mounts[1].uidMappings[0].size",
        "greater than zero",
    ),
    # hooks
    ("hook-relative", _set(("hooks", "poststop", 0, "path"), "cleanup.sh"), "hooks.poststop[0].path", "absolute"),
    ("hook-env", _set(("hooks", "prestart", 0, "env", 0), "novalue"), "hooks.prestart[0].env[0]", "NAME=VALUE"),
    # namespaces and mappings
    (
        "ns-duplicate",
        lambda doc: doc["linux"]["namespaces"].append({"type": "pid"}),
        "linux.namespaces[8].type",
        "duplicates namespaces[0]",
    ),
    (
        "ns-relative-path",
        _set(("linux", "namespaces", 1), {"type": "network", "path": "netns/a"}),
        "linux.namespaces[1].path",
        "absolute",
    ),
    (
        "mappings-without-userns",
        _set(("linux", "namespaces"), ns("mount", "uts", "network", "ipc", "time")),
        "linux.uidMappings",
        "user namespace",
    ),
    ("new-userns-without-mappings", _del(("linux", "gidMappings")), "linux.gidMappings", "new user namespace"),
    (
        "mapping-overlap",
        _set(
            ("linux", "uidMappings"),
            [{"containerID": 0, "hostID": 1000, "size": 10}, {"containerID": 5, "hostID": 2000, "size": 10}],
        ),
        "linux.uidMappings[1].containerID",
        "overlaps",
    ),
    (
        "mapping-overflow",
        _set(("linux", "uidMappings", 0, "hostID"), 4294967295),
        "linux.uidMappings[0].size",
        "4294967295",
    ),
    (
        "time-offsets-no-timens",
        _set(("linux", "namespaces"), ns("mount", "uts", "network", "ipc", "user")),
        "linux.timeOffsets",
        "time namespace",
    ),
    (
        "time-offsets-joined-ns",
        _set(("linux", "namespaces", 7), {"type": "time", "path": "/proc/1/ns/time"}),
        "linux.timeOffsets",
        "new time namespace",
    ),
    (
        "time-offsets-clock",
        _set(("linux", "timeOffsets", "realtime"), {"secs": 1}),
        "linux.timeOffsets.realtime",
        "not a clock",
    ),
    (
        "time-offsets-nanos",
        _set(("linux", "timeOffsets", "boottime", "nanosecs"), 1000000000),
        "linux.timeOffsets.boottime.nanosecs",
        "less than",
    ),
    # devices
    ("device-negative", _set(("linux", "devices", 0, "minor"), -3), "linux.devices[0].minor", "negative"),
    (
        "netdevice-no-netns",
        _both(_set(("linux", "namespaces"), ns("mount", "uts", "user", "ipc", "time")), _set(("linux", "sysctl"), {})),
        "linux.netDevices",
        "network namespace",
    ),
    (
        "netdevice-name",
        _set(("linux", "netDevices", "eth1", "name"), "a/b"),
        "linux.netDevices.eth1.name",
        "interface name",
    ),
    # sysctls
    (
        "sysctl-net-no-netns",
        _both(_set(("linux", "namespaces"), ns("mount", "uts", "user", "ipc", "time")), _del(("linux", "netDevices"))),
        'linux.sysctl["net.ipv4.ip_forward"]',
        "network namespace",
    ),
    (
        "sysctl-ipc-no-ipcns",
        _both(
            _set(("linux", "namespaces"), ns("mount", "uts", "user", "network", "time")),
            _set(("linux", "sysctl"), {"kernel.shmmax": "1"}),
        ),
        'linux.sysctl["kernel.shmmax"]',
        "ipc namespace",
    ),
    (
        "sysctl-hostname",
        _set(("linux", "sysctl"), {"kernel.hostname": "x"}),
        'linux.sysctl["kernel.hostname"]',
        "hostname field",
    ),
    ("sysctl-nul", _set(("linux", "sysctl"), {"net.ipv4.\0": "1"}), 'linux.sysctl["net.ipv4.\\u0000"]', "NUL"),
    (
        "sysctl-host-wide",
        _set(("linux", "sysctl"), {"vm.swappiness": "1"}),
        'linux.sysctl["vm.swappiness"]',
        "not namespaced",
    ),
    # cgroups
    ("cgroups-path-colons", _set(("linux", "cgroupsPath"), "a:b"), "linux.cgroupsPath", "systemd form"),
    (
        "cgroup-device-type",
        _set(("linux", "resources", "devices", 1, "type"), "x"),
        "linux.resources.devices[1].type",
        "a, b, c",
    ),
    (
        "cgroup-device-access",
        _set(("linux", "resources", "devices", 1, "access"), "rwx"),
        "linux.resources.devices[1].access",
        "r, w, m",
    ),
    (
        "swappiness",
        _set(("linux", "resources", "memory", "swappiness"), 101),
        "linux.resources.memory.swappiness",
        "0..100",
    ),
    (
        "swap-below-limit",
        _set(("linux", "resources", "memory", "swap"), 1024),
        "linux.resources.memory.swap",
        "less than memory.limit",
    ),
    (
        "burst-above-quota",
        _set(("linux", "resources", "cpu", "burst"), 200000),
        "linux.resources.cpu.burst",
        "greater than cpu.quota",
    ),
    ("cpus-list", _set(("linux", "resources", "cpu", "cpus"), "0-"), "linux.resources.cpu.cpus", "list"),
    (
        "throttle-no-rate",
        _del(("linux", "resources", "blockIO", "throttleReadBpsDevice", 0, "rate")),
        "linux.resources.blockIO.throttleReadBpsDevice[0].rate",
        "required",
    ),
    (
        "rdma-empty",
        _set(("linux", "resources", "rdma", "mlx5_1"), {}),
        "linux.resources.rdma.mlx5_1",
        "hcaHandles or hcaObjects",
    ),
    (
        "unified-traversal",
        _set(("linux", "resources", "unified"), {"../../cgroup.procs": "1"}),
        'linux.resources.unified["../../cgroup.procs"]',
        "cgroup file name",
    ),
    # seccomp
    (
        "notify-without-listener",
        _both(_del(("linux", "seccomp", "listenerPath")), _del(("linux", "seccomp", "listenerMetadata"))),
        "linux.seccomp.listenerPath",
        "SCMP_ACT_NOTIFY",
    ),
    (
        "seccomp-arg-index",
        _set(("linux", "seccomp", "syscalls", 2, "args", 0, "index"), 6),
        "linux.seccomp.syscalls[2].args[0].index",
        "0..5",
    ),
    # other linux
    ("closid", _set(("linux", "intelRdt", "closID"), "../x"), "linux.intelRdt.closID", "resctrl group"),
    (
        "schemata-newline",
        _set(("linux", "intelRdt", "schemata"), ["L3:0=f\nMB:0=1"]),
        "linux.intelRdt.schemata[0]",
        "newlines",
    ),
    ("mempolicy-mode", _del(("linux", "memoryPolicy", "mode")), "linux.memoryPolicy.mode", "required"),
    (
        "mempolicy-local-nodes",
        _set(("linux", "memoryPolicy", "mode"), "MPOL_LOCAL"),
        "linux.memoryPolicy.nodes",
        "must be empty",
    ),
    (
        "mempolicy-bind-no-nodes",
        _del(("linux", "memoryPolicy", "nodes")),
        "linux.memoryPolicy.nodes",
        "at least one node",
    ),
    (
        "mempolicy-flags",
        _set(("linux", "memoryPolicy", "flags"), ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]),
        "linux.memoryPolicy.flags",
        "exclude each other",
    ),
]


@pytest.mark.parametrize("mutate,where,phrase", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(rich, mutate, where, phrase):
    doc = copy.deepcopy(rich)
    mutate(doc)
    line = only_problem(doc)
    assert line.startswith("config.json: %s: " % where), line
    assert phrase in line, line


# What runc 1.1.5 runs and pyrunc therefore accepts with one warning line
# (docs/validation.md, "Refuse, warn or accept: the decisions").  These were
# refused before: that refusal was the bug (issue 17).
WARN_CASES = [
    ("version-major", _set(("ociVersion",), "2.0.0"), "ociVersion", "not a 1.x version"),
    ("version-pre-1.0", _set(("ociVersion",), "0.5.0-dev"), "ociVersion", "not a 1.x version"),
    ("version-missing", _del(("ociVersion",)), "ociVersion", "is missing"),
    ("user-no-uid", _del(("process", "user", "uid")), "process.user.uid", "runs with uid 0"),
    ("device-no-major", _del(("linux", "devices", 0, "major")), "linux.devices[0].major", "0 is used"),
    ("device-relative", _set(("linux", "devices", 0, "path"), "dev/fuse"), "linux.devices[0].path", "absolute"),
    ("device-dotdot", _set(("linux", "devices", 0, "path"), "/dev/../etc/x"), "linux.devices[0].path", '".."'),
    (
        "device-duplicate",
        _set(("linux", "devices", 1, "path"), "/dev/fuse"),
        "linux.devices[1].path",
        "duplicates devices[0]",
    ),
    (
        "device-file-mode-bits",
        _set(("linux", "devices", 0, "fileMode"), 0o4666),
        "linux.devices[0].fileMode",
        "only 0o666 is used",
    ),
    ("cgroups-path-dotdot", _set(("linux", "cgroupsPath"), "/a/../../b"), "linux.cgroupsPath", '"/b"'),
    (
        "weight-device-empty",
        _del(("linux", "resources", "blockIO", "weightDevice", 0, "weight")),
        "linux.resources.blockIO.weightDevice[0]",
        "neither weight nor leafWeight",
    ),
    (
        "device-rule-no-allow",
        _del(("linux", "resources", "devices", 1, "allow")),
        "linux.resources.devices[1].allow",
        "denies",
    ),
    ("pids-no-limit", _set(("linux", "resources", "pids"), {}), "linux.resources.pids.limit", "no pids limit"),
    (
        "seccomp-arg-no-value",
        _del(("linux", "seccomp", "syscalls", 2, "args", 0, "value")),
        "linux.seccomp.syscalls[2].args[0].value",
        "0 is compared",
    ),
    (
        "console-size-no-width",
        _set(("process", "consoleSize"), {"height": 24}),
        "process.consoleSize.width",
        "0 is used",
    ),
    (
        "personality-flags",
        _set(("linux", "personality"), {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}),
        "linux.personality.flags",
        "no personality flag is supported",
    ),
    ("tmpcopyup-not-tmpfs", _set(("mounts", 0, "options"), ["tmpcopyup"]), "mounts[0].options", "only to tmpfs"),
]


@pytest.mark.parametrize("mutate,where,phrase", [c[1:] for c in WARN_CASES], ids=[c[0] for c in WARN_CASES])
def test_warning_rule(rich, mutate, where, phrase):
    doc = copy.deepcopy(rich)
    mutate(doc)
    assert semantic.problems(doc) == []
    warned = semantic.warnings(doc)
    assert len(warned) == 1, warned
    line = warned[0]
    assert "\n" not in line and line.startswith("config.json: %s: " % where), line
    assert phrase in line, line
    got = []
    semantic.check(doc, warn=got.append)  # does not raise, gives the same line
    assert got == warned


def test_valid_bases_have_no_warnings(rich, default):
    assert semantic.warnings(rich) == []
    assert semantic.warnings(default) == []


@pytest.mark.parametrize("path", ["a/../../b", "/a/./b//c/..", "x/..", "../.."])
def test_clean_cgroup_path_stays_inside(path):
    clean = semantic.clean_cgroup_path(path)
    assert ".." not in clean.split("/")
    assert clean.startswith("/") == path.startswith("/")


@pytest.mark.parametrize("uid", [0, 1000, 2147483647])
def test_user_ids_in_range_pass(rich, uid):
    rich["process"]["user"].update(uid=uid, gid=uid, additionalGids=[uid])
    assert semantic.problems(rich) == []


def test_create_without_process_allowed_when_not_required(rich):
    del rich["process"]
    assert semantic.problems(rich, require_process=False) == []
    assert semantic.problems(rich) != []


def test_versions_accepted():
    for v in ("1.0.0", "1.0.2-dev", "1.3.0", "1.3.0+dev", "1.0.0-rc.1+build.5", "1.9.0"):
        assert semantic.parse_semver(v) is not None, v
        assert semantic.parse_semver(v)[0] == 1
    for v in ("1", "1.0", "v1.0.0", "1.0.0-", "1.0.0+", "01.0.0", "1.0.0-01", "1.0.0-a..b", "1.0.0 "):
        assert semantic.parse_semver(v) is None, v


def test_sysctl_slash_form_is_classified(rich):
    rich["linux"]["namespaces"] = ns("mount", "uts", "user", "ipc", "time")
    rich["linux"]["sysctl"] = {"net/ipv4/ip_forward": "1"}
    del rich["linux"]["netDevices"]
    assert "network namespace" in only_problem(rich)


def test_joined_user_namespace_needs_no_mappings(rich):
    rich["linux"]["namespaces"][5] = {"type": "user", "path": "/proc/1/ns/user"}
    del rich["linux"]["uidMappings"]
    del rich["linux"]["gidMappings"]
    assert semantic.problems(rich) == []


def test_relative_mount_destination_is_accepted(rich):
    # deprecated but allowed since runtime-spec 1.2.0 (relative to "/")
    rich["mounts"][0]["destination"] = "proc"
    assert semantic.problems(rich) == []


def test_pipe_device_needs_no_numbers(rich):
    assert rich["linux"]["devices"][1] == {"path": "/dev/pipe0", "type": "p"}
    assert semantic.problems(rich) == []


def test_wrong_types_are_skipped_not_crashed(rich):
    rich["linux"]["namespaces"] = "all"
    rich["process"]["rlimits"] = [1, None, {"type": 3}]
    rich["mounts"] = {"a": 1}
    rich["linux"]["seccomp"]["syscalls"] = [[], {"action": 5, "errnoRet": "x"}]
    for line in semantic.problems(rich):
        assert line.startswith("config.json: ")
    assert semantic.problems("not a dict") == []


def test_every_problem_is_listed(rich):
    rich["process"]["cwd"] = "rel"
    rich["hooks"]["poststop"][0]["path"] = "rel"
    rich["linux"]["namespaces"].append({"type": "pid"})
    found = semantic.problems(rich)
    assert len(found) == 3
    assert [f.split(":")[1].strip() for f in found] == [
        "process.cwd",
        "hooks.poststop[0].path",
        "linux.namespaces[8].type",
    ]


def test_hostname_in_joined_uts_namespace_is_accepted(rich):
    rich["linux"]["namespaces"][3] = {"type": "uts", "path": "/proc/1/ns/uts"}
    assert semantic.problems(rich) == []


def test_null_members_are_dropped_with_a_warning(tmp_path, rich):
    """Go's decoder (runc) leaves a field unset for null: load_config drops
    null members and every later check warns about each one."""
    from pyrunc.config.validate import config_problems, config_warnings, load_config

    rich["linux"]["seccomp"] = None
    rich["process"]["user"]["additionalGids"] = None
    rich["annotations"]["x"] = None
    path = tmp_path / "config.json"
    path.write_text(json.dumps(rich))
    doc = load_config(str(path))
    assert "seccomp" not in doc["linux"] and "additionalGids" not in doc["process"]["user"]
    assert config_problems(doc) == []
    assert config_warnings(doc) == [
        "config.json: annotations.x: null is taken as absent",
        "config.json: linux.seccomp: null is taken as absent",
        "config.json: process.user.additionalGids: null is taken as absent",
    ]


def test_null_required_member_is_missing(tmp_path, rich):
    from pyrunc.config.validate import config_problems, load_config

    rich["process"]["cwd"] = None
    path = tmp_path / "config.json"
    path.write_text(json.dumps(rich))
    assert config_problems(load_config(str(path))) == ["config.json: process.cwd: required property is missing"]


def test_systemd_cgroups_path_is_left_to_create(rich):
    """slice:prefix:name is valid with --systemd-cgroup, which only create knows."""
    rich["linux"]["cgroupsPath"] = "system.slice:pyrunc:c1"
    assert semantic.problems(rich) == [] and semantic.warnings(rich) == []
