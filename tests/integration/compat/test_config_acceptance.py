"""What runc 1.1.5 runs, pyrunc runs (issue 17): same bundle, both runtimes.

Project rule: never refuse what runc accepts unless accepting would break
isolation; where pyrunc is stricter it warns (one log line) and goes on.
docs/validation.md ("Refuse, warn or accept: the decisions") has the table;
each test here checks a decision where it shows: inside the container or
from the host (/proc/<pid>/mountinfo, /proc/<pid>/status), not just the
exit code.  Where pyrunc refuses on purpose the test shows what runc does
and why it is refused.  `pyrunc validate` always gives create's verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

import pytest

import helpers
from helpers import assert_one_error_line, new_id, started, wait_for


def validate(rt, bundle) -> subprocess.CompletedProcess:
    bundle.write()
    return subprocess.run([rt.path, "validate", "--bundle", bundle.path], capture_output=True, text=True)


def warnings(stderr: str) -> list[str]:
    return [json.loads(line.split("msg=", 1)[1]) for line in stderr.splitlines() if "level=warning" in line]


def assert_warns_once(rt, p, field):
    """pyrunc: exactly one warning line, naming *field*; runc: nothing to check."""
    if rt.name != "pyrunc":
        return
    found = warnings(p.stderr)
    assert len(found) == 1 and found[0].startswith(f"config.json: {field}: "), p.stderr


def mountinfo(pid) -> dict[str, list[str]]:
    """mount point -> optional fields (shared:N, master:N, unbindable), as
    the container's mount namespace has them (read from the host)."""
    out = {}
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            fields = line.split()
            out[fields[4]] = fields[6 : fields.index("-")]
    return out


def assert_refused(rt, bundle, contains):
    """pyrunc: validate and create both refuse with the same one line, and
    nothing is left."""
    v = validate(rt, bundle)
    assert v.returncode == 1, v.stdout
    line = assert_one_error_line(rt.create(new_id("ref"), bundle), contains=contains)
    assert json.loads(line.split("msg=", 1)[1]) == v.stdout.splitlines()[0]
    assert os.listdir(rt.root) == []


def run_out(rt, bundle, script) -> subprocess.CompletedProcess:
    bundle.sh(script)
    p = rt.run(new_id("acc"), bundle)
    assert p.returncode == 0, p.stderr
    return p


# --------------------------------------------------------------------------
# rootfsPropagation and mount options: the recursive forms


@pytest.fixture
def shared_mounts(base_dir):
    """make_shared(path): a tmpfs at *path*, shared; returns its peer group.
    All of them are unmounted after the test, before ``base_dir`` is removed
    (hence the dependency: rm --one-file-system skips a mount point and
    left the directory behind)."""
    made = []

    def make_shared(path) -> str:
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "acc", path], check=True)
        made.append(path)
        subprocess.run(["mount", "--make-shared", path], check=True)
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[4] == path:
                    return next(x for x in fields[6:] if x.startswith("shared:")).split(":")[1]
        raise AssertionError(f"{path} not mounted")

    yield make_shared
    for path in reversed(made):
        subprocess.run(["umount", "-R", "-l", path], check=False)


