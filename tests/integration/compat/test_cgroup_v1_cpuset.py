"""cgroup v1 cpuset with a nested, pod-style cgroupsPath (issue 17 item 8).

A v1 cpuset cgroup starts with empty cpuset.cpus and cpuset.mems and takes
neither tasks (ENOSPC) nor children's values while they are empty.  With
``cgroupsPath`` ``<pod>/podX/ctrY`` every level must be filled from its
parent before anything joins: the levels the runtime makes, and levels that
exist already but empty (a pod cgroup made with a plain mkdir).  Checked
from the host: cpuset.cpus/mems of each level, the init in the leaf, and
the CPU list the container's process is allowed.
"""

from __future__ import annotations

import os
import uuid

import pytest

from helpers import CGROUP_PREFIX, cgroup_dirs, started

CPUSET = "/sys/fs/cgroup/cpuset"

pytestmark = pytest.mark.skipif(
    not os.path.isfile(os.path.join(CPUSET, "cpuset.cpus")), reason="no cgroup v1 cpuset hierarchy"
)


def read(path) -> str:
    with open(path) as f:
        return f.read().strip()


def own_cpuset() -> str:
    return next(
        os.path.normpath(d) for d in cgroup_dirs("") if d.startswith(CPUSET + "/") or os.path.normpath(d) == CPUSET
    )


@pytest.fixture
def pod():
    """A pod-style top level, removed with everything under it afterwards
    (the runtime removes the container's own level only, as runc)."""
    top = CGROUP_PREFIX + uuid.uuid4().hex[:12]
    yield top
    for rel in (top + "/podX/ctrY", top + "/podX", top):
        for d in cgroup_dirs(rel):
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass


@pytest.mark.parametrize("premade", [False, True], ids=["levels-made-by-runtime", "empty-levels-premade"])
def test_nested_cgroups_path_fills_every_cpuset_level(any_rt, bundle, pod, premade):
    base = own_cpuset()
    cpus, mems = read(os.path.join(base, "cpuset.cpus")), read(os.path.join(base, "cpuset.mems"))
    first_cpu = cpus.split(",")[0].split("-")[0]
    levels = [os.path.join(base, pod), os.path.join(base, pod, "podX"), os.path.join(base, pod, "podX", "ctrY")]
    if premade:
        for d in levels[:2]:
            os.mkdir(d)  # as a plain mkdir leaves them: empty
            assert read(os.path.join(d, "cpuset.cpus")) == "" == read(os.path.join(d, "cpuset.mems"))
    bundle.config["linux"]["cgroupsPath"] = pod + "/podX/ctrY"
    bundle.config["linux"]["resources"]["cpu"] = {"cpus": first_cpu, "mems": mems}
    cid, init = started(any_rt, bundle, "sleep", "1000")
    for d in levels[:2]:  # the intermediate levels: their parent's values
        assert read(os.path.join(d, "cpuset.cpus")) == cpus, d
        assert read(os.path.join(d, "cpuset.mems")) == mems, d
    leaf = levels[2]
    assert read(os.path.join(leaf, "cpuset.cpus")) == first_cpu
    assert read(os.path.join(leaf, "cpuset.mems")) == mems
    assert str(init) in read(os.path.join(leaf, "cgroup.procs")).split()
    p = any_rt("exec", cid, "grep", "Cpus_allowed_list", "/proc/self/status")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["Cpus_allowed_list:", first_cpu]
    assert any_rt.delete(cid, force=True).returncode == 0
    assert not os.path.exists(leaf)
