"""config-linux.md and runtime-linux.md."""

import json
import os
import socket
import threading

import pytest

from harness import CGROUP_V2, CHECKER, SYSTEMD, cgroup_dir, cgroup_of, cgroup_path, cgroups_path

clause = pytest.mark.clause
CL = "config-linux.md"
RL = "runtime-linux.md"
NS_FILES = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}
ID_MAP = [{"containerID": 0, "hostID": 200000, "size": 65536}]


def rejects(lab, b, what):
    r = lab.create(b)
    assert not r.ok, f"create accepted {what}"
    assert lab.state(b.cid) is None, f"a container exists after rejecting {what}"


def sleeper(lab):
    return lab.bundle(["/bin/sleep", "30"])


# ---------------------------------------------------------------- runtime-linux.md


@clause(RL, "Dev symbolic links", "runtimes MUST create the following symlinks if the source file exists")
def test_dev_symlinks(lab):
    links = {
        "/dev/fd": "/proc/self/fd",
        "/dev/stdin": "/proc/self/fd/0",
        "/dev/stdout": "/proc/self/fd/1",
        "/dev/stderr": "/proc/self/fd/2",
    }
    b = lab.bundle([CHECKER] + [f"stat:{p}" for p in links])
    rep = lab.run_to_exit(b)
    for p, target in links.items():
        st = rep[f"stat:{p}"]
        assert st.get("type") == "symlink" and st.get("target") == target, f"{p}: {st}"


# ---------------------------------------------------------------- filesystems / devices


@clause(CL, "Default Filesystems", "The following filesystems SHOULD be made available in each container's filesystem:")
def test_default_filesystems(lab):
    b = lab.bundle()
    fs = {}
    for line in lab.run_to_exit(b)["mountinfo"].splitlines():
        pre, post = line.split(" - ", 1)
        fs[pre.split()[4]] = post.split()[0]
    want = {"/proc": "proc", "/sys": "sysfs", "/dev/pts": "devpts", "/dev/shm": "tmpfs"}
    assert {k: fs.get(k) for k in want} == want


DEFAULT_DEVICES = {
    "/dev/null": (1, 3),
    "/dev/zero": (1, 5),
    "/dev/full": (1, 7),
    "/dev/random": (1, 8),
    "/dev/urandom": (1, 9),
    "/dev/tty": (5, 0),
}


@clause(CL, "Default Devices", "In addition to any devices configured with this setting, the runtime MUST also supply:")
def test_default_devices(lab):
    b = lab.bundle(
        [CHECKER]
        + [f"stat:{p}" for p in DEFAULT_DEVICES]
        + ["stat:/dev/ptmx", "open-w:/dev/null", "open-r:/dev/urandom"]
    )
    rep = lab.run_to_exit(b)
    for p, (maj, mnr) in DEFAULT_DEVICES.items():
        st = rep[f"stat:{p}"]
        assert (st.get("type"), st.get("major"), st.get("minor")) == ("char", maj, mnr), f"{p}: {st}"
    ptmx = rep["stat:/dev/ptmx"]
    assert ptmx.get("type") == "symlink" or (ptmx.get("type") == "char" and ptmx.get("major") == 5), ptmx
    assert rep["open-w:/dev/null"] == 0 and rep["open-r:/dev/urandom"] == 0, "default devices not usable"