@pytest.fixture
def base_dir():
    d = tempfile.mkdtemp(prefix="acc-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    subprocess.run(["rm", "-rf", "--one-file-system", d], check=False)
    assert not os.path.exists(d), f"{d} left behind"


@pytest.mark.parametrize("mode", ["rslave", "rprivate", "rshared", "runbindable"])
def test_rootfs_propagation_recursive_forms(any_rt, shared_mounts, base_dir, mode):
    """The bundle lives on a shared host mount; a mount the host makes below
    the rootfs after start reaches the container only through a slave "/"."""
    host = os.path.join(base_dir, "host")
    peer = shared_mounts(host)
    bundle = helpers.Bundle(os.path.join(host, "b"), args=("sleep", "1000"))
    bundle.config["linux"]["rootfsPropagation"] = mode
    if any_rt.name == "pyrunc":
        assert validate(any_rt, bundle).returncode == 0
    cid = new_id("prop")
    p = any_rt.create(cid, bundle)
    if any_rt.name == "runc" and mode == "runbindable":
        # runc 1.1.5 makes "/" unbindable before it binds the rootfs onto
        # itself, so its own bind fails; pyrunc applies it after pivot_root
        assert p.returncode == 1 and "invalid argument" in p.stderr
        return
    assert p.returncode == 0, p.stderr
    assert not warnings(p.stderr)
    assert any_rt.start(cid).returncode == 0
    pid = any_rt.state_json(cid)["pid"]
    late = os.path.join(bundle.rootfs, "tmp", "late")
    os.makedirs(late)
    subprocess.run(["mount", "-t", "tmpfs", "late", late], check=True)
    try:
        mi = mountinfo(pid)
    finally:
        subprocess.run(["umount", "-l", late], check=False)
    root = mi["/"]
    if mode == "rslave":
        assert root == [f"master:{peer}"], root
        assert "/tmp/late" in mi, "a slave / receives the host's new mount"
    elif mode == "rprivate":
        assert root == [], root
        assert "/tmp/late" not in mi
    elif mode == "rshared":
        assert "/tmp/late" not in mi  # the rootfs' parent had to be private for pivot_root
        if any_rt.name == "runc":
            # runc 1.1.5 never makes the new / shared again after pivot_root
            assert root == [], root
        else:
            assert len(root) == 1 and root[0].startswith("shared:"), root
    else:
        assert "unbindable" in root, root
        assert all("unbindable" in f for f in mi.values()), "runbindable is recursive"


@pytest.mark.parametrize(
    "root_mode, option, expect, receives",
    [
        ("rshared", "rshared", lambda peer, f: f == [f"shared:{peer}"], True),
        ("rslave", "rslave", lambda peer, f: f == [f"master:{peer}"], True),
        ("rslave", "rprivate", lambda peer, f: f == [], False),
        # the volume's own option wins over a recursive rootfsPropagation
        ("rslave", "rshared", lambda peer, f: f"master:{peer}" in f and any(x.startswith("shared:") for x in f), True),
        ("rshared", "rslave", lambda peer, f: f == [f"master:{peer}"], True),
    ],
    ids=lambda v: v if isinstance(v, (str, bool)) else None,
)
def test_mount_option_recursive_forms(any_rt, shared_mounts, base_dir, bundle, root_mode, option, expect, receives):
    """A bind mount of a shared host directory with an r-form propagation
    option (containerd's CRI writes rslave/rshared for volumes with mount
    propagation) under an r-form rootfsPropagation."""
    vol = os.path.join(base_dir, "vol")
    peer = shared_mounts(vol)
    bundle.config["linux"]["rootfsPropagation"] = root_mode
    bundle.config["mounts"].append({"destination": "/vol", "type": "bind", "source": vol, "options": ["rbind", option]})
    bundle.set_args("sleep", "1000")
    if any_rt.name == "pyrunc":
        assert validate(any_rt, bundle).returncode == 0
    _, pid = started(any_rt, bundle, "sleep", "1000")
    late = os.path.join(vol, "late")
    os.makedirs(late)
    subprocess.run(["mount", "-t", "tmpfs", "late", late], check=True)
    mi = mountinfo(pid)
    assert expect(peer, mi["/vol"]), mi["/vol"]
    assert ("/vol/late" in mi) == receives, sorted(mi)


# --------------------------------------------------------------------------
# personality flags and mounts inside /proc: validate and create agree


def test_personality_flags_are_ignored_with_a_warning(any_rt, bundle):
    bundle.config["linux"]["personality"] = {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}
    bundle.set_args("sleep", "1000")
    if any_rt.name == "pyrunc":
        v = validate(any_rt, bundle)
        assert v.returncode == 0 and "linux.personality.flags" in v.stderr, (v.stdout, v.stderr)
    cid = new_id("pers")
    p = any_rt.create(cid, bundle)
    assert p.returncode == 0, p.stderr
    assert_warns_once(any_rt, p, "linux.personality.flags")
    assert any_rt.start(cid).returncode == 0
    pid = any_rt.state_json(cid)["pid"]
    wait_for(lambda: helpers.exec_done(pid, "sleep"))
    with open(f"/proc/{pid}/personality") as f:
        # no flag applied (runc 1.1.5 ignores linux.personality altogether):
        # ADDR_NO_RANDOMIZE would be 0x0040000
        assert int(f.read(), 16) == 0


@pytest.mark.parametrize("dest", ["/proc/sys", "/proc/sys/kernel", "/proc/acpi"])
def test_tmpfs_inside_proc(any_rt, bundle, dest):
    bundle.config["mounts"].append({"destination": dest, "type": "tmpfs", "source": "tmpfs"})
    bundle.set_args("sleep", "1000")
    cid = new_id("proc")
    if any_rt.name == "runc":
        # runc 1.1.5 lets any non-bind filesystem cover /proc paths; pyrunc
        # refuses all but the lxcfs files, because a mount over /proc/<pid>
        # or /proc/self/attr feeds the runtime something other than the
        # kernel's answers (CVE-2019-16884; runc breaks itself on /proc/1)
        _, pid = started(any_rt, bundle, "sleep", "1000")
        assert dest in mountinfo(pid)
        return
    v = validate(any_rt, bundle)
    assert v.returncode == 1 and "inside /proc" in v.stdout, v.stdout
    p = any_rt.create(cid, bundle)
    line = assert_one_error_line(p, contains="mounts[")
    assert os.listdir(any_rt.root) == []
    assert "/proc" in line


# --------------------------------------------------------------------------
# accepted with a warning: taken as runc takes them


@pytest.mark.parametrize("version", [None, "2.0.0", "0.5.0-dev"], ids=["missing", "2.0.0", "0.5.0-dev"])
def test_missing_or_other_major_oci_version_runs(any_rt, bundle, version):
    if version is None:
        del bundle.config["ociVersion"]
    else:
        bundle.config["ociVersion"] = version
    p = run_out(any_rt, bundle, "echo ran")
    assert p.stdout.split() == ["ran"]
    assert_warns_once(any_rt, p, "ociVersion")


# Spec MUSTs that runc 1.1.5 does not check but pyrunc keeps (the
# conformance suite pins them; docs/validation.md): runc runs these.


@pytest.mark.parametrize("version", ["foo", ""])
def test_non_semver_oci_version(any_rt, bundle, version):
    bundle.config["ociVersion"] = version
    if any_rt.name == "runc":
        assert run_out(any_rt, bundle, "echo ran").stdout.split() == ["ran"]
        return
    assert_refused(any_rt, bundle, "ociVersion")


def test_user_without_ids_runs_as_zero(any_rt, bundle):
    bundle.config["process"]["user"] = {}
    bundle.set_args("sleep", "1000")
    _, pid = started(any_rt, bundle, "sleep", "1000")
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    assert status["Uid"].split() == ["0"] * 4 and status["Gid"].split() == ["0"] * 4


def test_devices_as_runc_makes_them(any_rt, bundle):
    bundle.config["linux"]["devices"] = [
        {"path": "dev/foo", "type": "c", "major": 1, "minor": 3, "fileMode": 0o4746},  # relative, setuid bit
        {"path": "/dev/foo", "type": "c", "major": 1, "minor": 5},  # duplicate: first wins
        {"path": "/dev/../foo", "type": "c", "major": 1, "minor": 5},  # ".." inside the root
        {"path": "/dev/bar", "type": "c"},  # no major/minor: 0:0
    ]
    p = run_out(any_rt, bundle, "stat -c '%n %A %t:%T' /dev/foo /foo /dev/bar")
    assert p.stdout.splitlines() == ["/dev/foo crwxr--rw- 1:3", "/foo crw-rw-rw- 1:5", "/dev/bar crw-rw-rw- 0:0"]
    if any_rt.name == "pyrunc":
        # relative, duplicate, "..", fileMode bits, major, minor
        assert len(warnings(p.stderr)) == 6, p.stderr


def test_relative_masked_and_readonly_paths(any_rt, bundle):
    bundle.config["linux"]["maskedPaths"].append("proc/cmdline")
    bundle.config["linux"]["readonlyPaths"].append("proc/sysvipc")
    bundle.set_args("sleep", "1000")
    if any_rt.name == "runc":
        # runc joins them to the root and applies them
        _, pid = started(any_rt, bundle, "sleep", "1000")
        with open(f"/proc/{pid}/mountinfo") as f:
            mounts = {line.split()[4]: line.split()[5] for line in f}
        assert "/proc/cmdline" in mounts
        assert mounts.get("/proc/sysvipc", "").startswith("ro")
        return
    assert_refused(any_rt, bundle, "linux.maskedPaths")


def test_cgroups_path_with_dotdot_is_cleaned(any_rt, bundle):
    name = bundle.cgroups_path
    bundle.config["linux"]["cgroupsPath"] = f"{name}-x/../{name}"
    bundle.set_args("sleep", "1000")
    _, pid = started(any_rt, bundle, "sleep", "1000")
    with open(f"/proc/{pid}/cgroup") as f:
        paths = [line.rstrip("\n").split(":", 2)[2] for line in f]
    assert any(p.endswith("/" + name) for p in paths), paths
    assert not any(".." in p or p.endswith("-x") for p in paths), paths


@pytest.mark.parametrize(
    "seccomp, field",
    [
        ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}, "linux.seccomp.defaultErrnoRet"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "listenerMetadata": "x"}, "linux.seccomp.listenerMetadata"),
        (
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS", "errnoRet": 1}],
            },
            "linux.seccomp.syscalls[0].errnoRet",
        ),
    ],
    ids=["defaultErrnoRet", "listenerMetadata", "errnoRet"],
)
def test_seccomp_errno_an_action_does_not_take(any_rt, bundle, seccomp, field):
    """The spec: "When the action doesn't support an errno, the runtime MUST
    print and error and fail."  runc 1.1.5 ignores the errno (and the
    metadata) and applies the action."""
    bundle.config["linux"]["seccomp"] = seccomp
    if any_rt.name == "runc":
        p = run_out(any_rt, bundle, "sh -c 'mkdir /dev/shm/d'; echo $?")
        assert p.stdout.split() == ["159" if "syscalls" in seccomp else "0"], p.stdout
        return
    assert_refused(any_rt, bundle, field)


