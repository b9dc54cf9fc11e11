"""Issue 6, memory footprint: the runtime's Python work is not charged to the
container's memory cgroup (the init joins it right before execve), so a
container runs under memory limits far below runc's.

The smallest working limit is searched for pyrunc (and, for the record, for
runc and crun when installed); pyrunc must manage `run true` with <= 1 MiB.
"""

import os
import shutil

import pytest

from helpers import RUNTIME, Runtime, in_cgroup_sandbox, new_id

LIMITS_KIB = (256, 512, 768, 1024, 2048, 4096, 8192, 16384)


def smallest_working_limit(rt, bundle, args=("true",)):
    """The smallest of LIMITS_KIB with which `run` of ``args`` exits 0."""
    for kib in LIMITS_KIB:
        bundle.set_args(*args)
        bundle.config["linux"].setdefault("resources", {})["memory"] = {"limit": kib * 1024}
        cid = new_id("mem")
        p = rt.run(cid, bundle)
        rt.delete(cid, force=True)
        if p.returncode == 0:
            return kib
    return None


@pytest.mark.skipif(not in_cgroup_sandbox(), reason="creates memory cgroups: run under the cgroup sandbox")
def test_run_true_fits_in_one_mebibyte(rt, bundle):
    kib = smallest_working_limit(rt, bundle)
    assert kib is not None and kib <= 1024, f"smallest working memory limit: {kib} KiB"
    print(f"\npyrunc: smallest memory limit for `run true`: {kib} KiB")


@pytest.mark.skipif(not in_cgroup_sandbox(), reason="creates memory cgroups: run under the cgroup sandbox")
@pytest.mark.parametrize("cgroupns", [True, False])
def test_the_python_stages_are_not_charged(rt, bundle, cgroupns):
    """A created container's memory cgroup holds (next to) nothing: the
    waiting init is a multi-MiB Python process, charged to the caller."""
    bundle.set_args("sleep", "60")
    if cgroupns:
        bundle.set_namespace("cgroup")
    else:
        bundle.drop_namespace("cgroup")
    cid = new_id("mem")
    assert rt.create(cid, bundle).returncode == 0
    usage_files = _memory_usage_files(bundle.cgroups_path)
    assert usage_files, "no memory cgroup for the container"
    with open(usage_files[0]) as f:
        usage = int(f.read())
    assert usage < 1024 * 1024, f"{usage} bytes charged to a created container"
    assert rt.start(cid).returncode == 0
    assert rt.status(cid) == "running"
    if cgroupns:  # and the container sees its own cgroup as the root
        p = rt("exec", cid, "cat", "/proc/1/cgroup")
        assert p.returncode == 0, p.stderr
        assert {line.split(":", 2)[2] for line in p.stdout.splitlines()} == {"/"}, p.stdout


def _memory_usage_files(cgroups_path):
    """memory.usage_in_bytes (v1) or memory.current (v2) of the container."""
    from helpers import cgroup_dirs

    out = []
    for d in cgroup_dirs(cgroups_path):
        for name in ("memory.usage_in_bytes", "memory.current"):
            if os.path.exists(os.path.join(d, name)):
                out.append(os.path.join(d, name))
    return out


@pytest.mark.skipif(not in_cgroup_sandbox(), reason="creates memory cgroups: run under the cgroup sandbox")
@pytest.mark.parametrize("other", ["/usr/sbin/runc", "/usr/bin/crun"])
def test_record_other_runtimes(root, bundle, other):
    """For the record (printed with -s): what runc and crun manage here."""
    if not os.path.exists(other) or other == RUNTIME:
        pytest.skip(f"{other} not installed")
    rt = Runtime(os.path.join(root, os.path.basename(other)), path=other)
    os.makedirs(rt.root, exist_ok=True)
    try:
        kib = smallest_working_limit(rt, bundle)
    finally:
        rt.cleanup()
        shutil.rmtree(rt.root, ignore_errors=True)
    print(f"\n{other}: smallest memory limit for `run true`: {kib} KiB")


@pytest.mark.parametrize("waiting", ["python", "waiter"])
def test_huge_pages_are_off_while_the_init_waits_and_back_for_the_program(rt, bundle, waiting):
    """The waiting Python init (in the container's cgroups) takes no
    transparent huge page; the container's program gets the host's policy
    back.  The waiter (pyrunc/waiter.py) leaves the policy alone: 16 KiB."""
    with open("/proc/self/status") as f:
        host = next((line.split()[1] for line in f if line.startswith("THP_enabled:")), None)
    if host is None:
        pytest.skip("this kernel's /proc/<pid>/status has no THP_enabled")
    bundle.set_args("sh", "-c", "grep THP_enabled /proc/self/status; sleep 60")
    if waiting == "python":  # startContainer hooks run in the Python init
        bundle.config["hooks"] = {"startContainer": [{"path": "/bin/true"}]}
    cid = new_id("thp")
    assert rt.create(cid, bundle).returncode == 0
    init = rt.state_json(cid)["pid"]
    with open(f"/proc/{init}/status") as f:
        assert f"THP_enabled:\t{0 if waiting == 'python' else host}\n" in f.read()
    assert rt.start(cid).returncode == 0
    with open(f"/proc/{init}/status") as f:
        assert f"THP_enabled:\t{host}\n" in f.read()
    rt.delete(cid, force=True)
