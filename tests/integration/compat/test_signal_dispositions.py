"""The signal dispositions of the processes the runtime starts, against runc.

CPython ignores SIGPIPE and SIGXFSZ from its first instruction, and an
ignored signal stays ignored across execve.  runc's container processes,
exec'd processes and hooks start with no signal ignored; so must pyrunc's,
or a container's ``yes | head -n 1`` leaves ``yes`` writing into a closed
pipe (EPIPE, exit 1) instead of ending by SIGPIPE (exit 141) as it does
on the host.

Only the standard signals (1-31) are compared: glibc's ``posix_spawn``
(2.36) sets its two internal real-time signals (32, 33) to "ignore" in the
child before the execve, so a process started through it (by ``make``, or
pyrunc's ``exec``) passes them on; programs that use them install handlers.
"""

import os
import stat

from helpers import new_id, started

# `yes` runs until head has its line; its status says how it ended
PIPE_SCRIPT = "grep SigIgn /proc/self/status; (yes; echo yes-status $? >&2) | head -n 1 >/dev/null"


def _ignored_standard_signals(status_line):
    """The SigIgn mask of a /proc/PID/status line, signals 1-31 only."""
    name, mask = status_line.split()
    assert name == "SigIgn:"
    return int(mask, 16) & ((1 << 31) - 1)


def test_container_process(any_rt, bundle):
    bundle.sh(PIPE_SCRIPT)
    p = any_rt.run(new_id(), bundle)
    assert p.returncode == 0, p.stderr
    assert _ignored_standard_signals(p.stdout) == 0
    assert "yes-status 141" in p.stderr, p.stderr  # 128 + SIGPIPE


def test_exec_process(any_rt, bundle):
    cid, _ = started(any_rt, bundle, "sleep", "600")
    p = any_rt("exec", cid, "sh", "-c", PIPE_SCRIPT)
    assert p.returncode == 0, p.stderr
    assert _ignored_standard_signals(p.stdout) == 0
    assert "yes-status 141" in p.stderr, p.stderr


def test_exec_process_forked(any_rt, bundle):
    """Under a filter that refuses clone3 (profiles older than it), glibc's
    posix_spawn fails and pyrunc's exec forks the process itself
    (process._spawn_forked): its child resets the dispositions too."""
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    bundle.config["process"]["noNewPrivileges"] = True
    cid, _ = started(any_rt, bundle, "sleep", "600")
    p = any_rt("exec", cid, "sh", "-c", PIPE_SCRIPT)
    assert p.returncode == 0, p.stderr
    assert _ignored_standard_signals(p.stdout) == 0
    assert "yes-status 141" in p.stderr, p.stderr


def test_hook_process(any_rt, bundle, tmp_path):
    out = tmp_path / "hook.out"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\ngrep SigIgn /proc/self/status > {out}\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    bundle.config.setdefault("hooks", {})["createRuntime"] = [{"path": str(hook)}]
    bundle.set_args("true")
    p = any_rt.run(new_id(), bundle)
    assert p.returncode == 0, p.stderr
    assert os.path.exists(out)
    assert _ignored_standard_signals(out.read_text()) == 0
