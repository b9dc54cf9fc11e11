"""Inside-out exhaustion: a container that forks, allocates or opens files
without end is held by its limits; the host stays responsive and
``delete --force`` removes everything.  Also the runtime itself started
with almost no file descriptors to spare.
"""

from __future__ import annotations

import os
import resource
import subprocess
import tempfile
import time

import pytest

import helpers
from helpers import new_id
from test_reliability_support import assert_clean, host_counts, tagged_env, new_tag

PIDS_LIMIT = 64
MEMORY_LIMIT = 32 * 1024 * 1024


def _host_responsive(max_seconds=3.0):
    """The host can still fork/exec quickly."""
    t0 = time.monotonic()
    subprocess.run(["/bin/true"], check=True, timeout=max_seconds * 5)
    took = time.monotonic() - t0
    assert took < max_seconds, f"the host took {took:.1f}s to run /bin/true"
    return took


def _cgroup_value(bundle, controller, name):
    for d in helpers.cgroup_dirs(bundle.cgroups_path):
        path = os.path.join(d, name)
        if os.path.exists(path) and (controller in d or "unified" in d):
            with open(path) as f:
                return f.read().strip()
    return None


def test_fork_bomb_under_pids_limit(rt, bundle):
    cid = new_id("bomb")
    bundle.config["linux"]["resources"]["pids"] = {"limit": PIDS_LIMIT}
    bundle.sh("bomb() { bomb | bomb & }; bomb; sleep 100")
    p = rt.run(cid, bundle, "-d")
    assert p.returncode == 0, p.stderr
    peak = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        cur = _cgroup_value(bundle, "pids", "pids.current")
        peak = max(peak, int(cur or 0))
        _host_responsive()
        time.sleep(0.1)
    assert 0 < peak <= PIDS_LIMIT
    t0 = time.monotonic()
    p = rt.delete(cid, force=True)
    assert p.returncode == 0, p.stderr
    assert time.monotonic() - t0 < 15
    assert_clean(rt, cid, bundle)


def test_memory_hog_is_oom_killed(rt, bundle):
    cid = new_id("hog")
    bundle.config["linux"]["resources"]["memory"] = {"limit": MEMORY_LIMIT, "swap": MEMORY_LIMIT}
    bundle.sh('x=aaaaaaaaaaaaaaaa; while :; do x="$x$x"; done')
    t0 = time.monotonic()
    p = rt.run(cid, bundle, timeout=60)
    assert p.returncode == 137, (p.returncode, p.stderr)
    assert time.monotonic() - t0 < 30
    _host_responsive()
    assert_clean(rt, cid, bundle)


def test_fd_exhaustion_inside(rt, bundle):
    """Eight processes each open files until EMFILE (RLIMIT_NOFILE 4096):
    the host's open-file count comes back after delete."""
    cid = new_id("fds")
    nofile = 4096
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}]
    bundle.sh("""
        opener() { i=3; while command eval "exec $i</dev/null" 2>&-; do i=$((i+1)); done
                   exec 3<&-; echo $i > /shared/fds.$1; sleep 100; }
        for n in 1 2 3 4 5 6 7 8; do opener $n & done; wait""")
    before = host_counts()["host_fds"]
    p = rt.run(cid, bundle, "-d")
    assert p.returncode == 0, p.stderr
    helpers.wait_for(lambda: len([f for f in os.listdir(bundle.shared) if f.startswith("fds.")]) == 8, timeout=60)
    for n in range(1, 9):
        with open(os.path.join(bundle.shared, f"fds.{n}")) as f:
            assert nofile - 8 <= int(f.read()) <= nofile  # stopped by the limit
    during = host_counts()["host_fds"]
    _host_responsive()
    assert rt.delete(cid, force=True).returncode == 0
    assert_clean(rt, cid, bundle)
    after = helpers.wait_for(
        lambda: (lambda n: n if n < before + 1000 else None)(host_counts()["host_fds"]), timeout=10
    )
    assert during > before + 8 * (nofile - 100), (before, during)
    assert after < before + 1000, (before, during, after)


@pytest.mark.parametrize("nofile", [4, 6, 8, 10, 12, 16, 24])
def test_runtime_with_few_fds(rt, bundle, nofile):
    """The runtime under a tiny RLIMIT_NOFILE: create either works or fails
    with one line, and leaves nothing either way."""
    cid, tag = new_id("fewfd"), new_tag()
    bundle.set_args("sleep", "100")

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    bundle.write()
    rt.ids.append(cid)
    # stderr to a file: the created init inherits it and keeps a pipe open
    with open(os.devnull, "wb") as null, tempfile.TemporaryFile("w+") as err:
        p = subprocess.run(
            [rt.path, "--root", rt.root, "create", "--bundle", bundle.path, cid],
            stdin=subprocess.DEVNULL,
            stdout=null,
            stderr=err,
            preexec_fn=limit,
            env=tagged_env(tag),
            timeout=30,
        )
        err.seek(0)
        p.stderr = err.read()
    if p.returncode == 0:
        assert rt.status(cid) == "created"
        assert rt.delete(cid, force=True).returncode == 0
    else:
        helpers.assert_one_error_line(p)
    assert_clean(rt, cid, bundle, tag)
