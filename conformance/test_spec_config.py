"""config.md: root, mounts, process, hooks, annotations, extensibility."""

import json
import os
import subprocess
import time

import pytest

from harness import CHECKER

clause = pytest.mark.clause
CF = "config.md"
PATH_ENV = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]


def rejects(lab, b, what):
    r = lab.create(b)
    assert not r.ok, f"create accepted {what}"
    assert lab.state(b.cid) is None, f"a container exists after rejecting {what}"


def mountinfo(report):
    """mountinfo lines as {mountpoint: (mount_opts set, optional fields set, fstype, super_opts set)};
    the last mount on a path wins (it is the visible one)."""
    out = {}
    for line in report["mountinfo"].splitlines():
        pre, post = line.split(" - ", 1)
        f = pre.split()
        fstype, _src, sopts = (post.split() + ["", ""])[:3]
        out[f[4]] = (set(f[5].split(",")), set(x.split(":")[0] for x in f[6:]), fstype, set(sopts.split(",")))
    return out


# ---------------------------------------------------------------- version / root


@clause(CF, "Specification version", "MUST be in SemVer v2.0.0 format")
def test_oci_version_must_be_semver(lab):
    b = lab.bundle()
    b.config["ociVersion"] = "not a version"
    rejects(lab, b, "a non-SemVer ociVersion")


@clause(CF, "Root", "A directory MUST exist at the path declared by the field.")
def test_root_path_must_exist(lab):
    b = lab.bundle()
    b.config["root"]["path"] = "no-such-rootfs"
    rejects(lab, b, "a missing root.path")


@clause(CF, "Root", "If true then the root filesystem MUST be read-only inside the container")
def test_readonly_root(lab):
    b = lab.bundle([CHECKER, "touch:/newfile", "touch:/oc-out/newfile"])
    b.config["root"]["readonly"] = True
    rep = lab.run_to_exit(b)
    assert rep["touch:/newfile"] == 30, f"root not read-only: errno {rep['touch:/newfile']}"
    assert rep["touch:/oc-out/newfile"] == 0, "a rw bind mount under a read-only root became read-only"


# ---------------------------------------------------------------- mounts


@clause(CF, "Mounts", "The runtime MUST mount entries in the listed order.")
def test_mounts_in_listed_order(lab):
    """/a then /a/b: in listed order /a/b is a mount on top of the /a tmpfs;
    in any other order the /a tmpfs would hide /a/b."""
    b = lab.bundle()
    b.config["mounts"] += [
        {"destination": "/a", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"]},
        {"destination": "/a/b", "type": "tmpfs", "source": "tmpfs", "options": ["mode=700"]},
    ]
    rep = lab.run_to_exit(b)
    ids = {}
    for line in rep["mountinfo"].splitlines():
        f = line.split()
        ids[f[4]] = (f[0], f[1])
    assert "/a" in ids and "/a/b" in ids, "a listed mount is missing"
    assert ids["/a/b"][1] == ids["/a"][0], "/a/b is not mounted on top of the /a mount"


@clause(CF, "Mounts", "it MAY be a relative path, in which case it MUST be interpreted as relative to")
def test_relative_mount_destination(lab):
    b = lab.bundle()
    b.config["mounts"].append({"destination": "relmnt", "type": "tmpfs", "source": "tmpfs"})
    mi = mountinfo(lab.run_to_exit(b))
    assert "/relmnt" in mi and mi["/relmnt"][2] == "tmpfs"


def _host_tree(b, sub_flags=()):
    """A host directory with a file and a tmpfs sub-mount (flags applied), for
    bind/rbind and recursive-option tests.  Mounted in the sandbox's mount namespace."""
    src = b.path / "tree"
    (src / "sub").mkdir(parents=True)
    (src / "file").write_text("host")
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(("size=1m",) + tuple(sub_flags)), "octree", str(src / "sub")],
        check=True,
    )
    b.cleanup_mounts = [str(src / "sub")]
    return src


@pytest.fixture
def umount_after():
    paths = []
    yield paths
    for p in reversed(paths):
        subprocess.run(["umount", "-l", p], capture_output=True)


# (options, host sub-mount flags, predicate on (top, sub) mountinfo tuples)
# top/sub = (mount opts, optional fields, fstype, super opts); sub is None for non-recursive.
def _has(opt):
    return lambda top, sub: opt in top[0]


def _lacks(opt):
    return lambda top, sub: opt not in top[0]


def _sub_has(opt):
    return lambda top, sub: sub is not None and opt in sub[0]


