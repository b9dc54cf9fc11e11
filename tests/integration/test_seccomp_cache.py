"""The host's cache of compiled seccomp filters (pyrunc/seccomp.py,
compile_cached; docs/security.md, "Compiled filters kept per host").

A hit must be exactly what a fresh compile gives; an entry is trusted only
when it and its directory are root's alone and it is no link: a planted
entry that fails any of those checks is never loaded, and the control
shows that a trusted planted entry would be (so the checks are what stands
between a writable entry and the containers' filters).
"""

import json
import os
import shutil
import subprocess

import pytest

from helpers import REPO, run_importtime, runtime_is_pyrunc

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the cache is root's")

PODMAN_PROFILE = "/usr/share/containers/seccomp.json"

# rules with arguments, several conditions on one argument, errno, an
# unknown syscall name (left out, listed in skipped_syscalls) and flags
RICH = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "flags": ["SECCOMP_FILTER_FLAG_LOG"],
    "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 131072, "op": "SCMP_CMP_EQ"}],
        },
        {"names": ["no_such_syscall_pyrunc"], "action": "SCMP_ACT_KILL"},
    ],
}
# what a poisoned entry would carry: allow everything (one BPF instruction)
ALLOW_ALL_HEX = "0600000000ffff7f"


def _profiles():
    out = [pytest.param(RICH, id="rich")]
    if os.path.isfile(PODMAN_PROFILE):
        with open(PODMAN_PROFILE) as f:
            out.append(pytest.param(json.load(f), id="podman-default"))
    return out