def test_tmpcopyup_on_a_bind_mount_is_ignored(any_rt, bundle):
    with open(os.path.join(bundle.shared, "f"), "w") as f:
        f.write("host\n")
    bundle.config["mounts"].append(
        {"destination": "/b", "type": "bind", "source": bundle.shared, "options": ["rbind", "tmpcopyup"]}
    )
    p = run_out(any_rt, bundle, "cat /b/f; grep -c ' /b ' /proc/self/mountinfo")
    assert p.stdout.split() == ["host", "1"]


def test_empty_annotation_key(any_rt, bundle):
    bundle.config["annotations"] = {"": "x", "k": "v"}
    bundle.set_args("sleep", "1000")
    if any_rt.name == "runc":
        cid, _ = started(any_rt, bundle, "sleep", "1000")
        assert any_rt.state_json(cid)["annotations"] == {"": "x", "k": "v"}
        return
    assert_refused(any_rt, bundle, "annotations")


# --------------------------------------------------------------------------
# refused on purpose although runc runs them: isolation


def test_mappings_without_a_user_namespace(any_rt, bundle):
    bundle.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    bundle.set_args("sleep", "1000")
    if any_rt.name == "runc":
        # runc ignores the mappings: the process is the host's real root,
        # not the uid 100000 the config asked for
        _, pid = started(any_rt, bundle, "sleep", "1000")
        with open(f"/proc/{pid}/status") as f:
            assert next(line for line in f if line.startswith("Uid:")).split()[1] == "0"
        return
    assert validate(any_rt, bundle).returncode == 1
    assert_one_error_line(any_rt.create(new_id("map"), bundle), contains="linux.uidMappings")
    assert os.listdir(any_rt.root) == []


