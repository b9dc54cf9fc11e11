"""The container's filesystem, driven through the CLI on busybox bundles:
mount types and options (read back from the container's mountinfo),
propagation, overlay, id-mapped binds, tmpcopyup, --no-pivot, read-only
root, /dev, linux.devices, maskedPaths/readonlyPaths and cgroup mounts.

Where Debian's runc 1.1 behaves the same the tests pass under
RUNTIME=/usr/sbin/runc too (it lacks the newer options: ``runc_lacks``).
"""

import json
import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from helpers import assert_one_error_line, new_id, runc_lacks, runtime_is_pyrunc


# --------------------------------------------------------------------------
# helpers


def parse_mountinfo(text):
    """mount point -> dict(opts, fields, fstype, super, root, dev, id, parent)."""
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) < 10 or "-" not in f:
            continue
        sep = f.index("-")
        point = f[4].replace("\\040", " ")
        out[point] = dict(
            id=f[0],
            parent=f[1],
            dev=f[2],
            root=f[3],
            opts=set(f[5].split(",")),
            fields={x.split(":")[0] for x in f[6:sep]},
            fstype=f[sep + 1],
            super=set(f[sep + 3].split(",")),
        )
    return out


def run_ok(rt, bundle, script, *extra):
    """Run ``sh -c script`` to completion; return its stdout (asserting rc 0)."""
    bundle.sh(script)
    p = rt.run(new_id("rfs"), bundle, *extra)
    assert p.returncode == 0, f"rc={p.returncode} stdout={p.stdout!r} stderr={p.stderr!r}"
    return p.stdout


def container_mountinfo(rt, bundle, *extra):
    return parse_mountinfo(run_ok(rt, bundle, "cat /proc/self/mountinfo", *extra))


def add_mount(bundle, destination, mtype, source, options=(), **extra):
    entry = {"destination": destination, "type": mtype, "source": source, "options": list(options)}
    entry.update(extra)
    bundle.config["mounts"].append(entry)
    return entry


@pytest.fixture
def host_mounts():
    """Mounts the test makes on the host; unmounted (lazily, deepest first) afterwards."""
    made = []
    yield made
    for path in reversed(made):
        subprocess.run(["umount", "-l", path], capture_output=True)


def host_mount(made, *args):
    """``mount ARGS...``; the last argument is the mount point to clean up."""
    subprocess.run(["mount", *args], check=True, capture_output=True)
    made.append(args[-1])


@pytest.fixture
def tree(tmp_path, host_mounts):
    """A host directory with a file and a tmpfs sub-mount (for bind/rbind)."""
    src = tmp_path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "file").write_text("host file\n")
    host_mount(host_mounts, "-t", "tmpfs", "-o", "size=1m", "rfstree", str(src / "sub"))
    (src / "sub" / "inner").write_text("inner\n")
    return src


def submount_flags(host_mounts, tree, flags):
    if flags:
        subprocess.run(["mount", "-o", "remount," + ",".join(flags), str(tree / "sub")], check=True)


# --------------------------------------------------------------------------
# mount options: every option pyrunc advertises, checked in mountinfo


def _has(opt):
    return lambda top, sub: opt in top["opts"]


def _lacks(opt):
    return lambda top, sub: opt not in top["opts"]


def _sub_has(opt):
    return lambda top, sub: sub is not None and opt in sub["opts"]


def _sub_lacks(opt):
    return lambda top, sub: sub is not None and opt not in sub["opts"]


def _either(opt):
    return lambda top, sub: opt in top["opts"] | top["super"]


def _neither(opt):
    return lambda top, sub: opt not in top["opts"] | top["super"]


NO_ATIME_MODE = lambda top, sub: not ({"relatime", "noatime"} & top["opts"])  # noqa: E731

