"""The console: a container process's terminal, and the console socket.

With ``process.terminal`` the stage that starts the process allocates a pty
(``pty_peer``: unlocked, the peer taken with TIOCGPTPEER so no path is
looked up), sends the master to the console socket (``send_master``: the
one message runc sends, "/dev/ptmx" and the fd), and makes the peer the
process's controlling terminal and stdio (``become_stdio``, after
``give_to``).  ``run``/``exec`` in the foreground without a console socket
relay the master to the runtime's own stdio (``relay``).

The stage functions run in forked stages where no import may touch the
file system: they use ``syscalls``, ``ctypes`` and ``socket``, which the
runtime loaded before the fork, so their imports read sys.modules only.
"""

from . import lightos as os  # os's calls without importing os (lightos.py)
import select


def connect_unix(path, what):
    """A connected stream socket to the unix socket ``path`` the runtime
    sends fds to (``what``: "console socket", "seccomp listenerPath"), or
    one error line."""
    import socket
    from .errors import PyruncError

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise PyruncError(f"failed to connect to {what} {path}: {e.strerror}") from None
    return s


def connect_socket(path):
    """The ``--console-socket``."""
    return connect_unix(path, "console socket")


def send_master(sock, master):
    """Send the pty master to the console socket as runc does: one message,
    the name it opened ("/dev/ptmx"; go-runc accepts any name < 4096 bytes)
    and the fd, without waiting for the peer."""
    import socket as _socket

    _socket.send_fds(sock, [b"/dev/ptmx"], [master])


def pty_peer(master, size=None):
    """Unlock the pty of ``master`` and open its peer with TIOCGPTPEER (no
    path lookup, CVE-2025-52565); ``size``: (rows, columns) to set."""
    from .linux import ffi
    from .linux import syscalls as sc

    sc.ioctl_ptr(master, sc.TIOCSPTLCK, ffi.c_int(0))
    peer = sc.ioctl_int(master, sc.TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    if size:
        sc.ioctl_ptr(peer, sc.TIOCSWINSZ, (ffi.c_ushort * 4)(size[0], size[1], 0, 0))
    return peer


def hand_over(sock, master):
    """``send_master``, then close the socket and this stage's master."""
    send_master(sock, master)
    sock.close()
    os.close(master)


def become_stdio(peer, uid):
    """The pty peer becomes the process user's (``give_to``), stdin, stdout,
    stderr and the controlling terminal; ``peer`` itself is closed."""
    from .linux import syscalls as sc

    give_to(peer, uid)
    for fd in (0, 1, 2):
        os.dup2(peer, fd)
    sc.ioctl_int(0, sc.TIOCSCTTY, 0)
    os.close(peer)


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
        view = view[os.write(fd, view) :]