def _sub_lacks(opt):
    return lambda top, sub: sub is not None and opt not in sub[0]


def _mounted(top, sub):
    return True


MOUNT_OPTIONS = {
    # option: (kind, options, host sub-mount flags, predicate)
    "async": ("tmpfs", ["sync", "async"], (), _lacks("sync")),
    "atime": ("tmpfs", ["noatime", "atime"], (), _lacks("noatime")),
    "bind": ("bind", ["bind"], (), lambda t, s: s is None),
    "defaults": ("tmpfs", ["defaults"], (), _has("rw")),
    "dev": ("tmpfs", ["nodev", "dev"], (), _lacks("nodev")),
    "diratime": ("tmpfs", ["nodiratime", "diratime"], (), _lacks("nodiratime")),
    "dirsync": ("tmpfs", ["dirsync"], (), lambda t, s: "dirsync" in t[0] | t[3]),
    "exec": ("tmpfs", ["noexec", "exec"], (), _lacks("noexec")),
    "iversion": ("tmpfs", ["iversion"], (), _mounted),
    "lazytime": ("tmpfs", ["lazytime"], (), lambda t, s: "lazytime" in t[0] | t[3]),
    "loud": ("tmpfs", ["silent", "loud"], (), _mounted),
    "noatime": ("tmpfs", ["noatime"], (), _has("noatime")),
    "nodev": ("tmpfs", ["nodev"], (), _has("nodev")),
    "nodiratime": ("tmpfs", ["nodiratime"], (), _has("nodiratime")),
    "noexec": ("tmpfs", ["noexec"], (), _has("noexec")),
    "noiversion": ("tmpfs", ["noiversion"], (), _mounted),
    "nolazytime": ("tmpfs", ["lazytime", "nolazytime"], (), lambda t, s: "lazytime" not in t[0] | t[3]),
    "norelatime": ("tmpfs", ["norelatime"], (), _mounted),
    "nostrictatime": ("tmpfs", ["nostrictatime"], (), _has("relatime")),
    "nosuid": ("tmpfs", ["nosuid"], (), _has("nosuid")),
    "nosymfollow": ("tmpfs", ["nosymfollow"], (), _has("nosymfollow")),
    "private": ("bind", ["rbind", "private"], (), lambda t, s: not ({"shared", "master"} & t[1])),
    "ratime": ("bind", ["rbind", "ratime"], ("noatime",), _sub_lacks("noatime")),
    "rbind": ("bind", ["rbind"], (), lambda t, s: s is not None),
    "rdev": ("bind", ["rbind", "rdev"], ("nodev",), _sub_lacks("nodev")),
    "rdiratime": ("bind", ["rbind", "rdiratime"], ("nodiratime",), _sub_lacks("nodiratime")),
    "relatime": ("tmpfs", ["relatime"], (), _has("relatime")),
    "remount": ("remount", ["remount", "ro"], (), _has("ro")),
    "rexec": ("bind", ["rbind", "rexec"], ("noexec",), _sub_lacks("noexec")),
    "rnoatime": ("bind", ["rbind", "rnoatime"], (), _sub_has("noatime")),
    "rnodiratime": ("bind", ["rbind", "rnodiratime"], (), _sub_has("nodiratime")),
    "rnoexec": ("bind", ["rbind", "rnoexec"], (), _sub_has("noexec")),
    "rnorelatime": ("bind", ["rbind", "rnorelatime"], (), lambda t, s: s is not None),
    "rnostrictatime": ("bind", ["rbind", "rnostrictatime"], ("strictatime",), _sub_has("relatime")),
    "rnosuid": ("bind", ["rbind", "rnosuid"], (), _sub_has("nosuid")),
    "rnosymfollow": ("bind", ["rbind", "rnosymfollow"], (), _sub_has("nosymfollow")),
    "ro": ("tmpfs", ["ro"], (), _has("ro")),
    "rprivate": (
        "bind",
        ["rbind", "rprivate"],
        (),
        lambda t, s: s is not None and not ({"shared", "master"} & (t[1] | s[1])),
    ),
    "rrelatime": ("bind", ["rbind", "rrelatime"], ("strictatime",), _sub_has("relatime")),
    "rro": ("bind", ["rbind", "rro"], (), _sub_has("ro")),
    "rrw": ("bind", ["rbind", "rrw"], ("ro",), _sub_has("rw")),
    "rshared": ("bind", ["rbind", "rshared"], (), lambda t, s: s is not None and "shared" in t[1] and "shared" in s[1]),
    "rslave": (
        "shared-src",
        ["rbind", "rslave"],
        (),
        lambda t, s: s is not None and "master" in t[1] and "master" in s[1],
    ),
    "rstrictatime": (
        "bind",
        ["rbind", "rstrictatime"],
        (),
        lambda t, s: s is not None and not ({"relatime", "noatime"} & s[0]),
    ),
    "rsuid": ("bind", ["rbind", "rsuid"], ("nosuid",), _sub_lacks("nosuid")),
    "rsymfollow": ("bind", ["rbind", "rsymfollow"], ("nosymfollow",), _sub_lacks("nosymfollow")),
    "runbindable": (
        "bind",
        ["rbind", "runbindable"],
        (),
        lambda t, s: s is not None and "unbindable" in t[1] and "unbindable" in s[1],
    ),
    "rw": ("tmpfs", ["ro", "rw"], (), _has("rw")),
    "shared": ("bind", ["rbind", "shared"], (), lambda t, s: "shared" in t[1]),
    "silent": ("tmpfs", ["silent"], (), _mounted),
    "slave": ("shared-src", ["rbind", "slave"], (), lambda t, s: "master" in t[1]),
    "strictatime": ("tmpfs", ["strictatime"], (), lambda t, s: not ({"relatime", "noatime"} & t[0])),
    "suid": ("tmpfs", ["nosuid", "suid"], (), _lacks("nosuid")),
    "symfollow": ("tmpfs", ["nosymfollow", "symfollow"], (), _lacks("nosymfollow")),
    "sync": ("tmpfs", ["sync"], (), lambda t, s: "sync" in t[0] | t[3]),
    "unbindable": ("bind", ["bind", "unbindable"], (), lambda t, s: "unbindable" in t[1]),
}