# option: (kind, options, flags of the host sub-mount, predicate(top, sub))
# kind: "tmpfs" (a fresh tmpfs), "bind" (the ``tree`` fixture), "shared" (the
# tree made rshared on the host first).
OPTION_CASES = {
    "ro": ("tmpfs", ["ro"], (), _has("ro")),
    "rw": ("tmpfs", ["ro", "rw"], (), _has("rw")),
    "nosuid": ("tmpfs", ["nosuid"], (), _has("nosuid")),
    "suid": ("tmpfs", ["nosuid", "suid"], (), _lacks("nosuid")),
    "nodev": ("tmpfs", ["nodev"], (), _has("nodev")),
    "dev": ("tmpfs", ["nodev", "dev"], (), _lacks("nodev")),
    "noexec": ("tmpfs", ["noexec"], (), _has("noexec")),
    "exec": ("tmpfs", ["noexec", "exec"], (), _lacks("noexec")),
    "sync": ("tmpfs", ["sync"], (), _either("sync")),
    "async": ("tmpfs", ["sync", "async"], (), _neither("sync")),
    "dirsync": ("tmpfs", ["dirsync"], (), _either("dirsync")),
    "mand": ("tmpfs", ["mand"], (), lambda t, s: True),  # accepted; the kernel ignores it
    "nomand": ("tmpfs", ["nomand"], (), _neither("mand")),
    "atime": ("tmpfs", ["noatime", "atime"], (), _lacks("noatime")),
    "noatime": ("tmpfs", ["noatime"], (), _has("noatime")),
    "diratime": ("tmpfs", ["nodiratime", "diratime"], (), _lacks("nodiratime")),
    "nodiratime": ("tmpfs", ["nodiratime"], (), _has("nodiratime")),
    "relatime": ("tmpfs", ["relatime"], (), _has("relatime")),
    "norelatime": ("tmpfs", ["norelatime"], (), lambda t, s: "noatime" not in t["opts"]),
    "strictatime": ("tmpfs", ["strictatime"], (), NO_ATIME_MODE),
    "nostrictatime": ("tmpfs", ["strictatime", "nostrictatime"], (), _has("relatime")),
    "lazytime": ("tmpfs", ["lazytime"], (), _either("lazytime")),
    "nolazytime": ("tmpfs", ["lazytime", "nolazytime"], (), _neither("lazytime")),
    "symfollow": ("tmpfs", ["nosymfollow", "symfollow"], (), _lacks("nosymfollow")),
    "nosymfollow": ("tmpfs", ["nosymfollow"], (), _has("nosymfollow")),
    "iversion": ("tmpfs", ["iversion"], (), lambda t, s: True),  # not shown for tmpfs
    "noiversion": ("tmpfs", ["noiversion"], (), lambda t, s: True),
    "silent": ("tmpfs", ["silent"], (), lambda t, s: True),  # not shown in mountinfo
    "loud": ("tmpfs", ["silent", "loud"], (), lambda t, s: True),
    "defaults": ("tmpfs", ["defaults"], (), _has("rw")),
    "bind": ("bind", ["bind"], (), lambda t, s: s is None and t["fstype"] != "tmpfs"),
    "rbind": ("bind", ["rbind"], (), lambda t, s: s is not None and s["fstype"] == "tmpfs"),
    "rro": ("bind", ["rbind", "rro"], (), lambda t, s: "ro" in t["opts"] and _sub_has("ro")(t, s)),
    "rrw": ("bind", ["rbind", "rrw"], ("ro",), _sub_has("rw")),
    "rnosuid": ("bind", ["rbind", "rnosuid"], (), _sub_has("nosuid")),
    "rsuid": ("bind", ["rbind", "rsuid"], ("nosuid",), _sub_lacks("nosuid")),
    "rnodev": ("bind", ["rbind", "rnodev"], (), _sub_has("nodev")),
    "rdev": ("bind", ["rbind", "rdev"], ("nodev",), _sub_lacks("nodev")),
    "rnoexec": ("bind", ["rbind", "rnoexec"], (), _sub_has("noexec")),
    "rexec": ("bind", ["rbind", "rexec"], ("noexec",), _sub_lacks("noexec")),
    "rnodiratime": ("bind", ["rbind", "rnodiratime"], (), _sub_has("nodiratime")),
    "rdiratime": ("bind", ["rbind", "rdiratime"], ("nodiratime",), _sub_lacks("nodiratime")),
    "rrelatime": ("bind", ["rbind", "rrelatime"], ("strictatime",), _sub_has("relatime")),
    "rnorelatime": ("bind", ["rbind", "rnorelatime"], ("noatime",), _sub_has("noatime")),
    "rnoatime": ("bind", ["rbind", "rnoatime"], (), _sub_has("noatime")),
    "ratime": ("bind", ["rbind", "ratime"], ("noatime",), _sub_lacks("noatime")),
    "rstrictatime": (
        "bind",
        ["rbind", "rstrictatime"],
        (),
        lambda t, s: s is not None and not ({"relatime", "noatime"} & s["opts"]),
    ),
    "rnostrictatime": ("bind", ["rbind", "rnostrictatime"], ("strictatime",), _sub_has("relatime")),
    "rnosymfollow": ("bind", ["rbind", "rnosymfollow"], (), _sub_has("nosymfollow")),
    "rsymfollow": ("bind", ["rbind", "rsymfollow"], ("nosymfollow",), _sub_lacks("nosymfollow")),
    "private": ("shared", ["rbind", "private"], (), lambda t, s: not ({"shared", "master"} & t["fields"])),
    "rprivate": (
        "shared",
        ["rbind", "rprivate"],
        (),
        lambda t, s: s is not None and not ({"shared", "master"} & (t["fields"] | s["fields"])),
    ),
    "shared": ("bind", ["rbind", "shared"], (), lambda t, s: "shared" in t["fields"] and "shared" not in s["fields"]),
    "rshared": ("bind", ["rbind", "rshared"], (), lambda t, s: "shared" in t["fields"] and "shared" in s["fields"]),
    "slave": ("shared", ["rbind", "slave"], (), lambda t, s: "master" in t["fields"]),
    "rslave": ("shared", ["rbind", "rslave"], (), lambda t, s: "master" in t["fields"] and "master" in s["fields"]),
    "unbindable": ("bind", ["bind", "unbindable"], (), lambda t, s: "unbindable" in t["fields"]),
    "runbindable": (
        "bind",
        ["rbind", "runbindable"],
        (),
        lambda t, s: "unbindable" in t["fields"] and "unbindable" in s["fields"],
    ),
    "tmpcopyup": ("tmpfs", ["tmpcopyup"], (), lambda t, s: t["fstype"] == "tmpfs"),
    "remount": ("remount", ["remount", "ro", "nosuid"], (), lambda t, s: {"ro", "nosuid"} <= t["opts"]),
}

