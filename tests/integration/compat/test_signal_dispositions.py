"""The signal dispositions of the processes the runtime starts, against runc.

CPython ignores SIGPIPE and SIGXFSZ from its first instruction, and an
ignored signal stays ignored across execve.  runc's container processes,
exec'd processes and hooks start with no signal ignored; so must pyrunc's,
or a container's ``yes | head -n 1`` leaves ``yes`` writing into a closed
pipe (EPIPE, exit 1) instead of ending by SIGPIPE (exit 141) as it does
on the host.
"""

import os
import stat

from helpers import new_id, started

NOTHING_IGNORED = "SigIgn:\t0000000000000000"
# `yes` runs until head has its line; its status says how it ended
PIPE_SCRIPT = "grep SigIgn /proc/self/status; (yes; echo yes-status $? >&2) | head -n 1 >/dev/null"


def test_container_process(any_rt, bundle):
    bundle.sh(PIPE_SCRIPT)
    p = any_rt.run(new_id(), bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == NOTHING_IGNORED
    assert "yes-status 141" in p.stderr, p.stderr  # 128 + SIGPIPE


def _ignored(status_line):
    assert status_line.startswith("SigIgn:\t"), status_line
    return int(status_line.split()[1], 16)


def test_exec_process(any_rt, bundle):
    cid, _ = started(any_rt, bundle, "sleep", "600")
    p = any_rt("exec", cid, "sh", "-c", PIPE_SCRIPT)
    assert p.returncode == 0, p.stderr
    ignored = _ignored(p.stdout.strip())
    if any_rt.name == "pyrunc":
        # The exec'd process is started by glibc's posix_spawn, whose child
        # (glibc 2.36) sets its two internal real-time signals (32, 33) to
        # "ignore" before the execve; nothing can ask it not to.  Programs
        # that use them (glibc's own threads, musl) install their handlers.
        ignored &= ~((1 << 31) | (1 << 32))
    assert ignored == 0, hex(ignored)
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
    assert out.read_text().strip() == NOTHING_IGNORED