@pytest.fixture
def cache_dir(tmp_path):
    d = tmp_path / "cache"
    yield str(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("profile", _profiles())
def test_a_hit_is_what_a_fresh_compile_gives(profile, cache_dir):
    from pyrunc import seccomp

    fresh = seccomp.compile_filter(profile)
    first = seccomp.compile_cached(profile, cache_dir=cache_dir)  # a miss: compiles, writes the entry
    entries = os.listdir(cache_dir)
    assert len(entries) == 1
    st = os.stat(cache_dir)
    assert st.st_uid == 0 and st.st_mode & 0o777 == 0o700
    hit = seccomp.compile_cached(profile, cache_dir=cache_dir)
    assert first == fresh and hit == fresh
    assert hit.to_dict() == fresh.to_dict()
    if profile is RICH:
        assert hit.skipped_syscalls == ["no_such_syscall_pyrunc"] and hit.flags


def test_another_profile_is_another_entry(cache_dir):
    from pyrunc import seccomp

    other = dict(RICH, syscalls=RICH["syscalls"][:1])
    a = seccomp.compile_cached(RICH, cache_dir=cache_dir)
    b = seccomp.compile_cached(other, cache_dir=cache_dir)
    assert a != b and b == seccomp.compile_filter(other)
    assert len(os.listdir(cache_dir)) == 2


def _plant(cache_dir, profile):
    """Replace the profile's entry by an allow-all program; its path."""
    from pyrunc import seccomp

    seccomp.compile_cached(profile, cache_dir=cache_dir)
    (name,) = os.listdir(cache_dir)
    path = os.path.join(cache_dir, name)
    with open(path) as f:
        entry = json.load(f)
    entry["record"]["bpf_hex"] = ALLOW_ALL_HEX
    with open(path, "w") as f:
        json.dump(entry, f)
    os.chmod(path, 0o600)
    return path


def test_control_a_trusted_planted_entry_is_loaded(cache_dir):
    """What the checks below protect against: an entry that passes them is
    used as it is (root's own cache directory is trusted)."""
    from pyrunc import seccomp

    _plant(cache_dir, RICH)
    assert seccomp.compile_cached(RICH, cache_dir=cache_dir).bpf_hex == ALLOW_ALL_HEX


def _group_writable(path, cache_dir):
    os.chmod(path, 0o620)


def _other_owner(path, cache_dir):
    os.chown(path, 1, 1)


def _symlink(path, cache_dir):
    target = os.path.join(os.path.dirname(cache_dir), "elsewhere")
    os.rename(path, target)
    os.symlink(target, path)


def _hardlink(path, cache_dir):
    os.link(path, os.path.join(os.path.dirname(cache_dir), "second-name"))


def _open_dir(path, cache_dir):
    os.chmod(cache_dir, 0o755)


def _dir_of_another(path, cache_dir):
    os.chown(cache_dir, 1, 1)


def _foreign_key(path, cache_dir):
    with open(path) as f:
        entry = json.load(f)
    entry["key"] = "0" * 64
    with open(path, "w") as f:
        json.dump(entry, f)


def _not_a_program(path, cache_dir):
    with open(path) as f:
        entry = json.load(f)
    entry["record"]["bpf_hex"] = "06000000"  # half an instruction
    with open(path, "w") as f:
        json.dump(entry, f)


@pytest.mark.parametrize(
    "spoil",
    [_group_writable, _other_owner, _symlink, _hardlink, _open_dir, _dir_of_another, _foreign_key, _not_a_program],
)
def test_an_untrusted_entry_is_never_loaded(spoil, cache_dir):
    from pyrunc import seccomp

    path = _plant(cache_dir, RICH)
    spoil(path, cache_dir)
    got = seccomp.compile_cached(RICH, cache_dir=cache_dir)
    assert got == seccomp.compile_filter(RICH)
    assert got.bpf_hex != ALLOW_ALL_HEX


def test_invalid_profiles_are_not_cached(cache_dir):
    from pyrunc import seccomp
    from pyrunc.errors import ConfigError

    bad = {"defaultAction": "SCMP_ACT_NOPE"}
    for _ in range(2):
        with pytest.raises(ConfigError, match="defaultAction"):
            seccomp.compile_cached(bad, cache_dir=cache_dir)
    assert not os.path.exists(cache_dir) or os.listdir(cache_dir) == []


@pytest.mark.skipif(not runtime_is_pyrunc, reason="pyrunc's cache")
def test_create_with_a_cached_profile_skips_the_bindings_and_still_filters(rt, bundle):
    """Two creates with the same profile through the CLI: the second imports
    no libseccomp bindings, and both containers get the filter (mkdir is
    refused with EPERM)."""
    from pyrunc.seccomp import CACHE_DIR

    before = set(os.listdir(CACHE_DIR)) if os.path.isdir(CACHE_DIR) else set()
    profile = dict(RICH, flags=[])
    bundle.config["linux"]["seccomp"] = profile
    bundle.sh("mkdir /tmp/x 2>&1; echo rc=$?").write()
    try:
        outputs, imported = [], []
        for i in range(2):
            cid = f"scc-{i}-" + os.urandom(3).hex()
            rt._track(cid)
            p, names = run_importtime(rt, "run", "--bundle", bundle.path, cid)
            assert p.returncode == 0, p.stderr[-2000:]
            outputs.append(p.stdout)
            imported.append(names)
        assert all("rc=1" in out and "not permitted" in out for out in outputs), outputs
        bindings = {"seccomp", "pyseccomp"}
        assert imported[0] & bindings or before  # the first compiled (unless an earlier run left the entry)
        assert not imported[1] & bindings, imported[1] & bindings
    finally:
        if os.path.isdir(CACHE_DIR):
            for name in set(os.listdir(CACHE_DIR)) - before:
                os.unlink(os.path.join(CACHE_DIR, name))
            if not before:
                os.rmdir(CACHE_DIR)


def test_no_cache_for_an_unprivileged_caller(tmp_path):
    """Not root: nothing is read or written (the entries are trusted as
    root's)."""
    d = tmp_path / "cache"
    os.chmod(tmp_path, 0o755)
    code = (
        f"import sys; sys.path.insert(0, {REPO!r}); from pyrunc import seccomp; "
        f"seccomp.compile_cached({RICH!r}, cache_dir={str(d)!r}); print('ok')"
    )
    python = os.path.join(REPO, ".venv", "bin", "python")
    p = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", python, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "libseccomp is not available" in p.stderr or "Permission denied" in p.stderr:
        pytest.skip(f"the project's venv is not usable by nobody here: {p.stderr.strip()[-200:]}")
    assert p.returncode == 0 and "ok" in p.stdout, p.stderr
    assert not d.exists()
