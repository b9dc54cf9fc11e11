"""The systemd cgroup driver on cgroup v1/hybrid, for real (``make test-systemd-v1``).

No VM here boots cgroup v1 with systemd, and this host's PID 1 is not
systemd; but the host is a hybrid one (v1 controllers, name=systemd,
cgroup2 at /sys/fs/cgroup/unified) with Debian's systemd 252 installed.  So
the host's own systemd boots as PID 1 of a container with a private cgroup
namespace (tests/integration/systemd_box.py), and the systemd driver's
tests of test_systemd.py run in it, pyrunc and Debian's runc side by side,
reading the limits from the v1 controller files: units in their slices
(dashed slices nested), limits in the files and in ``systemctl show``
(memory, CPU shares, quota and period, pids, cpuset, devices), kept across
``systemctl daemon-reload``, update, pause/resume (the v1 freezer), ps,
events --stats, exec joining the scope in every hierarchy, kill --all,
delete (a failed unit reset), a failed create leaving no unit, pids limit 0.

Opt-in (the Makefile target sets PYRUNC_SYSTEMD_BOX=1): a boot and the
runs in it take ~20 s, which ``make test`` does not pay twice.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from helpers import REPO, processes_rooted_under
from systemd_box import CG, SystemdBox

PYRUNC = os.path.join(REPO, ".venv", "bin", "pyrunc")
PYTHON = os.path.join(REPO, ".venv", "bin", "python")
SYSTEMD = "/lib/systemd/systemd"
# test_systemd.py minus what needs engines (podman, containerd) or a user session
INNER_SELECTION = "not podman and not containerd and not rootless"


def _hybrid_host() -> bool:
    try:
        with open("/proc/self/mountinfo") as f:
            kinds = {line.split()[4]: line.split(" - ")[1].split()[0] for line in f}
    except OSError:
        return False
    return kinds.get(CG + "/unified") == "cgroup2" and kinds.get(CG + "/systemd") == "cgroup"


pytestmark = [
    pytest.mark.skipif(
        os.environ.get("PYRUNC_SYSTEMD_BOX") != "1", reason="opt-in: make test-systemd-v1 (PYRUNC_SYSTEMD_BOX=1)"
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(
        not _hybrid_host(), reason="needs a cgroup v1 hybrid host (name=systemd and cgroup2 at unified)"
    ),
    pytest.mark.skipif(not os.access(SYSTEMD, os.X_OK), reason=f"needs systemd installed ({SYSTEMD})"),
    pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="PID 1 is systemd: the host itself is tested"),
]


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    b = SystemdBox(str(tmp_path_factory.mktemp("sdbox")))
    try:
        b.boot()
        yield b
    finally:
        problems = b.teardown()
        assert not problems, problems


def test_the_box_is_a_hybrid_systemd_host(box):
    p = box.exec("sh", "-c", "cat /proc/1/comm; systemctl is-system-running; stat -fc %T /sys/fs/cgroup/unified")
    assert p.stdout.split() == ["systemd", "running", "cgroup2fs"], p
    p = box.exec("systemctl", "show", "-p", "Version,Virtualization")
    assert "Version=252" in p.stdout and "Virtualization=container-other" in p.stdout, p.stdout
    # the box's cgroups are its namespace's root: systemd manages every v1 controller it knows
    assert box.exec("cat", "/proc/1/cgroup").stdout.count(":/init.scope") >= 2


def test_systemd_driver_tests_on_v1(box):
    """test_systemd.py in the box: every systemd test runs (none skipped for
    want of systemd), against pyrunc and runc."""
    p = box.exec(
        PYTHON,
        "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "--basetemp=/tmp/pytest-sdv1",
        "-k", INNER_SELECTION, "tests/integration/test_systemd.py",
        cwd=REPO, env=(f"RUNTIME={PYRUNC}", "PYTHONDONTWRITEBYTECODE=1"), timeout=600, check=False,
    )  # fmt: skip
    out = p.stdout + p.stderr
    if p.returncode != 0:  # what systemd saw, for the diagnosis
        journal = box.exec("journalctl", "--no-pager", "-o", "short-monotonic", "-n", "150", check=False).stdout
        pytest.fail(f"{out[-12000:]}\n--- the box's journal:\n{journal}", pytrace=False)
    assert "needs systemd as PID 1" not in out, out[-4000:]
    summary = out.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary


def test_teardown_leaves_nothing(tmp_path):
    """A box with a container of its own still running: teardown kills both,
    and neither a process, a cgroup nor the box's directory is left."""
    b = SystemdBox(str(tmp_path / "box"))
    try:
        b.boot()
        p = b.exec(
            "systemd-run", "--unit", "pyrunc-teardown-probe", "--slice", "probe-x.slice", "sleep", "1000", check=False
        )
        assert p.returncode == 0, p.stderr
        inner = b.exec("systemctl", "show", "-p", "MainPID", "pyrunc-teardown-probe").stdout.strip()
        assert inner.startswith("MainPID=") and inner != "MainPID=0", inner
        dirs = b.cgroup_dirs()
        assert all(os.path.isdir(d) for d in dirs)
        assert any(os.path.isdir(d + "/probe.slice/probe-x.slice") for d in dirs)
    finally:
        problems = b.teardown()
    assert not problems, problems
    assert not processes_rooted_under(str(tmp_path)), "a process of the box survived"
    assert not [d for d in dirs if os.path.exists(d)], "a cgroup of the box was left"
    assert not os.path.exists(b.base)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert b.cid not in ps
