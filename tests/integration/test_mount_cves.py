"""Immunity to the mount-class runtime CVEs (../shared/notes/cves.md), on
real containers driven through the CLI.

Every test plants a hostile image (symlinks at /proc, /sys, /dev, device
nodes, mount destinations, or a racing helper) pointing at a *host
sentinel*: a directory outside the rootfs, plus the host's
/proc/sys/kernel/core_pattern.  A test passes when the runtime refuses the
container with one clear error line, or runs it with the attack confined to
the rootfs; in both cases the sentinel must be untouched and no host mount
may appear below it.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from helpers import assert_one_error_line, new_id, runtime_is_pyrunc

CORE_PATTERN = "/proc/sys/kernel/core_pattern"


def _snapshot(path):
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            data = open(p, "rb").read() if os.path.isfile(p) and not os.path.islink(p) else None
            out[os.path.relpath(p, path)] = (st.st_mode, st.st_size, st.st_mtime_ns, data)
    return out


def _host_mounts_under(path):
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4] == path or line.split()[4].startswith(path + "/")]


@pytest.fixture
def sentinel():
    """A host directory the attacks aim at; checked untouched afterwards."""
    d = tempfile.mkdtemp(prefix="rfs-sentinel-", dir="/tmp")
    os.chmod(d, 0o755)
    with open(os.path.join(d, "canary"), "w") as f:
        f.write("host data\n")
    os.mkdir(os.path.join(d, "dir"))
    before = _snapshot(d)
    with open(CORE_PATTERN) as f:
        core = f.read()
    yield d
    try:
        assert _host_mounts_under(d) == [], "a mount landed in the host sentinel"
        assert _snapshot(d) == before, "the host sentinel was modified"
        with open(CORE_PATTERN) as f:
            assert f.read() == core, "the host core_pattern changed"
    finally:
        for m in reversed(_host_mounts_under(d)):
            subprocess.run(["umount", "-l", m], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def _relative_to_host(rootfs, link_dir, target):
    """A relative symlink value from ``link_dir`` (inside rootfs) that, if
    followed on the host, reaches ``target``."""
    return "../" * (os.path.join(rootfs, link_dir).count("/") + 2) + target.lstrip("/")


def _replace_with_symlink(path, value):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
    os.symlink(value, path)


def _image_dev(bundle):
    """Use the image's /dev (no tmpfs from the config; /dev/pts stays)."""
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/dev"]


def refused_or_confined(p, check_confined=None):
    """The container was refused with one error line, or ran (and then
    ``check_confined(stdout)`` must hold)."""
    if p.returncode != 0:
        assert_one_error_line(p)
        return False
    if check_confined:
        check_confined(p.stdout)
    return True


# ---------------------------------------------------------------------------
# CVE-2019-19921 / CVE-2023-27561 / CVE-2023-28642: /proc or /sys a symlink


@pytest.mark.parametrize("where", ["proc", "sys"])
@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_proc_or_sys_symlink_is_refused(rt, bundle, sentinel, where, form):
    value = sentinel if form == "absolute" else _relative_to_host(bundle.rootfs, "", sentinel)
    _replace_with_symlink(os.path.join(bundle.rootfs, where), value)
    bundle.sh("true")
    p = rt.run(new_id("cve"), bundle)
    assert_one_error_line(p)
    if runtime_is_pyrunc:
        assert "ordinary directory" in p.stderr


# ---------------------------------------------------------------------------
# CVE-2026-41579 / CVE-2026-47766: /dev a symlink


@pytest.mark.parametrize("dev_source", ["tmpfs", "image"])
@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_dev_symlink_never_reaches_the_host(rt, bundle, sentinel, dev_source, form):
    value = sentinel if form == "absolute" else _relative_to_host(bundle.rootfs, "", sentinel)
    _replace_with_symlink(os.path.join(bundle.rootfs, "dev"), value)
    if dev_source == "image":
        _image_dev(bundle)
    bundle.sh("ls /dev")
    refused_or_confined(rt.run(new_id("cve"), bundle))


