"""Fixtures for tests that run real containers through the runtime's CLI.

Fixtures (see tests/helpers.py for the classes):

* ``root``    -- a fresh, empty ``--root`` state directory (short path under /tmp).
* ``rt``      -- a :class:`helpers.Runtime` using ``root``; after the test every
                 container id it created is ``delete --force``d and the state
                 directory must be empty again (teardown error otherwise).
* ``bundle``  -- a fresh :class:`helpers.Bundle` (busybox rootfs) in tmp_path.
* ``make_bundle`` -- factory ``make_bundle(name="b2", args=("sh",)) -> Bundle``.
* ``any_rt``  -- the test runs once with pyrunc and once with Debian's runc
                 (tests/differential.py); the adversarial/ and compat/ tests use it.
* ``cell``    -- ``cell(cgroups_path=None, cid=None)``: a cgroup manager and the
                 processes a test starts in it, all cleaned after the test.
* ``console_socket`` -- a listening AF_UNIX socket for --console-socket.
* ``userns_bundle`` -- a Bundle whose path every uid can traverse (pytest's
                 tmp_path is 0700, which an unmapped container root cannot
                 enter); removed after the test.

A session-scoped autouse fixture fails the run if, after all tests, any
container process, mount, cgroup directory or state directory is left behind.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time

import pytest

import helpers
from differential import any_rt  # noqa: F401 - the fixture: a test once per runtime (pyrunc, runc)
from helpers import Bundle, Runtime

_ROOTS: list[str] = []


@pytest.fixture(scope="session")
def roots_base():
    base = tempfile.mkdtemp(prefix="pyrt-", dir="/tmp")
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


SECCOMP_CACHE = "/run/pyrunc-seccomp-cache"  # pyrunc.seccomp.CACHE_DIR (not imported: runc runs too)


@pytest.fixture(scope="session", autouse=True)
def _seccomp_cache_entries_of_this_run():
    """The compiled filters this run's creates cached on the host
    (pyrunc/seccomp.py) are removed at its end; entries from before stay."""
    if os.geteuid() != 0:  # only root's creates keep filters (and only root may list them)
        yield
        return
    before = set(os.listdir(SECCOMP_CACHE)) if os.path.isdir(SECCOMP_CACHE) else None
    yield
    if not os.path.isdir(SECCOMP_CACHE):
        return
    for name in set(os.listdir(SECCOMP_CACHE)) - (before or set()):
        try:
            os.unlink(os.path.join(SECCOMP_CACHE, name))
        except OSError:
            pass
    if before is None:
        try:
            os.rmdir(SECCOMP_CACHE)
        except OSError:
            pass


@pytest.fixture(scope="session", autouse=True)
def _session_leak_check(tmp_path_factory, roots_base):
    """Fail the run if containers, mounts, cgroups or state dirs outlive the tests."""
    sandboxed = helpers.in_cgroup_sandbox()
    cgroups_before = helpers.all_cgroup_dirs()
    basetemp = str(tmp_path_factory.getbasetemp())
    yield
    problems = []
    watched = [basetemp, roots_base]

    def leaked_procs():
        return [p for d in watched for p in helpers.processes_rooted_under(d)]

    deadline = time.monotonic() + float(os.environ.get("PYRUNC_TEST_LEAK_GRACE", "5"))
    while leaked_procs() and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in leaked_procs():
        try:
            cmd = open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
        except OSError:
            cmd = "?"
        problems.append(f"process {pid} left running ({cmd.strip()})")
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mnt = line.split()[4]
            if any(mnt == d or mnt.startswith(d + "/") for d in watched):
                problems.append(f"mount left behind: {mnt}")
    new_cgroups = helpers.all_cgroup_dirs() - cgroups_before
    if not sandboxed:  # outside the sandbox other tenants create cgroups too
        new_cgroups = {d for d in new_cgroups if helpers.CGROUP_PREFIX in d}
    for d in sorted(new_cgroups):
        problems.append(f"cgroup left behind: {d}")
    for r in _ROOTS:
        if os.path.isdir(r) and os.listdir(r):
            problems.append(f"state left in --root {r}: {sorted(os.listdir(r))}")
    if problems:
        # report, but still clean up: the machine must not keep what a test leaked
        for r in _ROOTS:
            if os.path.isdir(r):
                for cid in os.listdir(r):
                    Runtime(r).delete(cid, force=True)
        for pid in leaked_procs():
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        pytest.fail("resources leaked by the test session:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
def root(roots_base):
    """A fresh empty state directory for ``--root``."""
    d = tempfile.mkdtemp(dir=roots_base)
    _ROOTS.append(d)
    return d


@pytest.fixture
def rt(root):
    runtime = Runtime(root)
    yield runtime
    problems = runtime.cleanup()
    left = os.listdir(root) if os.path.isdir(root) else []
    if left:
        problems.append(f"state directories left in --root after delete --force: {left}")
    assert not problems, "cleanup failed:\n  " + "\n  ".join(problems)


@pytest.fixture
def bundle(tmp_path):
    return Bundle(tmp_path / "bundle")


@pytest.fixture
def make_bundle(tmp_path):
    def make(name: str = "b2", args=("sh",)) -> Bundle:
        return Bundle(tmp_path / name, args=args)

    return make


@pytest.fixture
def userns_bundle(roots_base):
    d = tempfile.mkdtemp(prefix="ub-", dir=roots_base)
    os.chmod(d, 0o755)
    yield Bundle(os.path.join(d, "bundle"))
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def console_socket():
    """A listening AF_UNIX stream socket at a short path; yields (path, listener)."""
    d = tempfile.mkdtemp(prefix="cs-", dir="/tmp")
    path = os.path.join(d, "pty.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    try:
        yield path, srv
    finally:
        srv.close()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def cell():
    """``cell(cgroups_path=None, cid=None) -> Cell``: a cgroup manager plus the
    processes a test starts in it; every one is cleaned after the test."""
    from cgroup_test_support import Cell

    cells = []

    def make(*a, **kw):
        c = Cell(*a, **kw)
        cells.append(c)
        return c

    yield make
    errors = []
    for c in cells:
        try:
            c.cleanup()
        except Exception as e:  # keep cleaning the others
            errors.append(e)
    if errors:
        raise errors[0]
