"""Mount setups runc 1.1.5 accepts (issue 17, item 5), run against pyrunc
and runc on the same bundle (``any_rt``, tests/differential.py).

Each test checks what the container sees and what the host keeps: the
rootfs fd-based, symlink-safe handling (docs/rootfs.md) must not refuse
them, and must not let them reach outside the root either.
"""

import os
import shutil
import stat
import subprocess
import tempfile
import uuid

import pytest

from helpers import new_id

UID_MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]
GID_MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def run_ok(rt, bundle, script):
    bundle.sh(script)
    p = rt.run(new_id("mnt"), bundle)
    assert p.returncode == 0, f"{rt.name}: rc={p.returncode} stderr={p.stderr!r} stdout={p.stdout!r}"
    return p.stdout


def mount_of(bundle, dest):
    return next(m for m in bundle.config["mounts"] if m["destination"] == dest)


# --- (a) a dangling symlink as the destination -------------------------------
def test_dangling_symlink_destination_is_created_inside_the_root(any_rt, bundle):
    """/data -> /<unique>/sub (absolute), /etc/rdata -> ../rel/x (relative),
    /fdata -> /<unique>-file (a file bind): the targets are created inside
    the rootfs and mounted there; the symlinks stay; the host is untouched."""
    unique = "dangling-" + uuid.uuid4().hex[:8]
    root = bundle.rootfs
    os.symlink(f"/{unique}/sub", os.path.join(root, "data"))
    os.symlink("../rel/x", os.path.join(root, "etc/rdata"))
    os.symlink(f"/{unique}-file", os.path.join(root, "fdata"))
    with open(os.path.join(bundle.shared, "f"), "w") as f:
        f.write("host-file\n")
    bundle.config["mounts"] += [
        {"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/etc/rdata", "type": "bind", "source": bundle.shared, "options": ["bind"]},
        {
            "destination": "/fdata",
            "type": "bind",
            "source": os.path.join(bundle.shared, "f"),
            "options": ["bind", "ro"],
        },
    ]
    out = run_ok(
        any_rt,
        bundle,
        f"grep -q ' /{unique}/sub ' /proc/self/mountinfo && echo tmpfs-mounted; "
        "echo written > /data/w && cat /data/w; "
        "cat /etc/rdata/f; cat /fdata; "
        "for l in /data /etc/rdata /fdata; do readlink $l; done",
    )
    assert out.splitlines() == [
        "tmpfs-mounted",
        "written",
        "host-file",
        "host-file",
        f"/{unique}/sub",
        "../rel/x",
        f"/{unique}-file",
    ]
    assert os.path.isdir(os.path.join(root, unique, "sub"))
    assert os.path.isdir(os.path.join(root, "rel/x"))
    assert stat.S_ISREG(os.lstat(os.path.join(root, f"{unique}-file")).st_mode)
    for name in ("data", "etc/rdata", "fdata"):
        assert os.path.islink(os.path.join(root, name))
    # the absolute targets were resolved in the root, never on the host
    assert not os.path.lexists(f"/{unique}")
    assert not os.path.lexists(f"/{unique}-file")
    assert os.listdir(os.path.join(root, unique, "sub")) == []  # the tmpfs took the write


def test_dangling_symlink_loop_is_an_error_not_a_hang(any_rt, bundle):
    os.symlink("/loop-b", os.path.join(bundle.rootfs, "loop-a"))
    os.symlink("/loop-a", os.path.join(bundle.rootfs, "loop-b"))
    bundle.config["mounts"].append({"destination": "/loop-a", "type": "tmpfs", "source": "tmpfs"})
    bundle.sh("true")
    p = any_rt.run(new_id("mnt"), bundle)
    assert p.returncode != 0
    assert "Traceback" not in p.stderr