@pytest.mark.parametrize(
    "option",
    [pytest.param(o, marks=clause(CF, "Linux mount options", f"`{o}", context=o), id=o) for o in MOUNT_OPTIONS],
)
def test_linux_mount_option(lab, option, umount_after):
    kind, options, sub_flags, pred = MOUNT_OPTIONS[option]
    b = lab.bundle()
    dest = "/m"
    if kind == "tmpfs":
        b.config["mounts"].append({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options})
    elif kind == "remount":
        b.config["mounts"] += [
            {"destination": dest, "type": "tmpfs", "source": "tmpfs"},
            {"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": options},
        ]
    else:
        src = b.path / "tree"
        (src / "sub").mkdir(parents=True)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", ",".join(("size=1m",) + sub_flags), "octree", str(src / "sub")], check=True
        )
        umount_after.append(str(src / "sub"))
        if kind == "shared-src":
            subprocess.run(["mount", "--rbind", str(src), str(src)], check=True)
            umount_after.append(str(src))
            subprocess.run(["mount", "--make-rshared", str(src)], check=True)
        b.config["mounts"].append({"destination": dest, "type": "bind", "source": str(src), "options": options})
    r = lab.create(b)
    assert r.ok, f"create with mount options {options} failed: {r}"
    assert lab.start(b.cid).ok
    assert lab.wait_status(b.cid, "stopped") == "stopped"
    mi = mountinfo(b.report())
    assert dest in mi, f"{dest} is not a mount point"
    sub = mi.get(dest + "/sub")
    assert pred(mi[dest], sub), f"options {options}: top={mi[dest]} sub={sub}"


@pytest.mark.parametrize(
    "option",
    [
        pytest.param(
            "idmap",
            marks=[
                clause(
                    CF,
                    "Linux mount options",
                    "If there are no `uidMappings` and `gidMappings` specified and the container isn't using user namespaces",
                    context="idmap",
                )
            ],
        ),
        pytest.param(
            "ridmap",
            marks=[
                clause(
                    CF,
                    "Linux mount options",
                    "If there are no `uidMappings` and `gidMappings` specified and the container isn't using user namespaces",
                    context="ridmap",
                )
            ],
        ),
    ],
)
def test_idmap_without_mappings_or_userns_errors(lab, option):
    b = lab.bundle()
    (b.path / "src").mkdir()
    b.config["mounts"].append(
        {"destination": "/m", "type": "bind", "source": str(b.path / "src"), "options": ["rbind", option]}
    )
    rejects(lab, b, f"an {option} mount without mappings and without a user namespace")


