"""Shared checks of the reliability tests: "nothing is left behind".

A runtime killed mid-operation leaves forks of itself (the intermediate
stage, an init that has not exec'd yet, an exec setup process).  They are
recognised by a unique tag in their environment: forks share the runtime's
initial environment (/proc/PID/environ), exec'd container processes do not.

Helpers (imported by the other tests/integration/test_reliability*, test_faults*,
test_soak* and test_fuzz_cli* modules):

* ``tagged_env(tag, **extra) -> dict``: os.environ plus the tag (and extras).
* ``tagged_pids(tag) -> list[int]``: live processes carrying the tag.
* ``leftovers(rt, cid, bundle, tag=None) -> list[str]``: every trace of a
  container: its state dir, cgroup dirs, processes rooted in its bundle,
  host mounts under the bundle, tagged runtime forks.
* ``assert_clean(rt, cid, bundle, tag=None, wait=5)``: waits briefly for
  orphaned forks to notice their runtime is gone, then asserts
  ``leftovers`` is empty.
* ``host_counts() -> dict``: host-wide counters the soak test watches.

The tests in this file check the checker: each detector must see a planted
leak (a checker that cannot fail would prove nothing).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid

import helpers

TAG_VAR = "PYRUNC_RELIABILITY_TAG"


def new_tag() -> str:
    return uuid.uuid4().hex


def tagged_env(tag: str, **extra: str) -> dict:
    env = dict(os.environ)
    env[TAG_VAR] = tag
    env.update(extra)
    return env


def tagged_pids(tag: str) -> list[int]:
    needle = f"{TAG_VAR}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b"\0") and helpers.pid_alive(int(entry)):
            found.append(int(entry))
    return found


def _mounts_under(path: str) -> list[str]:
    path = os.path.realpath(path)
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mnt = line.split()[4]
            if mnt == path or mnt.startswith(path + "/"):
                out.append(mnt)
    return out


def pids_in_cgroup(cgroups_path: str) -> list[int]:
    """Live processes whose /proc/PID/cgroup names ``cgroups_path`` (in any
    hierarchy).  Works for containers in their own mount namespace, where
    /proc/PID/root no longer resolves to a host path."""
    leaf = "/" + cgroups_path.strip("/")
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cgroup") as f:
                lines = f.read().splitlines()
        except OSError:
            continue
        if any(line.split(":", 2)[2].endswith(leaf) for line in lines if line.count(":") >= 2) and helpers.pid_alive(
            int(entry)
        ):
            found.append(int(entry))
    return found


def leftovers(rt: helpers.Runtime, cid: str, bundle: helpers.Bundle, tag: str | None = None) -> list[str]:
    found = []
    state_dir = os.path.join(rt.root, cid)
    if os.path.lexists(state_dir):
        try:
            names = sorted(os.listdir(state_dir))
        except OSError:
            names = ["?"]
        found.append(f"state dir {state_dir} {names}")
    for d in helpers.cgroup_dirs(bundle.cgroups_path):
        found.append(f"cgroup {d}")
    pids = set(helpers.processes_rooted_under(bundle.path))
    if bundle.cgroups_path:
        pids.update(pids_in_cgroup(bundle.cgroups_path))
    for pid in sorted(pids):
        found.append(f"container process {pid}")
    for mnt in _mounts_under(bundle.path):
        found.append(f"mount {mnt}")
    if tag:
        for pid in tagged_pids(tag):
            found.append(f"runtime fork {pid}")
    return found


def assert_clean(rt, cid, bundle, tag=None, wait: float = 5) -> None:
    deadline = time.monotonic() + wait
    while True:
        left = leftovers(rt, cid, bundle, tag)
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not left, f"left behind by {cid}: {left}"


def state_or_none(rt, cid):
    """The parsed state, or None when the runtime says it does not exist.

    Fails if the output is not valid JSON or the error is not one line."""
    p = rt.state(cid)
    if p.returncode == 0:
        return json.loads(p.stdout)
    helpers.assert_one_error_line(p)
    return None


def host_counts() -> dict:
    """fds open on the host, mounts in our namespace, cgroup dirs."""
    with open("/proc/sys/fs/file-nr") as f:
        fds = int(f.read().split()[0])
    with open("/proc/self/mountinfo") as f:
        mounts = sum(1 for _ in f)
    return {"host_fds": fds, "mounts": mounts, "cgroups": len(helpers.all_cgroup_dirs())}


def run_measured(argv, env=None, timeout=helpers.TIMEOUT):
    """Run a command; return (exit code, its max RSS in KiB, stderr).

    The RSS comes from busybox's ``time``, the command's parent: a child's
    ru_maxrss includes the high-water mark of the process that forked it,
    which for a pytest process would hide the runtime's own."""
    import tempfile

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen(
            [helpers.BUSYBOX, "time", "-o", f"/dev/fd/{out.fileno()}", "-f", "%M"] + list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            pass_fds=(out.fileno(),),
        )
        deadline = time.monotonic() + timeout
        while True:
            if p.poll() is not None:
                out.seek(0)
                err.seek(0)
                return p.returncode, int(out.read().split()[-1]), err.read().decode(errors="replace")
            if time.monotonic() > deadline:
                p.kill()
                p.wait()
                raise subprocess.TimeoutExpired(argv, timeout)
            time.sleep(0.005)


# --------------------------------------------------------------------------
# the checker's own tests


def test_tagged_pids_sees_a_tagged_process_and_not_others():
    tag = new_tag()
    p = subprocess.Popen(["sleep", "30"], env=tagged_env(tag))
    q = subprocess.Popen(["sleep", "30"], env=tagged_env(new_tag()))
    try:
        assert tagged_pids(tag) == [p.pid]
    finally:
        for x in (p, q):
            x.kill()
            x.wait()
    assert tagged_pids(tag) == []


def test_leftovers_sees_state_dir_cgroup_and_process(rt, bundle):
    cid = helpers.new_id("chk")
    bundle.set_args("sleep", "30")
    assert rt.create(cid, bundle).returncode == 0
    left = leftovers(rt, cid, bundle)
    kinds = {item.split()[0] for item in left}
    assert {"state", "cgroup", "container"} <= kinds, left
    assert rt.delete(cid, force=True).returncode == 0
    assert_clean(rt, cid, bundle)
