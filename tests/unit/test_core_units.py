"""Pure logic of the core: config conversion, the mount plan, ids."""

import pytest

from pyrunc import rootfs
from pyrunc.linux import syscalls as sc
from pyrunc.capabilities import CAP_NUMBERS
from pyrunc.config.convert import convert
from pyrunc.errors import ConfigError, InvalidID
from pyrunc.state import validate_id

BASE = {
    "ociVersion": "1.3.0",
    "root": {"path": "rootfs"},
    "process": {
        "args": ["sh"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "capabilities": {"bounding": ["CAP_KILL", "CAP_NOT_A_CAP"], "effective": ["CAP_KILL"]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}],
    },
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "data", "type": "none", "source": "/tmp", "options": ["rbind", "ro", "rprivate", "rnosuid"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755", "size=1m"]},
    ],
    "linux": {
        "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network", "path": "/run/netns/x"}],
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"],
    },
}


def test_convert_resolves_paths_flags_caps_and_rlimits():
    warnings = []
    cfg = convert(BASE, "/b", warn=warnings.append)
    assert cfg.root_path == "/b/rootfs"
    assert cfg.process.caps["bounding"] == [CAP_NUMBERS["CAP_KILL"]]
    assert any("CAP_NOT_A_CAP" in w for w in warnings)
    assert cfg.process.rlimits[0].resource == 7 and cfg.process.rlimits[0].soft == 10
    bind = cfg.mounts[1]
    assert bind.bind and bind.recursive and bind.flags & sc.MS_RDONLY
    assert bind.propagation == [sc.MS_PRIVATE | sc.MS_REC]
    assert bind.rec_attr_set == sc.MOUNT_ATTR_NOSUID
    tmp = cfg.mounts[2]
    assert tmp.flags == sc.MS_NOSUID and tmp.data == "mode=755,size=1m"
    assert cfg.has_new_namespace("pid") and not cfg.has_new_namespace("network")


def test_config_round_trips_through_its_persisted_form():
    from pyrunc.config.model import Config

    cfg = convert(BASE, "/b")
    again = Config.from_dict(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()


def test_mount_plan_order_and_relative_destination():
    cfg = convert(BASE, "/b")
    ops = rootfs.plan(cfg, in_userns=False)
    kinds = [type(op).__name__ for op in ops]
    assert kinds == ["PrepareRoot", "FsMount", "BindMount", "FsMount", "SetupDev", "MaskPaths", "ReadonlyPaths"]
    assert ops[2].m.destination == "/data"


@pytest.mark.parametrize(
    "dest,typ,msg", [("/proc", "tmpfs", "not of type proc"), ("/proc/sys/kernel/core_pattern", "bind", "inside /proc")]
)
def test_mount_plan_refuses_mounts_over_proc(dest, typ, msg):
    doc = dict(
        BASE,
        mounts=[{"destination": dest, "type": typ, "source": "/tmp", "options": ["bind"] if typ == "bind" else []}],
    )
    with pytest.raises(ConfigError, match=msg):
        rootfs.plan(convert(doc, "/b"), in_userns=False)


def test_proc_allowlist_is_accepted():
    doc = dict(BASE, mounts=[{"destination": "/proc/meminfo", "type": "bind", "source": "/tmp/x", "options": ["bind"]}])
    rootfs.plan(convert(doc, "/b"), in_userns=False)


@pytest.mark.parametrize("path,expected", [("/a/../../b", "/b"), ("a/./b/", "/a/b"), ("/", "/"), ("../../etc", "/etc")])
def test_clean_path_never_escapes(path, expected):
    assert rootfs.clean_path(path) == expected


@pytest.mark.parametrize("cid", ["a", "A-b_c.d+1", "x" * 100])
def test_valid_ids(cid):
    validate_id(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "a b", "ä", "a\nb"])
def test_invalid_ids(cid):
    with pytest.raises(InvalidID):
        validate_id(cid)


def test_sealed_imports_refuse_any_new_module():
    """After pivot_root the stages seal imports: a module not yet loaded can
    no longer be read (it would come from the container's image)."""
    import os

    pid = os.fork()
    if pid == 0:
        from pyrunc.stages.common import seal_imports

        seal_imports()
        import os as again  # already loaded: fine

        try:
            import xmlrpc.client  # noqa: F401  (never loaded by pyrunc)
        except ImportError:
            os._exit(0 if again is os else 2)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