@pytest.mark.parametrize(
    "option",
    [
        pytest.param(
            "idmap",
            marks=[
                clause(CF, "Linux mount options", "`idmap` | SHOULD", context="idmap"),
                clause(
                    CF,
                    "Linux mount options",
                    "the runtime MUST use those values for the mount's mapping",
                    context="idmap",
                ),
                clause(
                    CF, "Linux mount options", "This option SHOULD NOT be passed to the underlying", context="idmap"
                ),
                clause(
                    CF,
                    "POSIX-platform Mounts",
                    "If specified, the `options` field of the `mounts` structure SHOULD contain",
                    context="uidMappings",
                ),
            ],
        ),
        pytest.param(
            "ridmap",
            marks=[
                clause(CF, "Linux mount options", "`ridmap` | SHOULD", context="ridmap"),
                clause(
                    CF,
                    "Linux mount options",
                    "the runtime MUST use those values for the mount's mapping",
                    context="ridmap",
                ),
                clause(
                    CF, "Linux mount options", "This option SHOULD NOT be passed to the underlying", context="ridmap"
                ),
                clause(
                    CF,
                    "POSIX-platform Mounts",
                    "If specified, the `options` field of the `mounts` structure SHOULD contain",
                    context="gidMappings",
                ),
            ],
        ),
    ],
)
def test_idmapped_mount(lab, option):
    b = lab.bundle([CHECKER, "stat:/m/owned"])
    src = b.path / "src"
    src.mkdir()
    (src / "owned").write_text("x")
    # The mapping has the user-namespace format: the kernel (MOUNT_ATTR_IDMAP)
    # reads an on-disk id as a containerID and shows it as hostID + offset.
    # runc 1.2's idmap.bats and crun agree: with no user namespace, on-disk
    # 123 is seen as 100123.
    os.chown(src / "owned", 123, 456)
    b.config["mounts"].append(
        {
            "destination": "/m",
            "type": "bind",
            "source": str(src),
            "options": ["rbind", option],
            "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 1000}],
            "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 1000}],
        }
    )
    rep = lab.run_to_exit(b)
    st = rep["stat:/m/owned"]
    assert (st["uid"], st["gid"]) == (100123, 100456), f"idmapped file owner seen as {st}"


@pytest.mark.parametrize(
    "present,missing",
    [
        pytest.param(
            "uidMappings",
            "gidMappings",
            marks=clause(CF, "POSIX-platform Mounts", "If specified, it MUST be specified along with `gidMappings`."),
        ),
        pytest.param(
            "gidMappings",
            "uidMappings",
            marks=clause(CF, "POSIX-platform Mounts", "If specified, it MUST be specified along with `uidMappings`."),
        ),
    ],
)
def test_mount_mappings_come_in_pairs(lab, present, missing):
    b = lab.bundle()
    (b.path / "src").mkdir()
    b.config["mounts"].append(
        {
            "destination": "/m",
            "type": "bind",
            "source": str(b.path / "src"),
            "options": ["rbind", "idmap"],
            present: [{"containerID": 0, "hostID": 100000, "size": 1000}],
        }
    )
    rejects(lab, b, f"a mount with {present} but no {missing}")


# ---------------------------------------------------------------- process


@clause(CF, "Process", "Runtimes MUST ignore `consoleSize` if `terminal` is `false` or unset.")
def test_console_size_ignored_without_terminal(lab):
    b = lab.bundle()
    b.process["consoleSize"] = {"height": 10, "width": 20}
    rep = lab.run_to_exit(b)
    assert rep["pid"] == 1


@clause(CF, "Process", "This value MUST be an absolute path.", context="cwd")
def test_cwd_must_be_absolute(lab):
    b = lab.bundle()
    b.process["cwd"] = "tmp"
    rejects(lab, b, "a relative process.cwd")


@clause(CF, "POSIX process", "The runtime MUST generate an error for any values which cannot be mapped")
def test_unknown_rlimit_type(lab):
    b = lab.bundle()
    b.process["rlimits"].append({"type": "RLIMIT_NOT_A_LIMIT", "soft": 1, "hard": 1})
    rejects(lab, b, "an unknown rlimit type")


