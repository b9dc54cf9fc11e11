"""The part of ``os`` that pyrunc's commands use, without importing ``os``.

Why: every command runs in a fresh interpreter (containerd calls ``state``
several times per container, and ``create``, ``start`` and ``delete`` once
each), and ``import os`` is 0.8-1.2 ms of CPU each time (docs/performance.md,
sections 13 and 25): ``_collections_abc``'s forty ABCs, ``os.environ``'s
mapping class, ``posixpath``, ``stat``.  The interpreter has already loaded
``posix``, the C module behind every ``os`` system call, at start-up.

So the modules the engines' commands load (create, run and exec included)
do ``from . import lightos as os``: the system calls are ``posix``'s own
functions (``os`` re-exports exactly these), and this module adds what
``os`` writes in Python and they use:

- ``path``: ``join``, ``dirname``, ``basename``, ``isabs``, ``normpath``,
  ``abspath``, ``realpath``, ``relpath``, ``exists``, ``lexists``,
  ``isdir``, ``isfile``, with ``posixpath``'s rules for ``str`` paths
  (tests/unit/test_lightos.py compares them with ``posixpath`` on a few
  thousand paths, and ``realpath`` on a tree of links);
- ``environ``: a read-only ``str`` view of the environment, live: ``os.environ``
  writes into the same ``posix.environ`` dict, so a library caller that
  sets a variable after importing pyrunc is seen;
- ``fsencode``, ``fsdecode``, ``makedirs``: as ``os``'s.

Any other module may import ``os`` as usual: both see the same process.
"""

# The system calls and constants the light modules use (and getcwd, stat,
# lstat for path below), posix's own (os re-exports exactly these objects).  tests/unit/test_lightos.py checks that
# every os.<name> those modules use is here.
from posix import (  # noqa: F401
    MFD_ALLOW_SEALING,
    MFD_CLOEXEC,
    O_APPEND,
    O_CLOEXEC,
    O_CREAT,
    O_DIRECTORY,
    O_EXCL,
    O_NOCTTY,
    O_NOFOLLOW,
    O_NONBLOCK,
    O_PATH,
    O_RDONLY,
    O_RDWR,
    O_TRUNC,
    O_WRONLY,
    ST_RDONLY,
    W_OK,
    X_OK,
    _exit,
    access,
    chdir,
    chmod,
    chown,
    chroot,
    close,
    closerange,
    dup2,
    execve,
    fchdir,
    fchown,
    fork,
    fstat,
    get_terminal_size,
    getcwd,
    getegid,
    geteuid,
    getpid,
    getppid,
    isatty,
    kill,
    listdir,
    lseek,
    lstat,
    major,
    makedev,
    memfd_create,
    mkdir,
    mknod,
    open,
    pidfd_open,
    pipe,
    posix_spawn,
    read,
    readlink,
    register_at_fork,
    rename,
    rmdir,
    scandir,
    sched_setaffinity,
    sendfile,
    set_blocking,
    set_inheritable,
    setgroups,
    setresgid,
    setresuid,
    setsid,
    stat,
    statvfs,
    strerror,
    symlink,
    sysconf,
    umask,
    uname,
    unlink,
    utime,
    wait,
    waitpid,
    waitstatus_to_exitcode,
    write,
)
from posix import environ as _environb
from sys import getfilesystemencodeerrors, getfilesystemencoding

SEEK_SET, SEEK_END = 0, 2  # os defines them itself (lseek's whence)
_S_IFMT, _S_IFDIR, _S_IFREG, _S_IFLNK = 0o170000, 0o040000, 0o100000, 0o120000
# fixed when the interpreter starts (from the locale, or -X utf8)
_FS_ENCODING, _FS_ERRORS = getfilesystemencoding(), getfilesystemencodeerrors()


def _key(name: str) -> bytes:
    return name.encode(_FS_ENCODING, _FS_ERRORS)  # os.environ's rule


class _Environ:
    """``os.environ`` for reading: ``get``, ``[]``, ``in``."""

    def get(self, name: str, default: str | None = None) -> str | None:
        value = _environb.get(_key(name))
        return default if value is None else value.decode(_FS_ENCODING, _FS_ERRORS)

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: str) -> bool:
        return _key(name) in _environb


environ = _Environ()


def _mode(p, stat_call):
    """st_mode of ``p``, or None where os.path's tests answer False (any
    OSError; ValueError for a NUL in the path)."""
    try:
        return stat_call(p).st_mode
    except (OSError, ValueError):
        return None


