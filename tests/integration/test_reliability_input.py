"""Hostile and huge input through the CLI: 10,000 mounts, 100,000
environment entries, a full disk under --root, and a caller that never
reads the runtime's stderr.

Each case either works within a time bound or fails with one clear line;
either way nothing is left behind.
"""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
import time

import pytest

import helpers
from helpers import new_id
from test_reliability_support import assert_clean, leftovers

MANY_MOUNTS = 10_000
MANY_ENV = 100_000
BOUND = 60  # seconds any one huge-input command may take


def _timed(fn):
    t0 = time.monotonic()
    out = fn()
    return out, time.monotonic() - t0


def test_ten_thousand_mounts(rt, bundle, record_property):
    cid = new_id("mnt")
    bundle.config["mounts"] += [
        {"destination": f"/dev/m{i}", "type": "tmpfs", "source": "tmpfs", "options": ["size=4k"]}
        for i in range(MANY_MOUNTS)
    ]
    bundle.sh("grep -c ' /dev/m[0-9]' /proc/self/mountinfo > /shared/count")
    p, secs = _timed(lambda: rt.run(cid, bundle, timeout=BOUND * 2))
    record_property("mounts", f"{MANY_MOUNTS} mounts: rc={p.returncode} in {secs:.1f}s")
    print(f"{MANY_MOUNTS} mounts: rc={p.returncode} in {secs:.1f}s")
    if p.returncode == 0:
        with open(os.path.join(bundle.shared, "count")) as f:
            assert int(f.read()) == MANY_MOUNTS
        assert secs < BOUND
    else:
        helpers.assert_one_error_line(p)
    assert_clean(rt, cid, bundle)


def test_hundred_thousand_env_entries(rt, bundle, record_property):
    cid = new_id("env")
    bundle.config["process"]["env"] += [f"V{i}={i}" for i in range(MANY_ENV)]
    # busybox's env applet, not sh: ash imports every variable (quadratic)
    bundle.set_args("env")
    p, secs = _timed(lambda: rt.run(cid, bundle, timeout=BOUND * 2))
    record_property("env", f"{MANY_ENV} env entries: rc={p.returncode} in {secs:.1f}s")
    print(f"{MANY_ENV} env entries: rc={p.returncode} in {secs:.1f}s {p.stderr.strip()}")
    if p.returncode == 0:
        assert sum(1 for line in p.stdout.splitlines() if line.startswith("V")) == MANY_ENV
        assert secs < BOUND
    else:
        helpers.assert_one_error_line(p)
    assert_clean(rt, cid, bundle)


def test_environment_beyond_the_exec_limit_is_refused_clearly(rt, bundle):
    """More environment than execve accepts: one line naming the cause."""
    cid = new_id("env2")
    bundle.config["process"]["env"] += [f"V{i}=" + "x" * 64 for i in range(40_000)]  # ~3 MB > ARG_MAX
    p = rt.run(cid, bundle, timeout=BOUND)
    line = helpers.assert_one_error_line(p)
    assert "argument list too long" in line.lower() or "e2big" in line.lower(), line
    assert_clean(rt, cid, bundle)


# --------------------------------------------------------------------------
# a full disk under --root


@pytest.fixture
def small_fs():
    """A 512 KiB tmpfs (private to the sandbox's mount namespace)."""
    d = tempfile.mkdtemp(prefix="relfs-", dir="/tmp")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k,nr_inodes=64", "tmpfs", d], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", d], check=False)
        os.rmdir(d)


def _fill(path, leave):
    """Fill the filesystem of ``path`` so that about ``leave`` bytes stay free."""
    filler = os.path.join(path, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    chunk = b"\0" * 4096
    try:
        while True:
            os.write(fd, chunk)
    except OSError as e:
        assert e.errno == errno.ENOSPC
    size = os.fstat(fd).st_size
    os.ftruncate(fd, max(0, size - leave))
    os.close(fd)


@pytest.mark.parametrize("free_kib", [0, 4, 8, 12, 16, 32, 64])
def test_full_disk_under_root(small_fs, bundle, free_kib):
    root = os.path.join(small_fs, "root")
    os.mkdir(root, 0o700)
    rt = helpers.Runtime(root)
    cid = new_id("disk")
    # a big annotation makes every state file need several pages
    bundle.config["annotations"] = {"big": "y" * 6000}
    bundle.set_args("sleep", "100")
    _fill(small_fs, free_kib * 1024)
    try:
        p = rt.create(cid, bundle)
        print(f"full disk, {free_kib} KiB free: rc={p.returncode} {p.stderr.strip()}")
        if p.returncode == 0:
            assert rt.status(cid) == "created"
            assert rt.delete(cid, force=True).returncode == 0
        else:
            line = helpers.assert_one_error_line(p)
            assert "no space" in line.lower() and root in line, line
        # nothing half-written: no container dir, no temp files
        assert os.listdir(root) == []
        assert not leftovers(rt, cid, bundle)
    finally:
        rt.cleanup()


# --------------------------------------------------------------------------
# a caller that never reads stderr


def _run_with_unread_stderr(argv, timeout):
    """Run with stderr a pipe that nobody reads; return (rc or None if it
    hung, bytes that were in the pipe)."""
    r, w = os.pipe()
    try:
        with tempfile.TemporaryFile() as out:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=w)
            os.close(w)
            w = -1
            try:
                rc = p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                rc = None
        os.set_blocking(r, False)
        n = 0
        try:
            while True:
                data = os.read(r, 1 << 20)
                if not data:
                    break
                n += len(data)
        except BlockingIOError:
            pass
        return rc, n
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_huge_error_line_with_unread_stderr(rt):
    huge_id = "a" * 120_000  # one argv string can be up to 128 KiB
    rc, n = _run_with_unread_stderr([rt.path, "--root", rt.root, "state", huge_id], timeout=15)
    assert rc == 1, "the runtime hung writing its error line to a full pipe"
    assert 0 < n < 8192


def test_debug_flood_with_unread_stderr(rt, bundle):
    """--debug describes every mount of the plan on stderr: with 3,000
    mounts that is far more than a pipe holds."""
    cid = new_id("dbg")
    bundle.config["mounts"] += [
        {"destination": f"/dev/m{i}", "type": "tmpfs", "source": "tmpfs", "options": ["size=4k"]} for i in range(3000)
    ]
    bundle.set_args("sleep", "100")
    bundle.write()
    rt.ids.append(cid)
    rc, n = _run_with_unread_stderr(
        [rt.path, "--root", rt.root, "--debug", "create", "--bundle", bundle.path, cid], timeout=60
    )
    assert rc == 0, "the runtime hung (or failed) with an unread stderr"
    assert n <= 64 * 1024
    assert rt.delete(cid, force=True).returncode == 0
    assert_clean(rt, cid, bundle)


def test_failed_create_with_unread_stderr_cleans_up(rt, bundle):
    cid = new_id("ferr")
    bundle.config["process"]["args"] = ["/no/such/" + "x" * 100_000]
    bundle.write()
    rt.ids.append(cid)
    rc, n = _run_with_unread_stderr([rt.path, "--root", rt.root, "create", "--bundle", bundle.path, cid], timeout=30)
    assert rc == 1
    assert n < 8192
    assert_clean(rt, cid, bundle)