RUNC_11_LACKS = {
    "ratime",
    "rnostrictatime",
    "iversion",
    "noiversion",
    "silent",
    "loud",
    "tmpcopyup",
    "remount",
    "rnorelatime",
}


def test_option_table_covers_features(rt):
    """``features`` lists exactly the mount options tested to work here
    (plus idmap/ridmap, tested separately below)."""
    if not runtime_is_pyrunc:
        pytest.skip("pyrunc's own feature list")
    p = rt("features", root=False)
    assert p.returncode == 0, p.stderr
    listed = set(json.loads(p.stdout)["mountOptions"])
    assert listed == set(OPTION_CASES) | {"idmap", "ridmap"}


@pytest.mark.parametrize("option", sorted(OPTION_CASES))
def test_mount_option(rt, bundle, tree, host_mounts, option, request):
    if option in RUNC_11_LACKS:
        request.applymarker(runc_lacks(f"mount option {option}"))
    kind, options, sub_flags, pred = OPTION_CASES[option]
    if kind == "tmpfs":
        add_mount(bundle, "/m", "tmpfs", "tmpfs", options)
    elif kind == "remount":
        add_mount(bundle, "/m", "tmpfs", "tmpfs", ["size=1m"])
        add_mount(bundle, "/m", "tmpfs", "tmpfs", options)
    else:
        submount_flags(host_mounts, tree, sub_flags)
        if kind == "shared":
            host_mount(host_mounts, "--rbind", str(tree), str(tree))
            subprocess.run(["mount", "--make-rshared", str(tree)], check=True)
        add_mount(bundle, "/m", "bind", str(tree), options)
    mi = container_mountinfo(rt, bundle)
    assert "/m" in mi, "/m is not a mount point"
    assert pred(mi["/m"], mi.get("/m/sub")), f"{options}: top={mi['/m']} sub={mi.get('/m/sub')}"


def test_fs_data_options_reach_the_filesystem(rt, bundle):
    add_mount(bundle, "/m", "tmpfs", "tmpfs", ["nosuid", "size=2m", "mode=700", "uid=12", "gid=34"])
    out = run_ok(rt, bundle, "stat -c '%a %u %g' /m; cat /proc/self/mountinfo")
    assert out.splitlines()[0] == "700 12 34"
    m = parse_mountinfo(out)["/m"]
    assert "size=2048k" in m["super"] and "nosuid" in m["opts"]


def test_unknown_fs_option_is_one_error_line(rt, bundle):
    add_mount(bundle, "/m", "tmpfs", "tmpfs", ["no-such-option"])
    bundle.sh("true")
    p = rt.run(new_id("rfs"), bundle)
    assert_one_error_line(p)
    if runtime_is_pyrunc:
        assert "/m" in p.stderr


def test_mounts_in_listed_order_and_relative_destination(rt, bundle):
    add_mount(bundle, "a", "tmpfs", "tmpfs", ["mode=755"])  # relative: /a
    add_mount(bundle, "a/b/../b", "tmpfs", "tmpfs", ["mode=700"])  # /a/b on top of /a
    mi = container_mountinfo(rt, bundle)
    assert mi["/a"]["fstype"] == "tmpfs"
    assert mi["/a/b"]["parent"] == mi["/a"]["id"]


