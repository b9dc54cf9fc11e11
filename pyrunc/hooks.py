"""Running OCI hooks.

A hook is executed with the container state JSON on its stdin, its own
args/env, and an optional timeout in seconds.  The same function serves the
runtime-namespace hooks (prestart, createRuntime, poststart, poststop, run by
the runtime) and the container-namespace ones (createContainer before
pivot_root, startContainer after it, run by the init), so it uses only
fork/execve/poll: nothing to import inside the container.
"""

import json
import os
import select
import _signal  # the C module behind `signal`, without its enum import (ms per call)
import time

from .errors import HookError


def _signal_name(signum):
    """SIGKILL for 9, as signal.Signals(9).name would say (without the enum
    import, which is refused in the container's root anyway)."""
    for name, value in vars(_signal).items():
        if (value == signum and name.startswith("SIG") and not name.startswith("SIG_")
                and name not in ("SIGIOT", "SIGCLD", "SIGPOLL")):  # aliases
            return name
    return str(signum)


def _spawn(hook, stdin_data):
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: stdin = state, stdout/stderr captured
        try:
            os.dup2(r_in, 0)
            os.dup2(w_out, 1)
            os.dup2(w_out, 2)
            env = dict(e.split("=", 1) if "=" in e else (e, "") for e in hook.env)
            os.execve(hook.path, hook.args or [hook.path], env)
        except OSError as e:
            os.write(2, f"exec {hook.path}: {e.strerror}".encode())
        os._exit(127)
    os.close(r_in)
    os.close(w_out)
    try:
        os.write(w_in, stdin_data)
    except BrokenPipeError:
        pass
    os.close(w_in)
    return pid, r_out


def run_hook(hook, state, name, index):
    """Run one hook; raise HookError on failure or timeout."""
    pid, out = _spawn(hook, json.dumps(state).encode())
    pidfd = os.pidfd_open(pid)
    deadline = None if hook.timeout is None else time.monotonic() + hook.timeout
    output = b""
    poller = select.poll()
    poller.register(out, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    exited = False
    try:
        while True:
            wait_ms = None
            if deadline is not None:
                wait_ms = max(0, int((deadline - time.monotonic()) * 1000))
            events = poller.poll(wait_ms)
            if not events:
                os.kill(pid, _signal.SIGKILL)
                os.waitpid(pid, 0)
                raise HookError(f"error running {name} hook #{index}: timeout after {hook.timeout}s")
            for fd, _ in events:
                if fd == out:
                    chunk = os.read(out, 65536)
                    if chunk:
                        output = (output + chunk)[-4096:]
                    else:
                        poller.unregister(out)
                elif fd == pidfd:
                    exited = True
            if exited:
                break
        _, status = os.waitpid(pid, 0)
        try:
            while True:
                chunk = os.read(out, 65536)
                if not chunk:
                    break
                output = (output + chunk)[-4096:]
        except OSError:
            pass
    finally:
        os.close(out)
        os.close(pidfd)
    if status != 0:
        code = os.waitstatus_to_exitcode(status)
        how = f"exit status {code}" if code >= 0 else f"signal: {_signal_name(-code)}"
        text = output.decode(errors="replace").strip()
        raise HookError(f"error running {name} hook #{index}: {how}"
                        + (f", output: {text}" if text else ""))


def run_hooks(hooks, state, name, warn=None):
    """Run ``hooks`` in order.  The first failure is raised, except with
    ``warn`` (poststop: the spec wants a warning and the remaining hooks
    run), where each failure is passed to ``warn`` and the rest go on."""
    for i, hook in enumerate(hooks):
        try:
            run_hook(hook, state, name, i)
        except HookError as e:
            if warn is None:
                raise
            warn(str(e))
