"""File-level helpers shared by the v1 and v2 managers.

Every write names the OCI field it comes from, so an error reads
``linux.resources.memory.limit: memory.limit_in_bytes = 1: Device or resource busy``.
"""

import errno
from pyrunc import lightos as os  # os's calls without importing os (lightos.py)
import time

from pyrunc.errors import CgroupError


def read(path: str) -> str:
    return os.fsdecode(os.read_file(path)).strip()


def read_int(path: str, default: int = 0) -> int:
    """An integer file; "max" reads as ``default``; a missing file too."""
    try:
        s = read(path)
    except OSError:
        return default
    if s == "max" or s == "":
        return default
    return int(s)


def read_kv(path: str) -> dict[str, int]:
    """``key value`` lines (memory.stat, cpu.stat, memory.events, ...)."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(" ")
                try:
                    out[k] = int(v)
                except ValueError:
                    pass
    except OSError:
        pass
    return out


def write(directory: str, name: str, value, field: str) -> None:
    """Write ``value`` to ``directory/name`` in one write(2); raise CgroupError naming ``field``."""
    write_each(directory, ((name, value),), field)


def write_each(directory: str, writes, field: str) -> None:
    """``write`` for each ``(name, value)`` in order, one write(2) each, a
    file opened once for consecutive writes to it (the devices rules: a
    dozen lines to devices.allow, each its own write as the kernel wants,
    without a dozen opens)."""
    fd, open_name, path = -1, None, ""
    try:
        for name, value in writes:
            if name != open_name:
                open_name = None
                if fd >= 0:
                    os.close(fd)
                    fd = -1
                path = os.path.join(directory, name)
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
                except OSError as e:
                    if e.errno == errno.ENOENT:
                        raise CgroupError(
                            f"{field}: {path} does not exist (controller not available or not enabled)"
                        ) from None
                    raise CgroupError(f"{field}: open {path}: {e.strerror}") from None
                open_name = name
            try:
                os.write(fd, str(value).encode())
            except OSError as e:
                raise CgroupError(f"{field}: writing {str(value)!r} to {path}: {e.strerror}") from None
    finally:
        if fd >= 0:
            os.close(fd)


def procs(directory: str) -> list[int]:
    try:
        return [int(x) for x in os.read_file(os.path.join(directory, "cgroup.procs")).split()]
    except OSError:
        return []


def tree(directory: str, deepest_first: bool = False) -> list[str]:
    """``directory`` and the directories below it, parents first (or the
    deepest first), symlinks not followed; a directory that cannot be listed
    is left out with what is below it (as ``os.walk`` without ``onerror``,
    which would import ``os`` on every ``delete``)."""
    try:
        with os.scandir(directory) as entries:
            subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    below = [d for sub in subdirs for d in tree(sub, deepest_first)]
    return below + [directory] if deepest_first else [directory] + below


def procs_recursive(directory: str) -> list[int]:
    seen: list[int] = []
    for d in tree(directory):
        for pid in procs(d):
            if pid not in seen:
                seen.append(pid)
    return seen


def rmdir_tree(directory: str, timeout: float = 2.0) -> None:
    """Remove ``directory`` and its sub-cgroups, deepest first.

    cgroup dirs cannot be removed while a process (even a zombie being reaped)
    is in them: EBUSY is retried until ``timeout``; a missing dir is success.
    """
    try:
        # the common case, a cgroup without sub-cgroups: one rmdir, no listing
        os.rmdir(directory)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass  # sub-cgroups (ENOTEMPTY) or a process still leaving (EBUSY)
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            subdirs = tree(directory, deepest_first=True)
        except OSError:
            subdirs = []
        last_error = None
        for d in subdirs:
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as e:
                last_error = e
        if not os.path.isdir(directory):
            return
        if time.monotonic() >= deadline:
            why = last_error.strerror if last_error else "still present"
            raise CgroupError(f"cannot remove cgroup {directory}: {why}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def own_cgroups(path: str = "/proc/self/cgroup") -> dict[str, str]:
    """controller -> cgroup path of this process; v2's line is under key ""."""
    from pyrunc.linux import procfs

    out = {}
    for _hid, controllers, cgpath in procfs.parse_cgroup(procfs.read_text(path)):
        if not controllers:
            out[""] = cgpath
            continue
        for c in controllers.split(","):
            out[c] = cgpath
    return out