def test_bind_file_dir_and_bundle_relative_source(rt, bundle, tree):
    add_mount(bundle, "/etc/hostfile", "bind", str(tree / "file"), ["bind", "ro"])
    os.makedirs(os.path.join(bundle.path, "reldir"))
    with open(os.path.join(bundle.path, "reldir", "x"), "w") as f:
        f.write("relative\n")
    add_mount(bundle, "/deep/new/dir", "none", "reldir", ["bind"])  # created on demand
    out = run_ok(
        rt, bundle, "cat /etc/hostfile /deep/new/dir/x; (echo >> /etc/hostfile) 2>/dev/null && echo WROTE; true"
    )
    assert out.splitlines()[:2] == ["host file", "relative"]
    assert "WROTE" not in out
    assert (tree / "file").read_text() == "host file\n"


def test_bind_missing_source_fails_cleanly(rt, bundle, tmp_path):
    add_mount(bundle, "/m", "bind", str(tmp_path / "nope"), ["bind"])
    bundle.sh("true")
    p = rt.run(new_id("rfs"), bundle)
    assert_one_error_line(p)


def test_slave_bind_receives_later_host_mounts(rt, bundle, tree, host_mounts, tmp_path):
    """rslave: a mount made on the host after create shows up in the container."""
    host_mount(host_mounts, "--rbind", str(tree), str(tree))
    subprocess.run(["mount", "--make-rshared", str(tree)], check=True)
    add_mount(bundle, "/m", "bind", str(tree), ["rbind", "rslave"])
    bundle.sh("grep -c ' /m/late ' /proc/self/mountinfo > /shared/seen; cat /m/late/mark >> /shared/seen")
    cid = new_id("rfs")
    assert rt.create(cid, bundle).returncode == 0
    (tree / "late").mkdir()
    host_mount(host_mounts, "-t", "tmpfs", "late", str(tree / "late"))
    (tree / "late" / "mark").write_text("propagated\n")
    assert rt.start(cid).returncode == 0
    rt.wait_status(cid, "stopped")
    assert open(os.path.join(bundle.shared, "seen")).read().split() == ["1", "propagated"]


