"""Terminals: the owner of a container's pty, and relaying a pty to the
runtime's own stdio (``run``/``exec`` in the foreground with a terminal and
no console socket)."""

import os
import select


def give_to(peer, uid):
    """Make the pty peer (the process's stdio, and /dev/console, which is a
    bind of it) the process user's, as runc does before it switches user:
    the uid changes, the group stays what devpts gave it (``gid=5`` with
    runc's spec, else the creator's).  Without this a non-root process
    could not use its own terminal (devpts mode 0620 by root).

    Errors that mean "not ours to give" are ignored, as by runc: EINVAL
    (uid not mapped in the user namespace), EPERM (the inode's owner not
    mapped), EROFS (a read-only devpts)."""
    if not uid:
        return
    try:
        os.fchown(peer, uid, -1)
    except OSError as e:
        if e.errno not in (1, 22, 30):  # EPERM, EINVAL, EROFS
            raise


def relay(master, pid):
    """Copy stdin -> pty master and master -> stdout until the container's
    init exits; stdin is put in raw mode while relaying if it is a tty."""
    import _signal
    import fcntl
    import termios
    import tty
    saved = None
    old_winch = None
    if os.isatty(0):
        saved = termios.tcgetattr(0)
        tty.setraw(0)

        # the container's terminal follows ours in size (runc: console.Resize
        # at start and on SIGWINCH), rather than SIGWINCH being forwarded
        def resize(*_):
            try:
                fcntl.ioctl(master, termios.TIOCSWINSZ, fcntl.ioctl(0, termios.TIOCGWINSZ, b"\0" * 8))
            except OSError:
                pass
        resize()
        old_winch = _signal.signal(_signal.SIGWINCH, resize)
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
        if old_winch is not None:
            _signal.signal(_signal.SIGWINCH, old_winch)
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