# ---------------------------------------------------------------------------
# CVE-2025-31133: /dev/null a symlink to a procfs file, with maskedPaths


def test_dev_null_symlink_to_procfs_cannot_unmask(rt, bundle, sentinel):
    _image_dev(bundle)
    dev = os.path.join(bundle.rootfs, "dev")
    os.symlink(CORE_PATTERN, os.path.join(dev, "null"))
    bundle.config["linux"]["maskedPaths"] = ["/proc/uptime", "/proc/sys/kernel/core_pattern", "/etc/group"]
    bundle.config["linux"]["readonlyPaths"] = []
    bundle.sh(
        "stat -c '%n %F %t:%T' /dev/null /proc/uptime /proc/sys/kernel/core_pattern /etc/group; "
        "echo '|/tmp/pwn' > /proc/sys/kernel/core_pattern 2>/dev/null; "
        "echo '|/tmp/pwn' > /proc/uptime 2>/dev/null; echo '|/tmp/pwn' > /dev/null; "
        "cat /proc/sys/kernel/core_pattern | wc -c"
    )

    def confined(out):
        lines = out.splitlines()
        for line in lines[:4]:
            assert line.endswith("character special file 1:3"), line
        assert lines[4] == "0"  # writes went to the null device (host core_pattern: fixture)

    refused_or_confined(rt.run(new_id("cve"), bundle), confined)


# ---------------------------------------------------------------------------
# CVE-2025-52565: /dev/console and /dev/pts/N symlinks with terminal: true


def test_dev_console_and_pts_symlinks_with_terminal(rt, bundle, sentinel):
    import array
    import socket

    _image_dev(bundle)
    dev = os.path.join(bundle.rootfs, "dev")
    os.symlink(CORE_PATTERN, os.path.join(dev, "console"))
    os.makedirs(os.path.join(dev, "pts"), exist_ok=True)
    os.symlink(os.path.join(sentinel, "canary"), os.path.join(dev, "pts", "0"))
    os.symlink(os.path.join(sentinel, "canary"), os.path.join(dev, "ptmx"))
    bundle.config["process"]["terminal"] = True
    bundle.sh("stat -c '%t %F' /dev/console > /shared/console; echo '|/tmp/pwn' > /dev/console; true")
    d = tempfile.mkdtemp(prefix="rfs-cs-", dir="/tmp")
    path = os.path.join(d, "s")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    try:
        cid = new_id("cve")
        p = rt.create(cid, bundle, "--console-socket", path)
        if p.returncode != 0:
            assert_one_error_line(p)
            return
        srv.settimeout(10)
        conn, _ = srv.accept()
        fds = array.array("i")
        _, anc, _, _ = conn.recvmsg(16, socket.CMSG_SPACE(4))
        fds.frombytes(anc[0][2][:4])
        conn.close()
        try:
            assert rt.start(cid).returncode == 0
            rt.wait_status(cid, "stopped")
        finally:
            os.close(fds[0])
        major, kind = open(os.path.join(bundle.shared, "console")).read().split(" ", 1)
        assert int(major, 16) in range(136, 144) and kind.strip() == "character special file"
    finally:
        srv.close()
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------------------
# CVE-2019-16884 / CVE-2025-52881: mounts on and below /proc