def test_shared_bind_propagates_back_to_host(rt, bundle, tree, host_mounts):
    """shared: a mount the container makes appears on the host peer."""
    host_mount(host_mounts, "--rbind", str(tree), str(tree))
    subprocess.run(["mount", "--make-rshared", str(tree)], check=True)
    add_mount(bundle, "/m", "bind", str(tree), ["rbind", "rshared"])
    # without it "/" is rslave and the bind a slave of the host: nothing goes back
    bundle.config["linux"]["rootfsPropagation"] = "shared"
    bundle.config["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    bundle.config["process"]["capabilities"]["effective"].append("CAP_SYS_ADMIN")
    bundle.config["process"]["capabilities"]["permitted"].append("CAP_SYS_ADMIN")
    (tree / "fromc").mkdir()
    host_mounts.append(str(tree / "fromc"))
    run_ok(rt, bundle, "mount -t tmpfs fromcontainer /m/fromc && touch /m/fromc/hello")
    assert (tree / "fromc" / "hello").exists()


@pytest.mark.parametrize(
    "mode,expect",
    [
        ("private", lambda f: not ({"shared", "master"} & f)),
        ("shared", lambda f: "shared" in f),
        ("slave", lambda f: "shared" not in f),  # the sandbox's / is private: no master either
        ("unbindable", lambda f: "unbindable" in f),
    ],
)
def test_rootfs_propagation(rt, bundle, mode, expect):
    bundle.config["linux"]["rootfsPropagation"] = mode
    mi = container_mountinfo(rt, bundle)
    assert expect(mi["/"]["fields"]), f"{mode}: / has {mi['/']['fields']}"


def test_default_rootfs_propagation_follows_host(rt, bundle, host_mounts, tmp_path):
    """With the bundle on a shared mount, the default (rslave) root sees
    mounts the host makes below the rootfs after create."""
    host_mount(host_mounts, "--bind", bundle.path, bundle.path)
    subprocess.run(["mount", "--make-rshared", bundle.path], check=True)
    os.makedirs(os.path.join(bundle.rootfs, "late"))
    bundle.sh("grep -c ' /late ' /proc/self/mountinfo > /shared/seen")
    cid = new_id("rfs")
    assert rt.create(cid, bundle).returncode == 0
    host_mount(host_mounts, "-t", "tmpfs", "late", os.path.join(bundle.rootfs, "late"))
    assert rt.start(cid).returncode == 0
    rt.wait_status(cid, "stopped")
    assert open(os.path.join(bundle.shared, "seen")).read().strip() == "1"


# --------------------------------------------------------------------------
# overlay, tmpcopyup, id-mapped binds


def test_overlay(rt, bundle, tmp_path):
    lower, upper, work = (tmp_path / n for n in ("lower", "upper", "work"))
    for d in (lower, upper, work):
        d.mkdir()
    (lower / "base").write_text("lower\n")
    add_mount(bundle, "/ov", "overlay", "overlay", [f"lowerdir={lower}", f"upperdir={upper}", f"workdir={work}"])
    out = run_ok(
        rt, bundle, "cat /ov/base; echo new > /ov/new; echo changed > /ov/base; grep ' /ov ' /proc/self/mountinfo"
    )
    assert out.splitlines()[0] == "lower"
    assert " overlay " in out
    assert (upper / "new").read_text() == "new\n"
    assert (upper / "base").read_text() == "changed\n"
    assert (lower / "base").read_text() == "lower\n"


@runc_lacks("tmpcopyup")
def test_tmpcopyup_copies_image_content(rt, bundle):
    data = os.path.join(bundle.rootfs, "data")
    os.makedirs(os.path.join(data, "sub"))
    with open(os.path.join(data, "f"), "w") as f:
        f.write("image\n")
    os.chown(os.path.join(data, "f"), 1000, 1000)
    os.chmod(os.path.join(data, "f"), 0o604)  # readable without CAP_DAC_OVERRIDE
    os.symlink("/etc/passwd", os.path.join(data, "link"))
    os.chmod(data, 0o751)
    add_mount(bundle, "/data", "tmpfs", "tmpfs", ["tmpcopyup", "nosuid"])
    out = run_ok(
        rt,
        bundle,
        "cat /data/f; stat -c '%u %g %a' /data/f /data; readlink /data/link; "
        "test -d /data/sub && echo dir; echo w > /data/f; "
        "grep ' /data ' /proc/self/mountinfo",
    )
    lines = out.splitlines()
    assert lines[:5] == ["image", "1000 1000 604", "0 0 751", "/etc/passwd", "dir"]
    assert " tmpfs " in lines[5]
    assert open(os.path.join(data, "f")).read() == "image\n"


@pytest.mark.parametrize("option", ["idmap", "ridmap"])
@runc_lacks("id-mapped mounts (runc 1.2)")
def test_idmapped_bind_without_userns(rt, bundle, tree, option):
    """runc's semantics: uidMappings map on-disk ids (containerID) to the ids
    seen through the mount (hostID): a file owned by 0 shows as 100000."""
    os.chown(tree / "file", 0, 0)
    os.chown(tree / "sub" / "inner", 7, 8)
    maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    add_mount(bundle, "/m", "bind", str(tree), ["rbind", option], uidMappings=maps, gidMappings=maps)
    out = run_ok(rt, bundle, "stat -c '%u %g' /m/file /m/sub/inner; grep ' /m ' /proc/self/mountinfo")
    lines = out.splitlines()
    assert lines[0] == "100000 100000"
    # idmap maps only the top mount; ridmap also the tmpfs below it
    assert lines[1] == ("100007 100008" if option == "ridmap" else "7 8")
    assert "idmapped" in lines[2]


@runc_lacks("id-mapped mounts (runc 1.2)")
def test_idmapped_bind_uses_container_userns_maps(rt, userns_bundle):
    """idmap without mount mappings in a user namespace: the container's maps;
    a host root-owned file is owned by the container's root, not nobody."""
    b = userns_bundle
    maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.set_namespace("user")
    b.config["linux"]["uidMappings"] = maps
    b.config["linux"]["gidMappings"] = maps
    subprocess.run(["chown", "-R", "100000:100000", b.path], check=True)
    src = os.path.join(b.path, "vol")
    os.mkdir(src, 0o755)
    with open(os.path.join(src, "file"), "w") as f:
        f.write("x")
    os.chmod(os.path.join(src, "file"), 0o644)
    add_mount(b, "/m", "bind", src, ["rbind", "idmap"])
    add_mount(b, "/plain", "bind", src, ["rbind"])
    out = run_ok(rt, b, "stat -c '%u %g' /m/file /plain/file")
    assert out.splitlines() == ["0 0", "65534 65534"]


@pytest.mark.parametrize("userns", [False, True], ids=["mount-maps", "userns-maps"])
@runc_lacks("id-mapped mounts (runc 1.2)")
def test_idmapped_bind_of_a_shared_mount_is_a_slave(rt, bundle, userns_bundle, host_mounts, userns):
    """The id-mapped tree is cloned by host root (the kernel wants it to own
    the source's filesystem); a clone of a shared host mount would be its
    peer, and a mount the container makes below it would appear on the
    host.  It is a slave, like every other bind."""
    src = tempfile.mkdtemp(prefix="rfsshared-", dir="/tmp")
    try:
        os.chmod(src, 0o755)
        os.mkdir(os.path.join(src, "newmnt"))
        host_mount(host_mounts, "--bind", src, src)
        subprocess.run(["mount", "--make-shared", src], check=True)
        maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        extra = {"uidMappings": maps, "gidMappings": maps}
        if userns:
            bundle = userns_bundle
            bundle.set_namespace("user")
            bundle.config["linux"]["uidMappings"] = maps
            bundle.config["linux"]["gidMappings"] = maps
            bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m["destination"] != "/sys/fs/cgroup"]
            extra = {}
        os.mkdir(os.path.join(bundle.rootfs, "m"))
        add_mount(bundle, "/m", "bind", src, ["rbind", "idmap"], **extra)
        for kind in ("bounding", "effective", "permitted"):
            bundle.config["process"]["capabilities"][kind].append("CAP_SYS_ADMIN")
        out = run_ok(rt, bundle, "mount -t tmpfs ctr /m/newmnt && echo mounted; grep ' /m ' /proc/self/mountinfo")
        lines = out.splitlines()
        assert lines[0] == "mounted"
        assert "idmapped" in lines[1] and " master:" in lines[1] and " shared:" not in lines[1]
        with open("/proc/self/mountinfo") as f:
            assert not [l for l in f if l.split()[4] == os.path.join(src, "newmnt")]
    finally:
        subprocess.run(["umount", "-l", src], capture_output=True)
        shutil.rmtree(src, ignore_errors=True)