def test_bind_mount_without_source(any_rt, bundle):
    bundle.config["mounts"].append({"destination": "/mnt", "options": ["bind"]})
    if any_rt.name == "runc":
        # runc binds its working directory, the bundle: config.json and the
        # rootfs itself become visible (and writable) in the container
        p = run_out(any_rt, bundle, "ls /mnt")
        assert "config.json" in p.stdout.split()
        return
    assert validate(any_rt, bundle).returncode == 1
    assert_one_error_line(any_rt.create(new_id("bnd"), bundle), contains="mounts[")
    assert os.listdir(any_rt.root) == []


def test_null_members_are_absent(any_rt, bundle):
    """Go's decoder leaves a field unset for null: no seccomp filter, no
    extra groups, as if the members were not there."""
    bundle.config["linux"]["seccomp"] = None
    bundle.config["process"]["user"]["additionalGids"] = None
    bundle.config["process"]["apparmorProfile"] = None
    p = run_out(any_rt, bundle, "grep -E '^(Seccomp|Groups):' /proc/self/status")
    assert [line.split() for line in p.stdout.splitlines()] == [["Groups:"], ["Seccomp:", "0"]]
    if any_rt.name == "pyrunc":
        assert len(warnings(p.stderr)) == 3, p.stderr


def test_device_rule_without_allow_denies(any_rt, bundle):
    """Go's zero value: a rule without "allow" denies.  The node is a loop
    minor nobody attached: an allowed open fails with ENXIO in the driver,
    a denied one with EPERM in the device cgroup, before the driver."""
    bundle.config["linux"]["devices"] = [{"path": "/dev/xb", "type": "b", "major": 7, "minor": 200}]
    bundle.config["linux"]["resources"]["devices"] = [
        {"allow": True, "access": "rwm"},
        {"type": "b", "major": 7, "minor": 200, "access": "r"},
    ]
    p = run_out(any_rt, bundle, "cat /dev/xb 2>&1; true")
    assert "Operation not permitted" in p.stdout, p.stdout
    assert_warns_once(any_rt, p, "linux.resources.devices[1].allow")


def test_pids_without_limit_sets_none(any_rt, bundle):
    bundle.config["linux"]["resources"]["pids"] = {}
    bundle.set_args("sleep", "1000")
    _, pid = started(any_rt, bundle, "sleep", "1000")
    with open(f"/proc/{pid}/cgroup") as f:
        rel = next(line.rstrip("\n").split(":", 2)[2] for line in f if ":pids:" in line)
    mnt = next(m for m in helpers.cgroup_hierarchies() if m.endswith("/pids"))
    with open(os.path.join(mnt, rel.lstrip("/"), "pids.max")) as f:
        assert f.read().strip() == "max"