@clause(CF, "POSIX process", "a `getrlimit(3)` on `type` MUST succeed.")
@clause(CF, "POSIX process", "`rlim.rlim_cur` MUST match the configured value.")
@clause(CF, "POSIX process", "`rlim.rlim_max` MUST match the configured value.")
def test_rlimits_applied(lab):
    b = lab.bundle()
    b.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654},
        {"type": "RLIMIT_CORE", "soft": 4096, "hard": 8192},
        {"type": "RLIMIT_NPROC", "soft": 1111, "hard": 2222},
    ]
    rl = lab.run_to_exit(b)["rlimits"]
    assert rl["RLIMIT_NOFILE"] == {"soft": 321, "hard": 654}
    assert rl["RLIMIT_CORE"] == {"soft": 4096, "hard": 8192}
    assert rl["RLIMIT_NPROC"] == {"soft": 1111, "hard": 2222}


@clause(
    CF,
    "POSIX process",
    "If `rlimits` contains duplicated entries with same `type`, the runtime MUST generate an error.",
)
def test_duplicate_rlimits(lab):
    b = lab.bundle()
    b.process["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100},
        {"type": "RLIMIT_NOFILE", "soft": 200, "hard": 200},
    ]
    rejects(lab, b, "duplicated rlimit types")


@clause(CF, "Linux Process", "cannot be granted otherwise MUST be logged as a warning by the runtime.")
@clause(
    CF,
    "Linux Process",
    "Runtimes SHOULD NOT fail if the container configuration requests capabilities that cannot be granted",
)
def test_unknown_capability_warns(lab):
    b = lab.bundle()
    for s in ("bounding", "effective", "permitted"):
        b.process["capabilities"][s].append("CAP_OC_NOT_A_CAPABILITY")
    r = lab.create(b)
    assert r.ok, f"create failed on an ungrantable capability: {r}"
    assert "CAP_OC_NOT_A_CAPABILITY" in b.stderr(), "no warning names the ungrantable capability"


@clause(CF, "Linux Process", "If `oomScoreAdj` is set, the runtime MUST set `oom_score_adj` to the given value.")
def test_oom_score_adj_set(lab):
    b = lab.bundle()
    b.process["oomScoreAdj"] = 321
    assert lab.run_to_exit(b)["oom_score_adj"] == 321


@clause(CF, "Linux Process", "If `oomScoreAdj` is not set, the runtime MUST NOT change the value of `oom_score_adj`.")
def test_oom_score_adj_untouched(lab):
    path = "/proc/self/oom_score_adj"
    old = open(path).read().strip()
    with open(path, "w") as f:
        f.write("123")
    try:
        b = lab.bundle()
        r = lab.create(b)
    finally:
        with open(path, "w") as f:
            f.write(old)
    assert r.ok, str(r)
    assert lab.start(b.cid).ok
    lab.wait_status(b.cid, "stopped")
    assert b.report()["oom_score_adj"] == 123


@clause(CF, "Linux Process", "If omitted or empty, runtime SHOULD NOT change process' CPU affinity")
def test_cpu_affinity_untouched(lab):
    b = lab.bundle()
    assert sorted(lab.run_to_exit(b)["cpus"]) == sorted(os.sched_getaffinity(0))


# ---------------------------------------------------------------- hooks


def hook(b, name, script, path="/bin/sh", **extra):
    h = {"path": path, "args": [os.path.basename(path), "-c", script], "env": PATH_ENV}
    h.update(extra)
    b.config.setdefault("hooks", {}).setdefault(name, []).append(h)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            "prestart",
            marks=clause(CF, "POSIX-platform Hooks", "**`path`** MUST be absolute.", context="hooks.prestart.path"),
        ),
        pytest.param(
            "createRuntime",
            marks=clause(
                CF, "POSIX-platform Hooks", "**`path`** MUST be absolute.", context="hooks.createRuntime.path"
            ),
        ),
    ],
)
def test_hook_path_must_be_absolute(lab, name):
    b = lab.bundle()
    hook(b, name, "true", path="bin/sh")
    rejects(lab, b, f"a relative {name} hook path")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            "prestart",
            marks=clause(
                CF, "POSIX-platform Hooks", "`timeout` MUST be greater than zero.", context="hooks.prestart.timeout"
            ),
        ),
        pytest.param(
            "createRuntime",
            marks=clause(
                CF,
                "POSIX-platform Hooks",
                "`timeout` MUST be greater than zero.",
                context="hooks.createRuntime.timeout",
            ),
        ),
    ],
)
def test_hook_timeout_must_be_positive(lab, name):
    b = lab.bundle()
    hook(b, name, "true", timeout=0)
    rejects(lab, b, f"a {name} hook with timeout 0")


def _ns_script(out):
    return f"cat > {out}.state; for n in mnt pid net uts; do readlink /proc/self/ns/$n; done > {out}"


HOST_NS = None


