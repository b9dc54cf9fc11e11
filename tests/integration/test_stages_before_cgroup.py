"""create forks its stages before it makes the container's cgroup, where
the stages join late anyway (no user namespace, the cgroupfs driver): on
cgroup v1 the mkdirs wait for the kernel's cgroup_mutex while the lock
warmer's first write waits out an RCU grace period, and the init's
namespace and mount work now goes on meanwhile.  The runtime then sends
CGROUPS_CREATED with the cgroup.procs fds, and with a new cgroup namespace
those of its own cgroups, for the init to root the namespace at the
container's cgroup (docs/stage-protocol.md, docs/performance.md section
22).

The CLI's create and run also fork the init themselves, without an
intermediate stage, where nothing needs one (no user or time namespace, no
pid namespace joined by path, no id-mapped mount): the runtime unshares a
pid namespace for that one child and takes its own back after the fork
(section 23).
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

from helpers import TIMEOUT, assert_one_error_line, frozen_parent_cgroup, new_id, run_traced, runtime_is_pyrunc
from test_reliability_support import assert_clean, new_tag, tagged_env

pytestmark = pytest.mark.skipif(
    not runtime_is_pyrunc or not shutil.which("strace"), reason="pyrunc's create, traced with strace"
)


def _traced_run(rt, bundle, cid):
    """run (create, start, wait) with the runtime's own thread traced: its
    forks, the cgroup mkdirs and the fds it sends.  Returns (stdout, lines)."""
    bundle.write()
    rt._track(cid)
    return run_traced(rt, ["-e", "trace=clone,clone3,mkdir,mkdirat,sendmsg"], "run", "--bundle", bundle.path, cid)


def _order(lines, cgroups_path):
    forks = [i for i, ln in enumerate(lines) if ln.startswith(("clone(", "clone3(")) and "CLONE_THREAD" not in ln]
    mkdirs = [i for i, ln in enumerate(lines) if "mkdir" in ln and cgroups_path in ln and ln.rstrip().endswith("= 0")]
    sent = [i for i, ln in enumerate(lines) if ln.startswith("sendmsg(") and "SCM_RIGHTS" in ln]
    assert forks and mkdirs, lines
    return forks[0], mkdirs, sent


def test_the_stages_are_forked_before_the_cgroup_is_made(rt, bundle):
    cid = new_id("sbc")
    bundle.set_args("cat", "/proc/self/cgroup")
    out, lines = _traced_run(rt, bundle, cid)
    fork, mkdirs, sent = _order(lines, bundle.cgroups_path)
    assert fork < mkdirs[0], lines
    # the late-join fds go to the init once every level exists
    assert sent and sent[0] > mkdirs[-1], lines
    # and the container's process is in its cgroups, in every hierarchy
    rows = [r for r in out.splitlines() if r.strip()]
    assert rows and all(r.endswith("/" + bundle.cgroups_path) for r in rows), out


def test_a_new_cgroup_namespace_is_made_by_the_init_once_the_cgroup_exists(rt, bundle):
    """The namespace is rooted at the container's cgroup: the init gets the
    runtime's own cgroups too ("origin") to join, unshare and go back."""
    cid = new_id("sbcns")
    bundle.set_namespace("cgroup")
    bundle.set_args("cat", "/proc/self/cgroup")
    out, lines = _traced_run(rt, bundle, cid)
    fork, mkdirs, sent = _order(lines, bundle.cgroups_path)
    assert fork < mkdirs[0] and sent and sent[0] > mkdirs[-1], lines
    assert re.search(r'origin\\?":[1-9]', lines[sent[0]]), lines[sent[0]]  # strace escapes the quotes
    rows = [r for r in out.splitlines() if r.strip()]
    assert rows and all(r.endswith(":/") for r in rows), out  # the namespace's root: its own cgroup


