"""The part of ``os`` that the light commands use, without importing ``os``.

Why: ``state``, ``start``, ``kill``, ``delete``, ``pause``, ``resume`` and
``list`` run in a fresh interpreter each time (containerd calls ``state``
several times per container), and ``import os`` is about 1.2 ms of that
(docs/performance.md, section 13): ``_collections_abc``'s forty ABCs,
``os.environ``'s mapping class, ``posixpath``, ``stat``.  The interpreter
has already loaded ``posix``, the C module behind every ``os`` system call,
at start-up.  ``create``, ``run`` and ``exec`` need ``os``, but only after
they have started their cgroup lock warmer (cgroups/join.py), whose grace
period should begin as early as it can.

So the modules those commands load (and ``exeseal``, ``cgroups/join``) do
``from . import lightos as os``: the
system calls are ``posix``'s own functions (``os`` re-exports exactly
these), and this module adds what ``os`` writes in Python and they use:

- ``path``: ``join``, ``dirname``, ``basename``, ``isabs``, ``normpath``,
  ``abspath``, ``exists``, ``lexists``, ``isdir``, ``isfile``, with
  ``posixpath``'s rules for ``str`` paths (tests/unit/test_lightos.py
  compares them with ``posixpath`` on a few thousand paths); ``relpath``
  from ``os`` itself, off the light paths;
- ``environ``: a read-only ``str`` view of the environment, live: ``os.environ``
  writes into the same ``posix.environ`` dict, so a library caller that
  sets a variable after importing pyrunc is seen;
- ``makedirs``: the real one, importing ``os`` on first use (create's
  paths, which load ``os`` anyway).

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
    O_PATH,
    O_RDONLY,
    O_TRUNC,
    O_WRONLY,
    ST_RDONLY,
    W_OK,
    X_OK,
    _exit,
    access,
    chdir,
    chmod,
    close,
    fchdir,
    fstat,
    getcwd,
    getegid,
    geteuid,
    getpid,
    kill,
    listdir,
    lstat,
    memfd_create,
    mkdir,
    open,
    pidfd_open,
    read,
    readlink,
    rename,
    rmdir,
    scandir,
    sendfile,
    set_inheritable,
    stat,
    statvfs,
    strerror,
    sysconf,
    unlink,
    wait,
    waitstatus_to_exitcode,
    write,
)
from posix import environ as _environb

_S_IFMT, _S_IFDIR, _S_IFREG = 0o170000, 0o040000, 0o100000


def _key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")  # os.fsencode's rule


class _Environ:
    """``os.environ`` for reading: ``get``, ``[]``, ``in``."""

    def get(self, name: str, default: str | None = None) -> str | None:
        value = _environb.get(_key(name))
        return default if value is None else value.decode("utf-8", "surrogateescape")

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
        import os

        return os.path.relpath(p, start)


def makedirs(name, mode=0o777, exist_ok=False):
    import os

    os.makedirs(name, mode, exist_ok)