# --- (b) bind sources that only host root can reach ---------------------------
@pytest.fixture
def root_only_source():
    """/tmp/<0700 root dir>/pub/file: pub is world-readable, but only host
    root can get through its parent."""
    d = tempfile.mkdtemp(prefix="rootonly-", dir="/tmp")
    os.chmod(d, 0o700)
    pub = os.path.join(d, "pub")
    os.mkdir(pub, 0o755)
    with open(os.path.join(pub, "file"), "w") as f:
        f.write("only-root-reaches-me\n")
    os.chmod(os.path.join(pub, "file"), 0o644)
    yield pub
    shutil.rmtree(d, ignore_errors=True)


def test_bind_source_reachable_only_by_host_root_in_user_namespace(any_rt, userns_bundle, root_only_source):
    bundle = userns_bundle
    bundle.set_namespace("user")
    bundle.config["linux"]["uidMappings"] = UID_MAP
    bundle.config["linux"]["gidMappings"] = GID_MAP
    # a v1 cgroup mount inside a user namespace is not what is tested here
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    # the mount point exists: container root may not create it in a rootfs owned by host root
    os.mkdir(os.path.join(bundle.rootfs, "src"))
    bundle.config["mounts"].append(
        {"destination": "/src", "type": "bind", "source": root_only_source, "options": ["rbind", "ro"]}
    )
    out = run_ok(any_rt, bundle, "cat /src/file; touch /src/new 2>/dev/null || echo read-only; cat /proc/self/uid_map")
    lines = out.splitlines()
    assert lines[:2] == ["only-root-reaches-me", "read-only"]
    assert lines[2].split() == ["0", "100000", "65536"]  # really in the user namespace
    assert os.listdir(root_only_source) == ["file"]


# --- (c) a read-only /dev ------------------------------------------------------
def test_readonly_dev_tmpfs_still_gets_pts_and_default_devices(any_rt, bundle):
    mount_of(bundle, "/dev")["options"].append("ro")
    bundle.config["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]
    out = run_ok(
        any_rt,
        bundle,
        "awk '$5 == \"/dev\" {print $6}' /proc/self/mountinfo | cut -d, -f1; "
        "touch /dev/x 2>/dev/null || echo dev-read-only; "
        "grep -c ' /dev/pts \\| /dev/shm \\| /dev/mqueue ' /proc/self/mountinfo; "
        "for d in null zero full random urandom tty fuse; do test -c /dev/$d || echo no-$d; done; "
        "readlink /dev/ptmx; test -c /dev/pts/ptmx && echo pts-ok; echo x > /dev/null && echo null-ok",
    )
    assert out.splitlines() == ["ro", "dev-read-only", "3", "pts/ptmx", "pts-ok", "null-ok"]


def test_readonly_root_without_dev_mount(any_rt, bundle):
    """No /dev mount and a read-only root: the devices go into the image's
    /dev before the root is made read-only (both runtimes write there)."""
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/dev"]
    assert bundle.config["root"]["readonly"] is True
    out = run_ok(
        any_rt,
        bundle,
        "touch /dev/x 2>/dev/null || echo read-only; test -c /dev/null && echo null; "
        "grep -q ' /dev/pts ' /proc/self/mountinfo && echo pts; readlink /dev/ptmx",
    )
    assert out.splitlines() == ["read-only", "null", "pts", "pts/ptmx"]
    st = os.lstat(os.path.join(bundle.rootfs, "dev/null"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)


# --- (d) linux.devices entries for what the default setup makes --------------
def test_devices_the_default_setup_also_makes(any_rt, bundle):
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/ptmx", "type": "c", "major": 5, "minor": 2},
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 0, "gid": 5},
        {"path": "/dev/tty", "type": "c", "major": 5, "minor": 0, "fileMode": 0o666},
    ]
    # runc 1.1.5 leaves a /dev/null listed in linux.devices out of its
    # default device-cgroup rules (its init then fails to reopen it): allow it
    bundle.config["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
    )
    out = run_ok(
        any_rt,
        bundle,
        "stat -c '%F %t:%T %a %u:%g' /dev/null /dev/tty; readlink /dev/ptmx; echo x > /dev/null && echo null-ok",
    )
    # the config's mode and owner win over the defaults; /dev/ptmx stays the
    # symlink into the container's devpts
    assert out.splitlines() == [
        "character special file 1:3 640 0:5",
        "character special file 5:0 666 0:0",
        "pts/ptmx",
        "null-ok",
    ]