@runc_lacks("idmap checks")
def test_idmap_needs_mappings_or_userns(rt, bundle, tree):
    add_mount(bundle, "/m", "bind", str(tree), ["rbind", "idmap"])
    bundle.sh("true")
    assert_one_error_line(rt.run(new_id("rfs"), bundle))


# --------------------------------------------------------------------------
# root: read-only, --no-pivot


def test_readonly_root(rt, bundle):
    bundle.config["root"]["readonly"] = True
    out = run_ok(
        rt, bundle, "touch /x 2>/dev/null && echo WROTE; touch /dev/shm/ok && echo shm-ok; cat /proc/self/mountinfo"
    )
    assert "WROTE" not in out and "shm-ok" in out
    assert "ro" in parse_mountinfo(out)["/"]["opts"]
    bundle.config["root"]["readonly"] = False
    out = run_ok(rt, bundle, "touch /x && echo WROTE; rm /x")
    assert "WROTE" in out


@pytest.mark.parametrize("fstype", ["tmpfs", "ramfs"])
def test_no_pivot_rootfs_on_ramfs(rt, bundle, host_mounts, tmp_path, fstype):
    ram = tmp_path / "ram"
    ram.mkdir()
    host_mount(host_mounts, "-t", fstype, "rfsram", str(ram))
    subprocess.run(["cp", "-a", bundle.rootfs, str(ram / "rootfs")], check=True)
    bundle.config["root"]["path"] = str(ram / "rootfs")
    out = run_ok(rt, bundle, "cat /proc/self/mountinfo; ls /; echo pid=$$", "--no-pivot")
    mi = parse_mountinfo(out)
    assert mi["/"]["fstype"] == fstype
    assert "pid=1" in out
    # only the rootfs and what the config mounts: nothing of the host tree
    assert all(p == "/" or p.startswith(("/proc", "/dev", "/sys", "/shared")) for p in mi), sorted(mi)


# --------------------------------------------------------------------------
# /dev


def test_default_devices_and_links(rt, bundle):
    out = run_ok(
        rt,
        bundle,
        "for d in null zero full random urandom tty; do stat -c '%n|%F|%t:%T|%a' /dev/$d; done; "
        "for l in fd stdin stdout stderr ptmx; do echo $l $(readlink /dev/$l); done; "
        "grep -E ' /dev(/shm)? ' /proc/self/mountinfo; echo x > /dev/null && head -c1 /dev/zero | wc -c",
    )
    lines = out.splitlines()
    want = {"null": "1:3", "zero": "1:5", "full": "1:7", "random": "1:8", "urandom": "1:9", "tty": "5:0"}
    for line in lines[:6]:
        name, kind, devno, mode = line.split("|")
        major, minor = (int(x, 16) for x in devno.split(":"))
        assert (kind, f"{major}:{minor}", mode) == ("character special file", want[name[5:]], "666"), line
    links = dict(line.split(" ", 1) for line in lines[6:11])
    assert links == {
        "fd": "/proc/self/fd",
        "stdin": "/proc/self/fd/0",
        "stdout": "/proc/self/fd/1",
        "stderr": "/proc/self/fd/2",
        "ptmx": "pts/ptmx",
    }
    mi = parse_mountinfo("\n".join(lines[11:13]))
    assert mi["/dev"]["fstype"] == "tmpfs" and mi["/dev/shm"]["fstype"] == "tmpfs"
    assert lines[13] == "1"