def host_ns():
    return [os.readlink(f"/proc/self/ns/{n}") for n in ("mnt", "pid", "net", "uts")]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            "prestart",
            marks=[
                clause(
                    CF,
                    "POSIX-platform Hooks",
                    "The value of `path` MUST resolve in the runtime namespace.",
                    context="hooks.prestart",
                ),
                clause(
                    CF,
                    "POSIX-platform Hooks",
                    "The `prestart` hooks MUST be executed in the runtime namespace.",
                    context="hooks.prestart",
                ),
                clause(CF, "Prestart", "The `prestart` hooks' path MUST resolve in the runtime namespace."),
                clause(CF, "Prestart", "The `prestart` hooks MUST be executed in the runtime namespace."),
            ],
        ),
        pytest.param(
            "createRuntime",
            marks=[
                clause(
                    CF,
                    "POSIX-platform Hooks",
                    "The value of `path` MUST resolve in the runtime namespace.",
                    context="hooks.createRuntime",
                ),
                clause(
                    CF,
                    "POSIX-platform Hooks",
                    "The `createRuntime` hooks MUST be executed in the runtime namespace.",
                    context="hooks.createRuntime",
                ),
                clause(
                    CF, "CreateRuntime Hooks", "The `createRuntime` hooks' path MUST resolve in the runtime namespace."
                ),
                clause(
                    CF, "CreateRuntime Hooks", "The `createRuntime` hooks MUST be executed in the runtime namespace."
                ),
            ],
        ),
        pytest.param(
            "poststart",
            marks=[
                clause(
                    CF,
                    "POSIX-platform Hooks",
                    "The value of `path` MUST resolve in the runtime namespace.",
                    context="hooks.poststart",
                ),
                clause(
                    CF,
                    "POSIX-platform Hooks",
                    "The `poststart` hooks MUST be executed in the runtime namespace.",
                    context="hooks.poststart",
                ),
                clause(CF, "Poststart", "The `poststart` hooks' path MUST resolve in the runtime namespace."),
                clause(CF, "Poststart", "The `poststart` hooks MUST be executed in the runtime namespace."),
            ],
        ),
        pytest.param(
            "poststop",
            marks=[
                clause(
                    CF,
                    "POSIX-platform Hooks",
                    "The value of `path` MUST resolve in the runtime namespace.",
                    context="hooks.poststop",
                ),
                clause(
                    CF,
                    "POSIX-platform Hooks",
                    "The `poststop` hooks MUST be executed in the runtime namespace.",
                    context="hooks.poststop",
                ),
                clause(CF, "Poststop", "The `poststop` hooks' path MUST resolve in the runtime namespace."),
                clause(CF, "Poststop", "The `poststop` hooks MUST be executed in the runtime namespace."),
            ],
        ),
    ],
)
def test_runtime_namespace_hooks(lab, name):
    b = lab.bundle(["/bin/sleep", "30"])
    script = b.path / "hook.sh"  # exists on the host only, not in the rootfs
    script.write_text(f"#!/bin/sh\n{_ns_script(b.out / name)}\n")
    script.chmod(0o755)
    b.config.setdefault("hooks", {})[name] = [{"path": str(script), "env": PATH_ENV}]
    assert lab.create(b).ok
    assert lab.start(b.cid).ok
    assert lab.kill(b.cid, "KILL").ok
    lab.wait_status(b.cid, "stopped")
    assert lab.delete(b.cid).ok
    seen = (b.out / name).read_text().split()
    assert seen == host_ns(), f"{name} hook ran in namespaces {seen}, runtime's are {host_ns()}"


@clause(
    CF,
    "POSIX-platform Hooks",
    "The value of `path` MUST resolve in the runtime namespace.",
    context="hooks.createContainer",
)
@clause(
    CF,
    "POSIX-platform Hooks",
    "The `createContainer` hooks MUST be executed in the container namespace.",
    context="hooks.createContainer",
)
@clause(CF, "CreateContainer Hooks", "The `createContainer` hooks' path MUST resolve in the runtime namespace.")
@clause(CF, "CreateContainer Hooks", "The `createContainer` hooks MUST be executed in the container namespace.")
def test_create_container_hook_namespaces(lab):
    b = lab.bundle(["/bin/sleep", "30"])
    script = b.path / "hook.sh"
    script.write_text(f"#!/bin/sh\n{_ns_script(b.out / 'cc')}\n")
    script.chmod(0o755)
    b.config["hooks"] = {"createContainer": [{"path": str(script), "env": PATH_ENV}]}
    r = lab.create(b)
    assert r.ok, f"create failed: {r}"
    pid = lab.state(b.cid)["pid"]
    seen = (b.out / "cc").read_text().split()
    assert seen[0] == os.readlink(f"/proc/{pid}/ns/mnt"), "createContainer hook not in the container mount namespace"


