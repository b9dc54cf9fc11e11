"""Running OCI hooks.

A hook is executed with the container state JSON on its stdin, its own
args/env, and an optional timeout in seconds.  The same function serves the
runtime-namespace hooks (prestart, createRuntime, poststart, poststop, run by
the runtime) and the container-namespace ones (createContainer before
pivot_root, startContainer after it, run by the init), so it uses only
fork/execve/poll: nothing to import inside the container.
"""

from . import fastjson
from . import lightos as os  # os's calls without importing os (lightos.py)
import select
import _signal  # the C module behind `signal`, without its enum import (ms per call)
import time

from .errors import HookError


def _signal_name(signum):
    """SIGKILL for 9, as signal.Signals(9).name would say (without the enum
    import, which is refused in the container's root anyway)."""
    for name, value in vars(_signal).items():
        if (
            value == signum
            and name.startswith("SIG")
            and not name.startswith("SIG_")
            and name not in ("SIGIOT", "SIGCLD", "SIGPOLL")
        ):  # aliases
            return name
    return str(signum)


def _spawn(hook):
    """Fork and exec the hook; return (pid, state pipe's write end, output
    pipe's read end).  Both ends stay non-blocking in the runtime, which
    feeds the state and drains the output in one poll loop: a hook that
    writes a lot before it reads its stdin cannot deadlock with us, whatever
    the size of the state (annotations can be megabytes)."""
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: stdin = state, stdout/stderr captured
        try:
            os.dup2(r_in, 0)
            os.dup2(w_out, 1)
            os.dup2(w_out, 2)
            # A hook gets the state on stdin and stdio, nothing else: not
            # the preserved fds of the container, not the runtime's sockets,
            # not whatever pyrunc's caller left open.
            os.closerange(3, 0x7FFFFFFF)  # close_range(2)
            env = dict(e.split("=", 1) if "=" in e else (e, "") for e in hook.env)
            # what CPython ignores at start-up, at its default again (as
            # process.PYTHON_IGNORED_SIGNALS, for the same reason)
            for signum in (_signal.SIGPIPE, _signal.SIGXFSZ):
                _signal.signal(signum, _signal.SIG_DFL)
            os.execve(hook.path, hook.args or [hook.path], env)
        except OSError as e:
            os.write(2, f"{_START_FAILED}{hook.path}: {e.strerror}".encode())
        os._exit(127)
    os.close(r_in)
    os.close(w_out)
    os.set_blocking(w_in, False)
    os.set_blocking(r_out, False)
    return pid, w_in, r_out


# what a child that could not execve the hook writes before exit 127
_START_FAILED = "\0pyrunc: cannot start hook "


def run_hook(hook, state, name, index):
    """Run one hook; raise HookError on failure or timeout."""
    pid, stdin_w, out = _spawn(hook)
    pending: memoryview | bytes = memoryview(fastjson.dumps(state).encode())
    pidfd = os.pidfd_open(pid)
    deadline = None if hook.timeout is None else time.monotonic() + hook.timeout
    output = b""
    poller = select.poll()
    poller.register(out, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    poller.register(stdin_w, select.POLLOUT)
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
            exited = False
            for fd, ev in events:
                if fd == out:
                    chunk = _read_some(out)
                    if chunk:
                        output = (output + chunk)[-4096:]
                    elif chunk is not None:
                        poller.unregister(out)
                elif fd == stdin_w:
                    try:
                        pending = pending[os.write(stdin_w, pending) :] if not ev & select.POLLERR else b""
                    except BlockingIOError:
                        pass
                    except (BrokenPipeError, OSError):
                        pending = b""  # the hook does not read its stdin: fine
                    if not pending:
                        poller.unregister(stdin_w)
                        os.close(stdin_w)
                        stdin_w = -1
                elif fd == pidfd:
                    exited = True
            if exited:
                break
        _, status = os.waitpid(pid, 0)
        while True:
            chunk = _read_some(out)
            if not chunk:
                break
            output = (output + chunk)[-4096:]
    finally:
        os.close(out)
        os.close(pidfd)
        if stdin_w >= 0:
            os.close(stdin_w)
    if status != 0:
        code = os.waitstatus_to_exitcode(status)
        text = output.decode(errors="replace")
        if code == 127 and text.startswith(_START_FAILED):
            raise HookError(f"error running {name} hook #{index}: {text[1:].strip()}")
        how = f"exit status {code}" if code >= 0 else f"signal: {_signal_name(-code)}"
        text = text.strip()
        raise HookError(f"error running {name} hook #{index}: {how}" + (f", output: {text}" if text else ""))


def _read_some(fd):
    """Bytes available on a non-blocking pipe; b"" at EOF, None if none yet."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None


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
