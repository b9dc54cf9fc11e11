"""A container whose program cannot be executed, against runc.

runc's `start` returns once its init has written to the exec FIFO, before
the execve: an execve that fails then (a file that is no program, "exec
format error") is not `start`'s error; the init writes it to the
container's stderr and exits 1.  pyrunc's `start` returns at the same
point when only the execve is left and the init can still write to it
(no filter loaded yet, one under no_new_privs still to come, or one loaded
early -- seccomp without no_new_privs -- that allows write(2) whatever its
arguments), and so behaves the same.  It still waits for the execve, and
reports its failure, when the early filter's answer to write(2) depends
on its arguments, or when poststart hooks must see the program executed.
"""

import os
import stat
import subprocess

import pytest

from helpers import new_id

MESSAGE = "exec /bad: exec format error"


@pytest.fixture
def unrunnable(bundle):
    bad = os.path.join(bundle.rootfs, "bad")
    with open(bad, "w") as f:
        f.write("not a program\n")
    os.chmod(bad, 0o755)
    bundle.set_args("/bad")
    return bundle


def _create(rt, bundle, out):
    cid = new_id()
    with open(out, "wb") as f:
        p = rt.create(cid, bundle, stdout=f, stderr=subprocess.STDOUT)
    assert p.returncode == 0, p.stderr
    return cid


def _container_output(rt, cid, out):
    rt.wait_status(cid, "stopped")
    with open(out) as f:
        return f.read()


def test_start_returns_and_the_container_reports(any_rt, unrunnable, tmp_path):
    out = tmp_path / "out"
    cid = _create(any_rt, unrunnable, out)
    p = any_rt.start(cid)
    assert p.returncode == 0, p.stderr
    text = _container_output(any_rt, cid, out)
    assert MESSAGE in text, text


def test_run_exits_1_with_the_message(any_rt, unrunnable):
    p = any_rt.run(new_id(), unrunnable)
    assert p.returncode == 1
    assert MESSAGE in p.stdout + p.stderr


# Two profiles that allow all but one syscall: write(2) allowed whatever its
# arguments, or refused for one value of its fd (the filter reads them).
ALLOWS_WRITE = {"names": ["acct"], "action": "SCMP_ACT_ERRNO"}
WRITE_BY_ARGUMENT = {
    "names": ["write"],
    "action": "SCMP_ACT_ERRNO",
    "args": [{"index": 0, "value": 9999, "op": "SCMP_CMP_EQ"}],
}


@pytest.mark.parametrize("rule", [ALLOWS_WRITE, WRITE_BY_ARGUMENT], ids=["write-allowed", "write-by-argument"])
@pytest.mark.parametrize("nnp", [False, True], ids=["no-nnp", "nnp"])
def test_under_seccomp(any_rt, unrunnable, tmp_path, nnp, rule):
    unrunnable.config["process"]["noNewPrivileges"] = nnp
    unrunnable.config["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}
    out = tmp_path / "out"
    cid = _create(any_rt, unrunnable, out)
    p = any_rt.start(cid)
    if any_rt.name == "pyrunc" and not nnp and rule is WRITE_BY_ARGUMENT:
        # the user and capability switches ran under a filter that may refuse
        # the init's write: start waited for the execve, and reports it
        assert p.returncode == 1
        assert MESSAGE in p.stderr, p.stderr
    else:
        assert p.returncode == 0, p.stderr
        text = _container_output(any_rt, cid, out)
        assert MESSAGE in text, text
    any_rt.wait_status(cid, "stopped")


def test_poststart_hooks_see_the_program_executed(any_rt, unrunnable, tmp_path):
    """pyrunc waits for the execve before poststart hooks (the spec: "after
    the user-specified process is executed"), so its failure is start's."""
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    unrunnable.config.setdefault("hooks", {})["poststart"] = [{"path": str(hook)}]
    out = tmp_path / "out"
    cid = _create(any_rt, unrunnable, out)
    p = any_rt.start(cid)
    if any_rt.name == "pyrunc":
        assert p.returncode == 1
        assert MESSAGE in p.stderr, p.stderr
    else:
        # runc 1.1 runs the hooks once the FIFO was read, and succeeds
        assert p.returncode == 0, p.stderr
    any_rt.wait_status(cid, "stopped")