# --- (e) the host's /proc bound into a container of the host pid namespace ----
def test_host_proc_bind_without_pid_namespace(any_rt, bundle):
    bundle.drop_namespace("pid")
    mount_of(bundle, "/proc").update(type="bind", source="/proc", options=["rbind"])
    out = run_ok(
        any_rt,
        bundle,
        f"stat -c %d /proc; stat -f -c %T /proc; test -d /proc/{os.getpid()} && echo sees-host; "
        "wc -c < /proc/timer_list; touch /proc/sys/x 2>/dev/null || echo sys-ro",
    )
    dev, fstype, *rest = out.split()
    assert int(dev) == os.stat("/proc").st_dev  # the host's procfs itself, not a new mount
    assert fstype == "proc"
    # it shows this test's process, and maskedPaths / readonlyPaths still apply
    assert rest == ["sees-host", "0", "sys-ro"]
    with open("/proc/self/mountinfo") as f:
        assert any(line.split()[4] == "/proc" for line in f)


def test_bind_of_a_non_proc_source_on_proc_is_refused(any_rt, bundle):
    bundle.drop_namespace("pid")
    mount_of(bundle, "/proc").update(type="bind", source="/sys", options=["rbind"])
    bundle.sh("echo started")
    p = any_rt.run(new_id("mnt"), bundle)
    assert p.returncode != 0
    assert "started" not in p.stdout
    assert "not of type proc" in p.stderr


@pytest.fixture
def shared_source():
    """A host directory that is a shared mount, with a tmpfs submount that
    hides a file: what a container's bind of it must not let leak either way."""
    d = tempfile.mkdtemp(prefix="shsrc-", dir="/tmp")
    os.chmod(d, 0o755)
    for sub in ("newmnt", "sub"):
        os.mkdir(os.path.join(d, sub), 0o755)
    with open(os.path.join(d, "sub", "under"), "w") as f:
        f.write("hidden by the submount\n")
    mounted = []
    try:
        for args in (
            ["--bind", d, d],
            ["--make-shared", d],
            ["-t", "tmpfs", "-o", "size=1m", "shsub", os.path.join(d, "sub")],
        ):
            subprocess.run(["mount", *args], check=True, capture_output=True)
            mounted.append(args[-1])
        yield d
    finally:
        for path in reversed(mounted):
            subprocess.run(["umount", "-l", path], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def host_mounts_below(path):
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split()[4] for line in f if line.split()[4].startswith(path + "/"))


def test_user_namespace_bind_stays_a_locked_slave(any_rt, userns_bundle, shared_source):
    """Cloned by host root (1b) or not, a bind in a user-namespace container
    is what the container's root would have made: its submounts are locked
    (umount gives EINVAL, the file under them stays hidden) and mounts the
    container makes below it do not reach the host."""
    bundle = userns_bundle
    bundle.set_namespace("user")
    bundle.config["linux"]["uidMappings"] = UID_MAP
    bundle.config["linux"]["gidMappings"] = GID_MAP
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    os.mkdir(os.path.join(bundle.rootfs, "src"))
    bundle.config["mounts"].append(
        {"destination": "/src", "type": "bind", "source": shared_source, "options": ["rbind"]}
    )
    caps = bundle.config["process"]["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        caps[kind].append("CAP_SYS_ADMIN")
    before = host_mounts_below(shared_source)
    out = run_ok(
        any_rt,
        bundle,
        "umount /src/sub 2>/dev/null && echo unlocked || echo locked; "
        "cat /src/sub/under 2>/dev/null || echo still-hidden; "
        "mount -t tmpfs ctr /src/newmnt && echo mounted; "
        "grep -o ' /src [^-]*' /proc/self/mountinfo | grep -o 'shared:[0-9]*\\|master:[0-9]*'",
    )
    assert out.splitlines()[:3] == ["locked", "still-hidden", "mounted"]
    assert out.splitlines()[3].startswith("master:")  # a slave of the host's mount
    assert host_mounts_below(shared_source) == before