def test_a_create_failing_after_the_early_fork_leaves_nothing(rt, bundle):
    """The cgroup is refused (a frozen parent) while the stages already run:
    the one error line, and no stage, state or cgroup left behind."""
    cid, tag = new_id("sbcfail"), new_tag()
    with frozen_parent_cgroup() as parent:
        try:
            bundle.config["linux"]["cgroupsPath"] = parent + "/ctr"
            bundle.set_args("sleep", "1000")
            p = rt.create(cid, bundle, env=tagged_env(tag), timeout=TIMEOUT // 2)
            assert_one_error_line(p, contains="unexpectedly frozen")
            assert_clean(rt, cid, bundle, tag)
        finally:
            rt.delete(cid, force=True)


def _traced_create(rt, bundle, cid, trace="clone,clone3,unshare,setns"):
    bundle.write()
    rt._track(cid)
    return run_traced(rt, ["-e", f"trace={trace}"], "create", "--bundle", bundle.path, cid)[1]


def test_the_cli_create_forks_the_init_itself(rt, bundle):
    cid = new_id("sbcdirect")
    bundle.set_args("sleep", "100")
    lines = _traced_create(rt, bundle, cid)
    forks = [ln for ln in lines if ln.startswith(("clone(", "clone3(")) and "CLONE_THREAD" not in ln]
    assert len(forks) == 1, lines
    unshare = [i for i, ln in enumerate(lines) if ln.startswith("unshare(CLONE_NEWPID)")]
    back = [i for i, ln in enumerate(lines) if ln.startswith("setns(") and "CLONE_NEWPID" in ln]
    assert unshare and back and unshare[0] < lines.index(forks[0]) < back[0], lines
    # the created init: pid 1 of its own pid namespace, the runtime's former child
    pid = rt.state_json(cid)["pid"]
    with open(f"/proc/{pid}/status") as f:
        nspid = [ln.split()[1:] for ln in f if ln.startswith("NSpid:")][0]
    assert nspid[-1] == "1" and len(nspid) >= 2, nspid
    assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    assert rt.delete(cid, force=True).returncode == 0


def test_a_create_runtime_hook_runs_in_the_runtime_pid_namespace(rt, bundle, tmp_path):
    """The runtime's later children (its hooks) are back in its own pid
    namespace after the init's fork; and the init's new cgroup namespace,
    made once the cgroup exists, is there before the hook runs."""
    out = tmp_path / "hook-ns"
    script = (
        "import json, os, sys; pid = json.load(sys.stdin)['pid']; "
        f"open({str(out)!r}, 'w').write(os.readlink('/proc/self/ns/pid') + ' ' + "
        "os.readlink(f'/proc/{pid}/ns/cgroup'))"
    )
    bundle.config["hooks"] = {"createRuntime": [{"path": sys.executable, "args": ["python3", "-c", script]}]}
    bundle.set_namespace("cgroup")
    # no cgroup mount: nothing in the mount plan makes the init wait for the cgroup first
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if m.get("type") != "cgroup"]
    bundle.set_args("true")
    cid = new_id("sbchook")
    bundle.write()
    p = rt.create(cid, bundle)
    assert p.returncode == 0, p.stderr
    hook_pidns, init_cgroupns = out.read_text().split()
    assert hook_pidns == os.readlink("/proc/self/ns/pid")
    assert init_cgroupns == os.readlink(f"/proc/{rt.state_json(cid)['pid']}/ns/cgroup")
    assert init_cgroupns != os.readlink("/proc/self/ns/cgroup")
    assert rt.delete(cid, force=True).returncode == 0


def test_the_cli_run_forks_the_init_itself_too(rt, bundle):
    """run reaps its container itself (a subreaper in the foreground)."""
    cid = new_id("sbcrun")
    bundle.set_args("true")
    bundle.write()
    rt._track(cid)
    lines = run_traced(rt, ["-e", "trace=unshare,setns"], "run", "--bundle", bundle.path, cid)[1]
    assert [ln for ln in lines if ln.startswith("unshare(CLONE_NEWPID)")], lines