class path:
    """``os.path`` for ``str`` paths, as ``posixpath`` computes them."""

    @staticmethod
    def join(first: str, *rest: str) -> str:
        out = first
        for part in rest:
            if part.startswith("/"):
                out = part
            elif not out or out.endswith("/"):
                out += part
            else:
                out += "/" + part
        return out

    @staticmethod
    def dirname(p: str) -> str:
        head = p[: p.rfind("/") + 1]
        if head and head != "/" * len(head):
            head = head.rstrip("/")
        return head

    @staticmethod
    def basename(p: str) -> str:
        return p[p.rfind("/") + 1 :]

    @staticmethod
    def isabs(p: str) -> bool:
        return p.startswith("/")

    @staticmethod
    def normpath(p: str) -> str:
        if not p:
            return "."
        # POSIX leaves the meaning of exactly two leading slashes open: kept
        slashes = 2 if p.startswith("//") and not p.startswith("///") else 1 if p.startswith("/") else 0
        parts: list[str] = []
        for part in p.split("/"):
            if part in ("", "."):
                continue
            if part != ".." or (not slashes and not parts) or (parts and parts[-1] == ".."):
                parts.append(part)
            elif parts:
                parts.pop()
        return "/" * slashes + "/".join(parts) or "."

    @staticmethod
    def abspath(p: str) -> str:
        return path.normpath(p if p.startswith("/") else path.join(getcwd(), p))

    @staticmethod
    def exists(p: str) -> bool:
        return _mode(p, stat) is not None

    @staticmethod
    def lexists(p: str) -> bool:
        return _mode(p, lstat) is not None

    @staticmethod
    def isdir(p: str) -> bool:
        mode = _mode(p, stat)
        return mode is not None and mode & _S_IFMT == _S_IFDIR

    @staticmethod
    def isfile(p: str) -> bool:
        mode = _mode(p, stat)
        return mode is not None and mode & _S_IFMT == _S_IFREG

    @staticmethod
    def relpath(p: str, start: str | None = None) -> str:
        if not p:
            raise ValueError("no path specified")
        to = [x for x in path.abspath(p).split("/") if x]
        since = [x for x in path.abspath(start or ".").split("/") if x]
        common = 0
        for a, b in zip(to, since):
            if a != b:
                break
            common += 1
        return "/".join([".."] * (len(since) - common) + to[common:]) or "."

    @staticmethod
    def realpath(p: str) -> str:
        """posixpath's non-strict realpath: every symbolic link resolved,
        a missing component taken as it is, and a loop left unresolved
        from the link that closes it on."""
        resolved, _ = _resolve("/" if p.startswith("/") else "", p, {})
        return path.abspath(resolved)


def _resolve(base: str, rest: str, seen: dict) -> tuple[str, bool]:
    """``rest`` resolved onto the resolved ``base``; False when a loop
    stopped it (what is left is then appended unresolved).  ``seen`` maps a
    link's path to its target's resolution, None while it is being
    resolved."""
    parts = rest.split("/")
    for i, name in enumerate(parts):
        if name in ("", "."):
            continue
        if name == "..":
            head, _, tail = base.rpartition("/")
            if not base or tail == "..":
                base = path.join(base, "..")  # above a relative start: kept
            else:
                base = head or ("/" if base.startswith("/") else "")
            continue
        candidate = path.join(base, name)
        try:
            is_link = lstat(candidate).st_mode & _S_IFMT == _S_IFLNK
        except OSError:
            is_link = False  # missing: taken as it is
        if not is_link:
            base = candidate
            continue
        if candidate in seen:
            if seen[candidate] is not None:
                base = seen[candidate]
                continue
            return path.join(candidate, "/".join(parts[i + 1 :])), False  # a loop
        seen[candidate] = None
        target = readlink(candidate)
        base, ok = _resolve("/" if target.startswith("/") else base, target, seen)
        if not ok:
            return path.join(base, "/".join(parts[i + 1 :])), False
        seen[candidate] = base
    return base, True


def fsencode(name: "str | bytes") -> bytes:
    return name.encode(_FS_ENCODING, _FS_ERRORS) if isinstance(name, str) else name


def fsdecode(name: "str | bytes") -> str:
    return name.decode(_FS_ENCODING, _FS_ERRORS) if isinstance(name, bytes) else name


def makedirs(name: str, mode: int = 0o777, exist_ok: bool = False) -> None:
    """os.makedirs: the missing parents made with the default mode."""
    parent = path.dirname(name.rstrip("/"))
    if parent and parent != name and not path.exists(parent):
        try:
            makedirs(parent, exist_ok=exist_ok)
        except FileExistsError:
            pass  # made meanwhile
    try:
        mkdir(name, mode)
    except OSError:
        if not exist_ok or not path.isdir(name):
            raise


def read_file(name: str) -> bytes:
    """A whole file's bytes (pyrunc's own, not os's).  Through ``posix``
    rather than ``open()``: a file object costs eight system calls (fstat,
    an ioctl for isatty, two lseeks, ...) and ~10 us for a file read once,
    this an open, two reads and a close.  The kernel files pyrunc reads
    (state, cgroup and /proc files) are a few KiB; a longer file is read
    in more calls."""
    fd = open(name, O_RDONLY | O_CLOEXEC)
    try:
        data = read(fd, 65536)
        if data:
            chunks = [data]
            while more := read(fd, 65536):
                chunks.append(more)
            if len(chunks) > 1:
                data = b"".join(chunks)
    finally:
        close(fd)
    return data