@pytest.mark.parametrize(
    "mount",
    [
        {"destination": "/proc", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/proc", "type": "bind", "source": "/tmp", "options": ["rbind"]},
        {"destination": "/proc/self/attr", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/proc/sys/kernel", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/proc/sysrq-trigger", "type": "bind", "source": "/dev/null", "options": ["bind"]},
        {"destination": "proc/../proc/sys", "type": "tmpfs", "source": "tmpfs"},
    ],
    ids=["tmpfs-on-proc", "bind-on-proc", "attr", "sys-kernel", "sysrq", "dotdot"],
)
def test_mounts_on_proc_are_refused(rt, bundle, sentinel, mount):
    bundle.config["mounts"].append(mount)
    bundle.sh("true")
    p = rt.run(new_id("cve"), bundle)
    assert_one_error_line(p)
    if runtime_is_pyrunc:
        assert "/proc" in p.stderr


def test_allow_listed_proc_mount_is_accepted(rt, bundle, tmp_path):
    fake = tmp_path / "uptime"
    fake.write_text("12345.00 0.00\n")
    bundle.config["mounts"].append(
        {"destination": "/proc/uptime", "type": "bind", "source": str(fake), "options": ["bind", "ro"]}
    )
    bundle.sh("cat /proc/uptime")
    p = rt.run(new_id("cve"), bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "12345.00 0.00\n"


# ---------------------------------------------------------------------------
# CVE-2019-18837: '..' in symlinks of mount destinations


@pytest.mark.parametrize("form", ["absolute", "relative", "dotdot-inside"])
def test_mount_destination_symlink_stays_in_rootfs(rt, bundle, sentinel, form):
    if form == "absolute":
        value = sentinel
    elif form == "relative":
        value = _relative_to_host(bundle.rootfs, "", sentinel)
    else:
        os.makedirs(os.path.join(bundle.rootfs, "x/y"))
        value = "x/y/../../../../../../../.." + sentinel
    os.symlink(value, os.path.join(bundle.rootfs, "a"))
    bundle.config["mounts"].append({"destination": "/a/x", "type": "tmpfs", "source": "tmpfs"})
    bundle.sh(
        "echo in-container > /a/x/written && grep -c ' tmpfs ' /proc/self/mountinfo > /dev/null && cat /a/x/written"
    )

    def confined(out):
        assert out == "in-container\n"

    refused_or_confined(rt.run(new_id("cve"), bundle), confined)


# ---------------------------------------------------------------------------
# CVE-2024-45310: directories/files created through symlinks


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_bind_target_creation_never_follows_symlinks_out(rt, bundle, sentinel, tmp_path, kind):
    os.makedirs(os.path.join(bundle.rootfs, "vol"))
    os.symlink(sentinel, os.path.join(bundle.rootfs, "vol", "a"))
    src = tmp_path / "src"
    if kind == "dir":
        src.mkdir()
        (src / "f").write_text("bound\n")
        dest, check = "/vol/a/b/c", "cat /vol/a/b/c/f"
    else:
        src.write_text("bound\n")
        dest, check = "/vol/a/newfile", "cat /vol/a/newfile"
    bundle.config["mounts"].append({"destination": dest, "type": "bind", "source": str(src), "options": ["bind"]})
    bundle.sh(check)

    def confined(out):
        assert out == "bound\n"

    refused_or_confined(rt.run(new_id("cve"), bundle), confined)


def test_dangling_symlink_file_target_creates_nothing_on_host(rt, bundle, sentinel, tmp_path):
    src = tmp_path / "src"
    src.write_text("bound\n")
    os.symlink(os.path.join(sentinel, "created-by-runtime"), os.path.join(bundle.rootfs, "etc", "target"))
    bundle.config["mounts"].append(
        {"destination": "/etc/target", "type": "bind", "source": str(src), "options": ["bind"]}
    )
    bundle.sh("cat /etc/target")
    refused_or_confined(rt.run(new_id("cve"), bundle), lambda out: out == "bound\n")


# ---------------------------------------------------------------------------
# CVE-2021-30465: a helper swaps a mount path component for a symlink to the
# host (renameat2 RENAME_EXCHANGE) while containers mount below it.

RACER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
a, b = sys.argv[1].encode(), sys.argv[2].encode()
n = 0
while not os.path.exists(sys.argv[3]):
    libc.renameat2(-100, a, -100, b, 2)  # RENAME_EXCHANGE
    n += 1
print(n)
"""

RACE_CONTAINERS = 25
RACE_MOUNTS_PER_CONTAINER = 24  # 600 raced mount operations


def test_symlink_exchange_race_during_mounts(rt, bundle, sentinel, tmp_path):
    vol = os.path.join(bundle.rootfs, "vol")
    os.makedirs(os.path.join(vol, "d"))
    os.symlink(sentinel, os.path.join(vol, "l"))
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("bound\n")
    for i in range(RACE_MOUNTS_PER_CONTAINER):
        if i % 2:
            bundle.config["mounts"].append(
                {"destination": f"/vol/d/m{i}", "type": "tmpfs", "source": "tmpfs", "options": ["size=64k"]}
            )
        else:
            bundle.config["mounts"].append(
                {"destination": f"/vol/d/m{i}", "type": "bind", "source": str(src), "options": ["bind"]}
            )
    bundle.config["linux"]["maskedPaths"] = []
    bundle.config["linux"]["readonlyPaths"] = []
    bundle.sh("cat /proc/self/mountinfo")
    stop = tmp_path / "stop"
    racer = subprocess.Popen(
        [sys.executable, "-c", RACER, os.path.join(vol, "d"), os.path.join(vol, "l"), str(stop)],
        stdout=subprocess.PIPE,
        text=True,
    )
    ran = refused = 0
    try:
        for _ in range(RACE_CONTAINERS):
            p = rt.run(new_id("race"), bundle)
            if p.returncode == 0:
                ran += 1
                for line in p.stdout.splitlines():
                    point = line.split()[4]
                    # every mount is inside the container's tree (a resolved
                    # symlink lands at the sentinel's path *inside* the rootfs)
                    assert point.startswith("/"), line
            else:
                refused += 1
                assert_one_error_line(p)
            assert _host_mounts_under(sentinel) == []
    finally:
        stop.write_text("")
        swaps = int(racer.communicate(timeout=30)[0] or 0)
    assert swaps > RACE_CONTAINERS, "the racer did not run"
    assert ran + refused == RACE_CONTAINERS


# ---------------------------------------------------------------------------
# CVE-2025-24965 class: nothing the runtime writes into the rootfs follows a symlink


def test_runtime_writes_in_image_dev_never_follow_symlinks(rt, bundle, sentinel):
    _image_dev(bundle)
    dev = os.path.join(bundle.rootfs, "dev")
    canary = os.path.join(sentinel, "canary")
    for name in ("ptmx", "zero", "full", "tty", "random", "urandom"):
        os.symlink(canary, os.path.join(dev, name))
    os.symlink(os.path.join(sentinel, "dir"), os.path.join(dev, "fd"))
    os.symlink(os.path.join(sentinel, "dir"), os.path.join(dev, "sub"))
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/sub/evil", "type": "c", "major": 1, "minor": 3},
        {"path": "/dev/newdev", "type": "c", "major": 1, "minor": 5},
    ]
    bundle.sh("stat -c '%n %F %t:%T' /dev/zero /dev/full /dev/newdev; true")

    def confined(out):
        lines = out.splitlines()
        assert lines[0] == "/dev/zero character special file 1:5"
        assert lines[1] == "/dev/full character special file 1:7"

    refused_or_confined(rt.run(new_id("cve"), bundle), confined)


def test_tmpcopyup_copies_symlinks_as_symlinks(rt, bundle, sentinel):
    if not runtime_is_pyrunc:
        pytest.skip("tmpcopyup is a crun/pyrunc extension")
    data = os.path.join(bundle.rootfs, "data")
    os.makedirs(data)
    os.symlink(os.path.join(sentinel, "canary"), os.path.join(data, "to-host"))
    os.symlink(os.path.join(sentinel, "dir"), os.path.join(data, "dir-to-host"))
    bundle.config["mounts"].append(
        {"destination": "/data", "type": "tmpfs", "source": "tmpfs", "options": ["tmpcopyup"]}
    )
    bundle.sh("readlink /data/to-host; readlink /data/dir-to-host")
    p = rt.run(new_id("cve"), bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [os.path.join(sentinel, "canary"), os.path.join(sentinel, "dir")]
