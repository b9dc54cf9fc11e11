"""Relaying a container's pty to the runtime's own stdio (``run`` in the
foreground with ``terminal: true`` and no console socket)."""

import os
import select


def relay(master, pid):
    """Copy stdin -> pty master and master -> stdout until the container's
    init exits; stdin is put in raw mode while relaying if it is a tty."""
    import termios
    import tty
    saved = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(master, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    stdin_open = True
    try:
        poller.register(0, select.POLLIN)
    except (OSError, ValueError):
        stdin_open = False
    try:
        while True:
            try:
                events = poller.poll()
            except InterruptedError:
                continue
            done = False
            for fd, ev in events:
                if fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: the container closed its side
                        data = b""
                    if not data:
                        done = True
                    else:
                        _write_all(1, data)
                elif fd == 0 and stdin_open:
                    data = os.read(0, 65536) if ev & (select.POLLIN | select.POLLHUP) else b""
                    if data:
                        _write_all(master, data)
                    else:
                        poller.unregister(0)
                        stdin_open = False
                elif fd == pidfd:
                    done = True
            if done:
                _drain(master)
                break
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(pidfd)
        os.close(master)


def _drain(master):
    os.set_blocking(master, False)
    try:
        while True:
            data = os.read(master, 65536)
            if not data:
                break
            _write_all(1, data)
    except (BlockingIOError, OSError):
        pass


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