@clause(
    CF,
    "POSIX-platform Hooks",
    "The value of `path` MUST resolve in the container namespace.",
    context="hooks.startContainer",
)
@clause(
    CF,
    "POSIX-platform Hooks",
    "The `startContainer` hooks MUST be executed in the container namespace.",
    context="hooks.startContainer",
)
@clause(CF, "StartContainer Hooks", "The `startContainer` hooks' path MUST resolve in the container namespace.")
@clause(CF, "StartContainer Hooks", "The `startContainer` hooks MUST be executed in the container namespace.")
@clause(CF, "StartContainer Hooks", "MUST be called before the user-specified process is executed")
def test_start_container_hook(lab):
    b = lab.bundle(["/bin/sh", "-c", "test -e /oc-out/sc && touch /oc-out/after-hook; sleep 30"])
    script = b.rootfs / "oc-hook.sh"  # exists in the rootfs only
    script.write_text("#!/bin/sh\nreadlink /proc/self/ns/mnt > /oc-out/sc\n")
    script.chmod(0o755)
    assert not os.path.exists("/oc-hook.sh")
    b.config["hooks"] = {"startContainer": [{"path": "/oc-hook.sh", "env": PATH_ENV}]}
    assert lab.create(b).ok
    pid = lab.state(b.cid)["pid"]
    r = lab.start(b.cid)
    assert r.ok, f"start failed: {r}"
    deadline = time.monotonic() + 5
    while not (b.out / "after-hook").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (b.out / "sc").read_text().strip() == os.readlink(f"/proc/{pid}/ns/mnt")
    assert (b.out / "after-hook").exists(), "the user process ran before the startContainer hook"


@clause(CF, "POSIX-platform Hooks", "Hooks MUST be called in the listed order.")
@clause(CF, "Prestart", "The `prestart` hooks MUST be called before the `createRuntime` hooks.")
@clause(CF, "CreateContainer Hooks", "The `createContainer` hooks MUST be called after the `createRuntime` hooks.")
def test_hook_order(lab):
    b = lab.bundle(["/bin/sleep", "30"])
    log = b.out / "order"
    for name in ("createContainer", "createRuntime", "prestart"):
        for i in (1, 2):
            hook(b, name, f"echo {name}{i} >> {log}")
    assert lab.create(b).ok
    assert log.read_text().split() == [
        "prestart1",
        "prestart2",
        "createRuntime1",
        "createRuntime2",
        "createContainer1",
        "createContainer2",
    ]


@clause(CF, "POSIX-platform Hooks", "The state of the container MUST be passed to hooks over stdin")
def test_hook_receives_state(lab):
    b = lab.bundle(["/bin/sleep", "30"])
    b.config["annotations"] = {"org.example.oc": "hooked"}
    hook(b, "createRuntime", f"cat > {b.out}/state.json")
    assert lab.create(b).ok
    st = json.loads((b.out / "state.json").read_text())
    assert st["id"] == b.cid and os.path.samefile(st["bundle"], b.path)
    assert st["pid"] == lab.state(b.cid)["pid"]
    assert st.get("annotations", {}).get("org.example.oc") == "hooked"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(
            "prestart",
            marks=clause(CF, "Prestart", "The `prestart` hooks MUST be called as part of the `create` operation"),
        ),
        pytest.param(
            "createRuntime",
            marks=clause(
                CF, "CreateRuntime Hooks", "The `createRuntime` hooks MUST be called as part of the `create` operation"
            ),
        ),
        pytest.param(
            "createContainer",
            marks=clause(
                CF,
                "CreateContainer Hooks",
                "The `createContainer` hooks MUST be called as part of the `create` operation",
            ),
        ),
    ],
)
def test_create_hooks_before_pivot_root(lab, name):
    """After the environment exists (the init has its namespaces) but before
    pivot_root: the init's root is still the host's, so it has no /checker."""
    b = lab.bundle(["/bin/sleep", "30"])
    out = b.out / name
    if name == "createContainer":
        # runs inside the container's mount namespace: before pivot_root its
        # root is still the host's, where the bundle is visible
        hook(
            b,
            name,
            f"readlink /proc/self/ns/net > {out}; "
            f"test -e {b.path}/config.json && echo not-pivoted >> {out} || echo pivoted >> {out}",
        )
    else:
        hook(
            b,
            name,
            'read -r st; pid=$(echo "$st" | sed -n \'s/.*"pid": *\\([0-9]*\\).*/\\1/p\'); '
            f"readlink /proc/$pid/ns/net > {out}; "
            f"test -e /proc/$pid/root/checker && echo pivoted >> {out} || echo not-pivoted >> {out}",
        )
    r = lab.create(b)
    assert r.ok, str(r)
    net, pivot = out.read_text().split()
    assert net == os.readlink(f"/proc/{lab.state(b.cid)['pid']}/ns/net"), (
        "the hook did not see the container's network namespace: environment not yet created"
    )
    assert pivot == "not-pivoted", f"{name} hook ran after pivot_root"