@clause(CL, "Devices", "lists devices that MUST be available in the container.")
def test_configured_device(lab):
    b = lab.bundle([CHECKER, "stat:/dev/oc-zero", "open-r:/dev/oc-zero"])
    b.linux["devices"] = [
        {"path": "/dev/oc-zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640, "uid": 0, "gid": 0}
    ]
    b.linux["resources"]["devices"].append({"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"})
    rep = lab.run_to_exit(b)
    st = rep["stat:/dev/oc-zero"]
    assert (st.get("type"), st.get("major"), st.get("minor"), st.get("mode")) == ("char", 1, 5, 0o640), st
    assert rep["open-r:/dev/oc-zero"] == 0


@clause(
    CL,
    "Devices",
    "If a file already exists at `path` that does not match the requested device, the runtime MUST generate an error.",
)
def test_device_path_conflict(lab):
    b = lab.bundle()
    b.linux["devices"] = [{"path": "/checker", "type": "c", "major": 1, "minor": 5}]
    rejects(lab, b, "a device whose path is an existing regular file")


@clause(CL, "Allowed Device list", "The runtime MUST apply entries in the listed order.")
def test_device_cgroup_rules_in_order(lab):
    """allow rw then deny w on a non-default device (loop-control, 10:237): in listed
    order reads pass and writes are denied."""
    b = lab.bundle([CHECKER, "open-r:/dev/oc-loopctl", "open-w:/dev/oc-loopctl"])
    b.linux["devices"] = [{"path": "/dev/oc-loopctl", "type": "c", "major": 10, "minor": 237, "fileMode": 0o666}]
    b.linux["resources"]["devices"] += [
        {"allow": True, "type": "c", "major": 10, "minor": 237, "access": "rw"},
        {"allow": False, "type": "c", "major": 10, "minor": 237, "access": "w"},
    ]
    rep = lab.run_to_exit(b)
    assert rep["open-r:/dev/oc-loopctl"] == 0, "read was denied although allowed"
    assert rep["open-w:/dev/oc-loopctl"] == 1, "write was allowed although a later rule denied it"


# ---------------------------------------------------------------- namespaces


@pytest.mark.parametrize(
    "ns",
    [
        pytest.param(
            n,
            marks=[
                clause(CL, "Namespaces", "The following namespace types SHOULD be supported:"),
                clause(
                    CL, "Namespaces", "If `path` is not specified, the runtime MUST create a new container namespace"
                ),
            ],
        )
        for n in NS_FILES
    ],
)
def test_new_namespace(lab, ns):
    b = lab.bundle()
    if ns not in [n["type"] for n in b.linux["namespaces"]]:
        b.linux["namespaces"].append({"type": ns})
    if ns == "user":
        b.linux["uidMappings"] = ID_MAP
        b.linux["gidMappings"] = ID_MAP
        b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/sys"]
    rep = lab.run_to_exit(b)
    assert rep["ns"][NS_FILES[ns]] != os.readlink(f"/proc/self/ns/{NS_FILES[ns]}"), f"no new {ns} namespace"


@clause(CL, "Namespaces", "If a namespace type is not specified in the `namespaces` array, the container MUST inherit")
def test_unlisted_namespace_inherited(lab):
    b = lab.bundle()
    b.linux["namespaces"] = [n for n in b.linux["namespaces"] if n["type"] not in ("uts", "ipc")]
    del b.config["hostname"]
    rep = lab.run_to_exit(b)
    assert rep["ns"]["uts"] == os.readlink("/proc/self/ns/uts")
    assert rep["ns"]["ipc"] == os.readlink("/proc/self/ns/ipc")


@clause(CL, "Namespaces", "The runtime MUST place the container process in the namespace associated with that `path`.")
def test_join_namespace_by_path(lab):
    a = sleeper(lab)
    assert lab.create(a).ok
    apid = lab.state(a.cid)["pid"]
    b = lab.bundle()
    for n in b.linux["namespaces"]:
        if n["type"] in ("network", "ipc"):
            n["path"] = f"/proc/{apid}/ns/{NS_FILES[n['type']]}"
    rep = lab.run_to_exit(b)
    assert rep["ns"]["net"] == os.readlink(f"/proc/{apid}/ns/net")
    assert rep["ns"]["ipc"] == os.readlink(f"/proc/{apid}/ns/ipc")


@clause(
    CL, "Namespaces", "The runtime MUST generate an error if `path` is not associated with a namespace of type `type`."
)
def test_namespace_path_wrong_type(lab):
    a = sleeper(lab)
    assert lab.create(a).ok
    apid = lab.state(a.cid)["pid"]
    b = lab.bundle()
    for n in b.linux["namespaces"]:
        if n["type"] == "network":
            n["path"] = f"/proc/{apid}/ns/uts"
    rejects(lab, b, "a network namespace path that is a uts namespace")


@clause(CL, "Namespaces", "This value MUST be an absolute path in the runtime mount namespace.")
def test_namespace_path_must_be_absolute(lab):
    b = lab.bundle()
    for n in b.linux["namespaces"]:
        if n["type"] == "network":
            n["path"] = "proc/self/ns/net"
    rejects(lab, b, "a relative namespace path")


@clause(
    CL,
    "Namespaces",
    "If a `namespaces` field contains duplicated namespaces with same `type`, the runtime MUST generate an error.",
)
def test_duplicate_namespaces(lab):
    b = lab.bundle()
    b.linux["namespaces"].append({"type": "uts"})
    rejects(lab, b, "a duplicated uts namespace")


@clause(CL, "User namespace mappings", "The runtime SHOULD NOT modify the ownership of referenced filesystems")
def test_userns_does_not_chown_rootfs(lab):
    b = lab.bundle()
    b.linux["namespaces"].append({"type": "user"})
    b.linux["uidMappings"] = ID_MAP
    b.linux["gidMappings"] = ID_MAP
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/sys"]
    before = os.stat(b.rootfs / "checker")
    r = lab.create(b)
    assert r.ok, str(r)
    after = os.stat(b.rootfs / "checker")
    assert (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid)
    assert os.stat(b.rootfs).st_uid == 0


# ---------------------------------------------------------------- cgroups


@clause(
    CL,
    "Cgroups Path",
    "In the case of an absolute path (starting with `/`), the runtime MUST take the path to be relative to the cgroups mount point.",
)
def test_absolute_cgroups_path(lab):
    if SYSTEMD:
        pytest.skip("the systemd cgroup driver takes slice:prefix:name, not absolute paths")
    b = sleeper(lab)
    assert lab.create(b).ok
    pid = lab.state(b.cid)["pid"]
    assert cgroup_of(pid, "pids") == b.linux["cgroupsPath"]
    assert os.path.isdir(cgroup_dir("pids", b.linux["cgroupsPath"]))


@clause(CL, "Cgroups Path", "the runtime MUST consistently attach to the same place in the cgroups hierarchy")
def test_cgroups_path_consistent(lab):
    seen = []
    path = cgroups_path(f"shared-{os.getpid()}")
    for _ in range(2):
        b = sleeper(lab)
        b.linux["cgroupsPath"] = path
        assert lab.create(b).ok
        seen.append(cgroup_of(lab.state(b.cid)["pid"], "memory"))
        lab.kill(b.cid, "KILL")
        lab.wait_status(b.cid, "stopped")
        lab.delete(b.cid)
    assert seen == [cgroup_path(path)] * 2


@clause(
    CL, "Cgroup ownership", "Runtimes SHOULD NOT change the ownership of container cgroups when cgroups v1 is in use."
)
def test_cgroup_v1_ownership_unchanged(lab):
    if CGROUP_V2:
        pytest.skip("not a cgroup v1 host")
    b = sleeper(lab)
    b.linux["namespaces"] += [{"type": "user"}, {"type": "cgroup"}]
    b.linux["uidMappings"] = ID_MAP
    b.linux["gidMappings"] = ID_MAP
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/sys"]
    r = lab.create(b)
    assert r.ok, str(r)
    d = cgroup_dir("memory", cgroup_path(b.linux["cgroupsPath"]))
    assert os.stat(d).st_uid == 0 and os.stat(f"{d}/cgroup.procs").st_uid == 0


@clause(CL, "PIDs", "`0` is a valid limit value for the `pids` cgroup controller")
def test_pids_limit_zero(lab):
    b = sleeper(lab)
    b.linux["resources"]["pids"] = {"limit": 0}
    r = lab.create(b)
    assert r.ok, str(r)
    with open(f"{cgroup_dir('pids', cgroup_path(b.linux['cgroupsPath']))}/pids.max") as f:
        assert f.read().strip() == "0", "pids limit 0 was not applied as 0"


@clause(
    CL,
    "Unified",
    "The runtime MUST generate an error when the configuration refers to a cgroup controller that is not present",
)
def test_unified_missing_controller(lab):
    b = sleeper(lab)
    b.linux["resources"]["unified"] = {"oc_nonexistent.max": "1"}
    rejects(lab, b, "a unified key for a controller that does not exist")


@clause(CL, "IntelRdt", "If no mounted `resctrl` pseudo-filesystem is available in the runtime mount namespace")
def test_intel_rdt_without_resctrl(lab):
    if any(line.split()[2] == "resctrl" for line in open("/proc/mounts")):
        pytest.skip("resctrl is mounted here")
    b = sleeper(lab)
    b.linux["intelRdt"] = {"closID": "oc-clos", "l3CacheSchema": "L3:0=f"}
    rejects(lab, b, "intelRdt without a mounted resctrl filesystem")


# ---------------------------------------------------------------- seccomp


def seccomp_base():
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": []}


@clause(
    CL,
    "Seccomp",
    "When the action doesn't support an errno, the runtime MUST print and error and fail.",
    context="defaultErrnoRet",
)
def test_default_errno_with_non_errno_action(lab):
    b = lab.bundle()
    sc = seccomp_base()
    sc["defaultAction"] = "SCMP_ACT_KILL"
    sc["defaultErrnoRet"] = 1
    sc["syscalls"] = [{"names": ["read", "write", "exit", "exit_group"], "action": "SCMP_ACT_ALLOW"}]
    b.linux["seccomp"] = sc
    rejects(lab, b, "defaultErrnoRet with SCMP_ACT_KILL")


@clause(
    CL,
    "Seccomp",
    "When the action doesn't support an errno, the runtime MUST print and error and fail.",
    context="syscalls.errnoRet",
)
def test_errno_with_non_errno_action(lab):
    b = lab.bundle()
    sc = seccomp_base()
    sc["syscalls"] = [{"names": ["acct"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]
    b.linux["seccomp"] = sc
    rejects(lab, b, "errnoRet with SCMP_ACT_KILL")


@clause(CL, "Seccomp", "`names` MUST contain at least one entry.")
def test_seccomp_names_not_empty(lab):
    b = lab.bundle()
    sc = seccomp_base()
    sc["syscalls"] = [{"names": [], "action": "SCMP_ACT_ERRNO"}]
    b.linux["seccomp"] = sc
    rejects(lab, b, "a seccomp rule with no syscall names")


@clause(CL, "Seccomp", "This field MUST NOT be set if `listenerPath` is not set.")
def test_listener_metadata_without_path(lab):
    b = lab.bundle()
    sc = seccomp_base()
    sc["listenerMetadata"] = "oc"
    b.linux["seccomp"] = sc
    rejects(lab, b, "listenerMetadata without listenerPath")


@clause(CL, "Seccomp", "If sending to this socket fails, the runtime MUST generate an error.")
def test_listener_unreachable(lab):
    b = lab.bundle()
    sc = seccomp_base()
    sc["listenerPath"] = str(b.path / "no-such.sock")
    sc["syscalls"] = [{"names": ["acct"], "action": "SCMP_ACT_NOTIFY"}]
    b.linux["seccomp"] = sc
    rejects(lab, b, "a seccomp listenerPath nobody listens on")


@clause(CL, "Seccomp", "This socket MUST use `AF_UNIX` domain and `SOCK_STREAM` type.")
@clause(CL, "Seccomp", "The runtime MUST send exactly one container process state per connection.")
@clause(CL, "Seccomp", "The connection MUST NOT be reused and it MUST be closed after sending a seccomp state.")
@clause(CL, "The Container Process State", "serialized in JSON and file descriptors MUST be sent using `SCM_RIGHTS`.")
@clause(CL, "The Container Process State", "the file descriptors MUST be sent only in the first call.")
def test_seccomp_listener(lab):
    b = sleeper(lab)
    path = str(b.path / "listener.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    srv.settimeout(20)
    got = {}

    def serve():
        try:
            conn, _ = srv.accept()
        except OSError as e:
            got["error"] = str(e)
            return
        conn.settimeout(10)
        payload, fds, calls = b"", [], 0
        while True:
            msg, anc, _flags, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
            if not msg:
                break
            calls += 1
            for level, typ, data in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                    got.setdefault("fd_calls", []).append(calls)
                    fds += list(memoryview(data).cast("i"))
            payload += msg
        got.update(payload=payload, fds=fds)
        for fd in fds:
            os.close(fd)
        conn.close()
        srv.settimeout(1)
        try:
            srv.accept()
            got["second_connection"] = True
        except OSError:
            pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    sc = seccomp_base()
    sc["listenerPath"] = path
    sc["listenerMetadata"] = "oc-meta"
    sc["syscalls"] = [{"names": ["acct"], "action": "SCMP_ACT_NOTIFY"}]
    b.linux["seccomp"] = sc
    try:
        r = lab.create(b)
        assert r.ok, str(r)
        t.join(15)
    finally:
        srv.close()
    assert "payload" in got, f"no connection to the listener: {got}"
    st = json.loads(got["payload"])
    assert st["metadata"] == "oc-meta" and st["fds"] == ["seccompFd"] and st["pid"] > 0
    assert st["state"]["id"] == b.cid
    assert len(got["fds"]) == 1 and got.get("fd_calls") == [1]
    assert not got.get("second_connection"), "the runtime connected twice"


# ---------------------------------------------------------------- masked / readonly paths


@pytest.mark.parametrize(
    "field",
    [
        pytest.param(
            "maskedPaths",
            marks=clause(CL, "Masked Paths", "The values MUST be absolute paths in the container namespace."),
        ),
        pytest.param(
            "readonlyPaths",
            marks=clause(CL, "Readonly Paths", "The values MUST be absolute paths in the container namespace."),
        ),
    ],
)
def test_masked_readonly_paths_absolute(lab, field):
    b = lab.bundle()
    b.linux[field] = ["proc/kcore"]
    rejects(lab, b, f"a relative {field} entry")