def test_linux_devices_created_with_mode_and_owner(rt, bundle):
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/rfs-zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o604, "uid": 12, "gid": 34},
        {"path": "/dev/sub/rfs-loop", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600},
        {"path": "/dev/rfs-fifo", "type": "p"},
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},  # already there: fine
    ]
    bundle.config["linux"]["resources"]["devices"] = [{"allow": True, "access": "rwm"}]
    out = run_ok(
        rt,
        bundle,
        "stat -c '%F %t:%T %a %u %g' /dev/rfs-zero /dev/sub/rfs-loop /dev/rfs-fifo; head -c 3 /dev/rfs-zero | wc -c",
    )
    assert out.splitlines() == [
        "character special file 1:5 604 12 34",
        "block special file 7:c8 600 0 0",
        "fifo 0:0 666 0 0",
        "3",
    ]


@runc_lacks("device path conflict check")
@pytest.mark.parametrize("existing", ["file", "other-device", "dir"])
def test_linux_device_clashing_with_existing_file_is_an_error(rt, bundle, existing):
    if existing == "file":
        path = "/etc/passwd"
    elif existing == "other-device":
        # a device of the image (a default device listed in linux.devices is
        # the config's, as with runc: tests/integration/compat/test_mounts.py)
        path = "/srv/zero"
        os.makedirs(os.path.join(bundle.rootfs, "srv"))
        os.mknod(os.path.join(bundle.rootfs, "srv/zero"), stat.S_IFCHR | 0o666, os.makedev(1, 5))
    else:
        path = "/etc"
    bundle.config["linux"]["devices"] = [{"path": path, "type": "c", "major": 1, "minor": 3}]
    bundle.sh("true")
    p = rt.run(new_id("rfs"), bundle)
    assert_one_error_line(p)
    if runtime_is_pyrunc:
        assert path in p.stderr


def test_devices_bound_from_host_in_userns(rt, userns_bundle):
    b = userns_bundle
    maps = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.set_namespace("user")
    b.config["linux"]["uidMappings"] = maps
    b.config["linux"]["gidMappings"] = maps
    subprocess.run(["chown", "-R", "100000:100000", b.path], check=True)
    b.config["linux"]["devices"] = [{"path": "/dev/full", "type": "c", "major": 1, "minor": 7}]
    out = run_ok(
        rt,
        b,
        "stat -c '%n %t:%T' /dev/null /dev/zero /dev/full; echo x > /dev/null && echo ok; "
        "grep ' /dev/null ' /proc/self/mountinfo",
    )
    lines = out.splitlines()
    assert lines[:4] == ["/dev/null 1:3", "/dev/zero 1:5", "/dev/full 1:7", "ok"]
    assert lines[4]  # a bind of the host node, not a mknod


def test_dev_console_is_the_pty_peer(rt, bundle, tmp_path):
    import socket
    import array

    d = tempfile.mkdtemp(prefix="rfs-cs-", dir="/tmp")
    path = os.path.join(d, "s")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    try:
        bundle.config["process"]["terminal"] = True
        bundle.sh(
            "stat -c '%t %F' /dev/console > /shared/console; grep ' /dev/console ' /proc/self/mountinfo "
            ">> /shared/console"
        )
        cid = new_id("rfs")
        assert rt.create(cid, bundle, "--console-socket", path).returncode == 0
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
        lines = open(os.path.join(bundle.shared, "console")).read().splitlines()
        assert int(lines[0].split()[0], 16) in range(136, 144) and "character special" in lines[0]
        assert "devpts" in lines[1]
    finally:
        srv.close()
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------------------
# maskedPaths / readonlyPaths


