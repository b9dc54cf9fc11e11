"""The config cache of create (pyrunc/config/cache.py): a hit gives exactly
the verdict (warning lines, in order) and the document and model of a fresh
validation; a corrupted or foreign entry is ignored; a changed host fact or
code stamp is a miss; an invalid config is never cached."""

import copy
import json
import os

import pytest

from helpers import RUNTIME_NAME, default_config, new_id
from pyrunc.config import cache
from pyrunc.config.model import Record
from pyrunc.errors import ConfigError


def _with(cfg, *edits):
    cfg = copy.deepcopy(cfg)
    for path, value in edits:
        node = cfg
        for key in path[:-1]:
            node = node[key]
        if value is _DELETE:
            del node[path[-1]]
        else:
            node[path[-1]] = value
    return cfg


_DELETE = object()
BASE = default_config(["sh"])

CONFIGS = {
    "default": BASE,
    "warnings": _with(BASE, (("ociVersion",), _DELETE),                       # missing: warned
                      (("linux", "resources"), {"pids": {}}),                 # no limit: warned, dropped
                      (("process", "user"), {"gid": 0}),                       # no uid: warned
                      (("process", "consoleSize"), {"height": 24})),           # no width: warned
    "relative-root": _with(BASE, (("root",), {"path": "rootfs", "readonly": True})),
    "rich": _with(BASE,
                  (("hostname",), "cached"),
                  (("annotations",), {"a": "1", "b": "x" * 300}),
                  (("hooks",), {"poststart": [{"path": "/bin/true", "args": ["true", "x"], "timeout": 3}]}),
                  (("linux", "sysctl"), {"net.ipv4.ip_forward": "1"}),
                  (("linux", "seccomp"), {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                      {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                       "args": [{"index": 1, "op": "SCMP_CMP_EQ"}]}]}),   # no value: 0, warned
                  (("mounts",), BASE["mounts"] + [{"destination": "/data", "type": "tmpfs", "source": "tmpfs",
                                                   "options": ["nosuid", "rro", "size=1m", "mode=755"]}])),
    "nulls": _with(BASE, (("hostname",), None), (("annotations",), None)),    # dropped: warned
    "userns-devices": _with(BASE,
                            (("linux", "namespaces"), BASE["linux"]["namespaces"] + [{"type": "user"}]),
                            (("linux", "uidMappings"), [{"containerID": 0, "hostID": 100000, "size": 65536}]),
                            (("linux", "gidMappings"), [{"containerID": 0, "hostID": 100000, "size": 65536}]),
                            (("linux", "devices"), [{"path": "/dev/fuse", "type": "c", "major": 10,
                                                     "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0}]),
                            (("mounts",), BASE["mounts"] + [{"destination": "/mapped", "type": "bind",
                                                             "source": "/tmp", "options": ["rbind", "idmap"]}])),
}


def _same(a, b, where="model"):
    """Equal values of the same types all the way down (Records by field)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, Record):
        for name in type(a).FIELDS:
            _same(getattr(a, name), getattr(b, name), f"{where}.{name}")
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            _same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("PYRUNC_CONFIG_CACHE", str(d))
    return d


@pytest.fixture
def fresh_calls(monkeypatch):
    """Counts the fresh validations done by load_validated."""
    calls = []
    real = cache.fresh

    def counted(*a, **kw):
        calls.append(a)
        return real(*a, **kw)
    monkeypatch.setattr(cache, "fresh", counted)
    return calls


def _bundle(tmp_path, doc, name="bundle"):
    b = tmp_path / name
    b.mkdir(exist_ok=True)
    (b / "config.json").write_text(json.dumps(doc, indent=1))
    return str(b)


def _load(bundle, systemd=False):
    warned = []
    doc, cfg = cache.load_validated(os.path.join(bundle, "config.json"), bundle, systemd_cgroup=systemd,
                                    warn=warned.append)
    return warned, doc, cfg


def _fresh(bundle, systemd=False):
    warned = []
    doc, cfg = cache.fresh(os.path.join(bundle, "config.json"), bundle, systemd, warned.append)
    return warned, doc, cfg


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_hit_gives_exactly_the_fresh_verdict_and_model(tmp_path, cache_dir, fresh_calls, name):
    bundle = _bundle(tmp_path, CONFIGS[name])
    expected = _fresh(bundle)
    fresh_calls.clear()
    first = _load(bundle)                     # a miss: validated, stored
    assert len(fresh_calls) == 1
    assert len(os.listdir(cache_dir)) == 1
    second = _load(bundle)                    # a hit: nothing validated
    assert len(fresh_calls) == 1
    for got in (first, second):
        _same(got[0], expected[0], "warnings")
        _same(got[1], expected[1], "doc")
        _same(got[2], expected[2], "model")
    if name in ("warnings", "rich", "nulls"):
        assert expected[0], "the case is meant to give warning lines"


def test_the_key_covers_bundle_and_systemd_flag(tmp_path, cache_dir, fresh_calls):
    a = _bundle(tmp_path, CONFIGS["relative-root"], "a")
    b = _bundle(tmp_path, CONFIGS["relative-root"], "b")    # same bytes, another bundle
    _load(a)
    _, _, cfg_b = _load(b)
    assert cfg_b.root_path == os.path.join(b, "rootfs")
    _load(a, systemd=True)
    assert len(fresh_calls) == 3


def test_an_invalid_config_is_never_cached(tmp_path, cache_dir, fresh_calls):
    bundle = _bundle(tmp_path, _with(BASE, (("process", "args"), "not-a-list")))
    for _ in range(2):
        with pytest.raises(ConfigError) as fresh_err:
            _fresh(bundle)
        with pytest.raises(ConfigError) as cached_err:
            _load(bundle)
        assert str(cached_err.value) == str(fresh_err.value)
    assert not cache_dir.exists() or not os.listdir(cache_dir)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "empty", "other-key"])
def test_a_corrupted_entry_is_ignored_and_rewritten(tmp_path, cache_dir, fresh_calls, damage):
    bundle = _bundle(tmp_path, CONFIGS["warnings"])
    expected = _fresh(bundle)
    _load(bundle)
    (entry,) = os.listdir(cache_dir)
    path = cache_dir / entry
    blob = path.read_bytes()
    if damage == "garbage":
        path.write_bytes(os.urandom(len(blob)))
    elif damage == "truncated":
        path.write_bytes(blob[:len(blob) // 2])
    elif damage == "flipped":
        path.write_bytes(blob[:40] + bytes([blob[40] ^ 0xFF]) + blob[41:])
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a sound entry of another config under this name
        other = _bundle(tmp_path, CONFIGS["default"], "other")
        _load(other)
        (other_entry,) = set(os.listdir(cache_dir)) - {entry}
        os.replace(cache_dir / other_entry, path)
    fresh_calls.clear()
    got = _load(bundle)
    assert len(fresh_calls) == 1, "a damaged entry must not be used"
    for i, what in enumerate(("warnings", "doc", "model")):
        _same(got[i], expected[i], what)
    _load(bundle)
    assert len(fresh_calls) == 1, "the entry is sound again"


def test_a_changed_host_fact_or_code_stamp_is_a_miss(tmp_path, cache_dir, fresh_calls, monkeypatch):
    bundle = _bundle(tmp_path, CONFIGS["default"])
    _load(bundle)
    _load(bundle)
    assert len(fresh_calls) == 1
    real_facts = cache.host_facts
    monkeypatch.setattr(cache, "host_facts", lambda: real_facts().replace(b"CapBnd:", b"CapBnd: 0"))
    _load(bundle)
    assert len(fresh_calls) == 2
    monkeypatch.setattr(cache, "host_facts", real_facts)
    _load(bundle)
    assert len(fresh_calls) == 2, "the first entry is still there"
    real_stamp = cache._code_stamp
    monkeypatch.setattr(cache, "_code_stamp", lambda: real_stamp() + b"edited")
    _load(bundle)
    assert len(fresh_calls) == 3


def test_the_host_facts_are_the_ones_conversion_reads():
    facts = cache.host_facts()
    with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
        assert f.read().strip() in facts
    assert b"CapBnd:" in facts


def test_a_directory_others_may_write_is_not_used(tmp_path, cache_dir, fresh_calls):
    cache_dir.mkdir(mode=0o700)
    os.chmod(cache_dir, 0o777)
    bundle = _bundle(tmp_path, CONFIGS["default"])
    _load(bundle)
    _load(bundle)
    assert len(fresh_calls) == 2
    assert os.listdir(cache_dir) == []


def test_the_cache_is_off_when_the_variable_is_empty(tmp_path, monkeypatch, fresh_calls):
    monkeypatch.setenv("PYRUNC_CONFIG_CACHE", "")
    bundle = _bundle(tmp_path, CONFIGS["default"])
    _load(bundle)
    _load(bundle)
    assert len(fresh_calls) == 2


def test_entries_are_bounded(tmp_path, cache_dir, monkeypatch):
    monkeypatch.setattr(cache, "MAX_ENTRIES", 3)
    for i in range(6):
        _load(_bundle(tmp_path, _with(BASE, (("hostname",), f"h{i}")), f"b{i}"))
    assert len(os.listdir(cache_dir)) == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="creates containers")
@pytest.mark.skipif(RUNTIME_NAME != "pyrunc", reason="pyrunc's cache")
def test_create_from_the_cache_gives_the_same_container(rt, bundle, tmp_path, monkeypatch):
    """Two creates of one bundle: the second from the cache; the state
    files of both hold the same converted config and spec."""
    monkeypatch.setenv("PYRUNC_CONFIG_CACHE", str(tmp_path / "cache"))
    bundle.set_args("sleep", "100")
    bundle.config["process"]["consoleSize"] = {"height": 24}  # a warning line, replayed
    bundle.write()
    ids = [new_id(), new_id()]
    results = [rt.create(cid, bundle) for cid in ids]
    for p in results:
        assert p.returncode == 0, p.stderr
    lines = [[line.split(" level=", 1)[-1] for line in p.stderr.splitlines()] for p in results]
    assert lines[0] == lines[1] and "consoleSize" in results[0].stderr  # the same warning, no time
    assert len(os.listdir(tmp_path / "cache")) == 1
    files = [[open(os.path.join(rt.root, cid, name), "rb").read() for name in ("config.json", "spec.json")]
             for cid in ids]
    assert files[0] == files[1]
    for cid in ids:
        assert rt.status(cid) == "created"