@clause(
    CF,
    "Poststart",
    "The `poststart` hooks MUST be called after the user-specified process is executed but before the `start` operation returns.",
)
def test_poststart_timing(lab):
    b = lab.bundle(["/bin/sleep", "31"])
    out = b.out / "ps"
    hook(
        b,
        "poststart",
        'read -r st; pid=$(echo "$st" | sed -n \'s/.*"pid": *\\([0-9]*\\).*/\\1/p\'); '
        f"tr '\\0' ' ' < /proc/$pid/cmdline > {out}",
    )
    assert lab.create(b).ok
    assert not out.exists(), "poststart ran during create"
    assert lab.start(b.cid).ok
    assert out.exists(), "poststart had not run when start returned"
    assert out.read_text().split() == ["/bin/sleep", "31"], "poststart ran before the user process was executed"


@clause(
    CF,
    "Poststop",
    "The `poststop` hooks MUST be called after the container is deleted but before the `delete` operation returns.",
)
def test_poststop_timing(lab):
    b = lab.bundle(["/bin/true"])
    out = b.out / "pstop"
    hook(
        b,
        "poststop",
        f"{lab.rt.path} --root {lab.rt.root} state {b.cid} >/dev/null 2>&1 "
        f"&& echo still-there > {out} || echo deleted > {out}",
    )
    assert lab.create(b).ok
    assert lab.start(b.cid).ok
    lab.wait_status(b.cid, "stopped")
    assert lab.delete(b.cid).ok
    assert out.exists(), "poststop had not run when delete returned"
    assert out.read_text().strip() == "deleted", "poststop ran before the container was deleted"


# ---------------------------------------------------------------- annotations / extensibility


@clause(CF, "Annotations", "Annotations MUST be a key-value map.")
def test_annotations_must_be_map(lab):
    b = lab.bundle()
    b.config["annotations"] = ["a=b"]
    rejects(lab, b, "annotations given as a list")


@clause(CF, "Annotations", "Keys MUST NOT be an empty string.")
def test_annotation_key_not_empty(lab):
    b = lab.bundle()
    b.config["annotations"] = {"": "x"}
    rejects(lab, b, "an empty annotation key")


@clause(CF, "Annotations", "Values MUST be strings.")
def test_annotation_values_strings(lab):
    b = lab.bundle()
    b.config["annotations"] = {"org.example.n": 5}
    rejects(lab, b, "a non-string annotation value")


@clause(CF, "Annotations", "Runtimes MUST handle unknown annotation keys like any other unknown property.")
def test_unknown_annotation_accepted(lab):
    b = lab.bundle(["/bin/sleep", "30"])
    b.config["annotations"] = {"org.example.unknown.key": "v"}
    assert lab.create(b).ok
    assert lab.state(b.cid).get("annotations", {}).get("org.example.unknown.key") == "v"


@clause(CF, "Extensibility", "Runtimes MAY log unknown properties but MUST otherwise ignore them.")
def test_unknown_properties_ignored(lab):
    b = lab.bundle()
    b.config["ocUnknownTopLevel"] = {"a": 1}
    b.process["ocUnknownProcessField"] = [1, 2]
    b.linux["ocUnknownLinuxField"] = "x"
    rep = lab.run_to_exit(b)
    assert rep["pid"] == 1


@clause(CF, "Valid values", "Runtimes MUST generate an error when invalid or unsupported values are encountered.")
def test_invalid_value_rejected(lab):
    b = lab.bundle()
    b.linux["namespaces"].append({"type": "oc-not-a-namespace"})
    rejects(lab, b, "an unknown namespace type")