def test_masked_and_readonly_paths(rt, bundle):
    os.makedirs(os.path.join(bundle.rootfs, "secret/dir"))
    with open(os.path.join(bundle.rootfs, "secret/file"), "w") as f:
        f.write("top secret\n")
    with open(os.path.join(bundle.rootfs, "secret/dir/x"), "w") as f:
        f.write("hidden\n")
    os.makedirs(os.path.join(bundle.rootfs, "ro/sub"))
    bundle.config["root"]["readonly"] = False
    bundle.config["linux"]["maskedPaths"] = ["/secret/file", "/secret/dir", "/does/not/exist", "/proc/uptime"]
    bundle.config["linux"]["readonlyPaths"] = ["/ro", "/missing/too", "/proc/sys"]
    out = run_ok(
        rt,
        bundle,
        "cat /secret/file | wc -c; stat -c '%F %t:%T' /secret/file /proc/uptime; ls -A /secret/dir | wc -l; "
        "touch /secret/dir/y 2>/dev/null && echo WROTE-MASK; touch /ro/sub/y 2>/dev/null && echo WROTE-RO; "
        "echo 1 > /proc/sys/kernel/ns_last_pid 2>/dev/null && echo WROTE-SYS; "
        "cat /proc/self/mountinfo",
    )
    lines = out.splitlines()
    assert lines[:4] == ["0", "character special file 1:3", "character special file 1:3", "0"]
    assert not [x for x in lines if x.startswith("WROTE")]
    mi = parse_mountinfo(out)
    assert mi["/secret/dir"]["fstype"] == "tmpfs" and "ro" in mi["/secret/dir"]["opts"]
    assert "ro" in mi["/ro"]["opts"] and "noexec" not in mi["/ro"]["opts"]
    assert "ro" in mi["/proc/sys"]["opts"]
    assert open(os.path.join(bundle.rootfs, "secret/file")).read() == "top secret\n"


# --------------------------------------------------------------------------
# cgroup mounts


def _cgroup_points(mi):
    return {p: m for p, m in mi.items() if p.startswith("/sys/fs/cgroup")}


@pytest.mark.parametrize("cgroupns", [False, True])
def test_cgroup_mount_readonly_and_scoped(rt, bundle, cgroupns):
    if cgroupns:
        bundle.set_namespace("cgroup")
    mi = container_mountinfo(rt, bundle)
    points = _cgroup_points(mi)
    assert "/sys/fs/cgroup" in points
    # v1 hierarchies (on a hybrid host the controller-less v2 "unified"
    # hierarchy has no container cgroup of its own)
    hier = {p: m for p, m in points.items() if m["fstype"] == "cgroup"}
    assert hier, points
    for p, m in hier.items():
        assert "ro" in m["opts"], (p, m)
        if cgroupns:
            assert m["root"] == "/", (p, m)  # the namespace root
        else:
            assert bundle.cgroups_path in m["root"], (p, m)  # the container's own cgroup


def test_cgroup_mount_rw_when_configured(rt, bundle):
    bundle.set_namespace("cgroup")
    for m in bundle.config["mounts"]:
        if m["type"] == "cgroup":
            m["options"] = [o for o in m["options"] if o != "ro"] + ["rw"]
    mi = container_mountinfo(rt, bundle)
    hier = [m for m in _cgroup_points(mi).values() if m["fstype"] in ("cgroup", "cgroup2")]
    assert hier and all("rw" in m["opts"] for m in hier)


# --------------------------------------------------------------------------
# differential: pyrunc and runc produce the same mount table


@pytest.mark.skipif(not os.path.exists("/usr/sbin/runc") or not runtime_is_pyrunc, reason="needs runc")
def test_same_mount_table_as_runc(rt, bundle, tree, tmp_path):
    from helpers import Runtime

    add_mount(bundle, "/m", "bind", str(tree), ["rbind", "rro", "nosuid"])
    add_mount(bundle, "/t", "tmpfs", "tmpfs", ["noexec", "nodev", "size=1m", "mode=1777"])
    bundle.config["linux"]["maskedPaths"].append("/etc/group")
    bundle.config["linux"]["readonlyPaths"].append("/tmp")

    masked = set(bundle.config["linux"]["maskedPaths"])

    def table(runtime):
        # masked files: runc binds its /dev/null, pyrunc the host's verified one
        mi = parse_mountinfo(run_ok(runtime, bundle, "cat /proc/self/mountinfo"))
        # /sys/fs/cgroup: runc 1.1 leaves the tmpfs holding the hierarchies
        # writable, pyrunc makes it read-only too (CVE-2023-25809 class)
        return {
            p: (m["fstype"], sorted(m["opts"]), sorted(m["fields"]))
            for p, m in mi.items()
            if not p.startswith("/sys/fs/cgroup") and not (p in masked and m["root"] == "/null")
        }

    ours = table(rt)
    runc = Runtime(tempfile.mkdtemp(prefix="rfs-runc-", dir="/tmp"), path="/usr/sbin/runc")
    try:
        theirs = table(runc)
    finally:
        assert not runc.cleanup()
        shutil.rmtree(runc.root, ignore_errors=True)
    assert ours == theirs