def test_a_library_create_keeps_the_intermediate(rt, bundle, tmp_path):
    """A library caller keeps the intermediate: the init would be its
    child, to reap."""
    cid = new_id("sbcinter")
    bundle.set_args("true")
    bundle.write()
    rt._track(cid)
    trace = tmp_path / "trace"
    code = (
        "from pyrunc.exeseal import reexec_sealed; reexec_sealed()\n"
        f"from pyrunc.runtime import Runtime; Runtime(root={rt.root!r}).create({cid!r}, {bundle.path!r})"
    )
    err = tmp_path / "stderr"
    with open(err, "w") as f:  # a file: the created init keeps its stdio
        p = subprocess.run(
            ["strace", "-qq", "-e", "trace=unshare", "-o", str(trace), sys.executable, "-c", code],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=f,
            timeout=60,
        )
    assert p.returncode == 0, err.read_text()
    lines = trace.read_text().splitlines()
    assert not [ln for ln in lines if ln.startswith("unshare(CLONE_NEWPID)")], lines


def test_a_pid_namespace_joined_by_path_keeps_the_intermediate(rt, bundle, make_bundle):
    """Another container's pid namespace (Kubernetes' shared process
    namespace, podman's --pid container:): an init forked there by the
    runtime would be visible to that container from its first instruction
    while it still holds the runtime's fds (non-dumpable stops ptrace only
    for those without CAP_SYS_PTRACE).  The intermediate closes them and
    enters the namespace; the runtime itself switches no pid namespace.
    The init lands in that namespace all the same."""
    first = make_bundle("sbcfirst", args=("sleep", "100"))
    first.config["linux"]["cgroupsPath"] = bundle.cgroups_path + "-first"
    first.write()
    first_id = new_id("sbcfirst")
    rt._track(first_id)
    assert rt.run(first_id, first, "--detach").returncode == 0
    first_pid = rt.state_json(first_id)["pid"]
    bundle.set_namespace("pid", f"/proc/{first_pid}/ns/pid")
    bundle.sh("cat /proc/1/cmdline > /shared/one")
    cid = new_id("sbcpidpath")
    lines = _traced_create(rt, bundle, cid, trace="clone,clone3,unshare,setns")
    assert [ln for ln in lines if ln.startswith(("clone(", "clone3(")) and "CLONE_THREAD" not in ln], lines
    assert not [ln for ln in lines if "CLONE_NEWPID" in ln], lines
    pid = rt.state_json(cid)["pid"]
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{first_pid}/ns/pid")
    assert rt.start(cid).returncode == 0
    rt.wait_status(cid, "stopped")
    with open(os.path.join(bundle.shared, "one"), "rb") as f:
        assert f.read().split(b"\0")[0] == b"sleep"  # the first container's process is its pid 1
    assert rt.delete(cid).returncode == 0
    assert rt.delete(first_id, force=True).returncode == 0


@pytest.mark.parametrize(
    "path, error",
    [
        ("/proc/999999999/ns/pid", "open namespace pid path /proc/999999999/ns/pid: No such file or directory"),
        ("/proc/self/ns/net", "setns: Invalid argument: pid namespace /proc/self/ns/net"),
    ],
)
def test_a_pid_namespace_path_that_cannot_be_entered_leaves_nothing(rt, bundle, path, error):
    """A missing path or another namespace type fails create with one line
    naming it, and leaves no process, cgroup or state."""
    cid, tag = new_id("sbcbadpid"), new_tag()
    bundle.set_namespace("pid", path)
    bundle.set_args("true").write()
    rt._track(cid)
    p = rt.create(cid, bundle, env=tagged_env(tag))
    assert_one_error_line(p, contains=error)
    assert_clean(rt, cid, bundle, tag)


def test_a_refused_return_to_the_runtime_pid_namespace_leaves_nothing(rt, bundle):
    """After the init's fork the runtime takes its own pid namespace back;
    if that fails (PYRUNC_TEST_FAIL), the init is killed and create fails
    with one line."""
    cid, tag = new_id("sbcback"), new_tag()
    bundle.set_args("sleep", "100")
    p = rt.create(cid, bundle, env=tagged_env(tag, PYRUNC_TEST_FAIL="create:pidns-back"))
    assert_one_error_line(p, contains="Cannot allocate memory")
    assert_clean(rt, cid, bundle, tag, wait=0)
