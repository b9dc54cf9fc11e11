"""Device nodes: the default set and linux.devices, created (or bound from
the host in a user namespace) fd-relative in the container's /dev."""

from .. import lightos as os  # os's calls without importing os (lightos.py)
import stat
from ..config.semantic import clean_path  # one normalisation for validation and mounts
from ..errors import ConfigError, StageError
from ..linux import syscalls as sc
from .ops import Op


DEFAULT_DEVICES = (  # name, major, minor
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
)


DEFAULT_SYMLINKS = (
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
)


class SetupDev(Op):
    """Default device nodes, /dev symlinks, /dev/ptmx -> pts/ptmx.

    A default device that ``linux.devices`` also lists is left to
    CreateDevices, so the config's mode and owner win (as with runc)."""

    def __init__(self, bind_from_host, skip=()):
        self.bind_from_host = bind_from_host
        self.skip = frozenset(skip)

    def describe(self):
        return "default devices (" + ("bind from host" if self.bind_from_host else "mknod") + ")"

    def run(self, ctx):
        dev = ctx.target("/dev", directory=True, no_symlinks=True)
        try:
            for name, major, minor in DEFAULT_DEVICES:
                if name in self.skip:
                    continue
                make_device(ctx, dev, name, "c", major, minor, 0o666, 0, 0, self.bind_from_host, replace=True)
            for target, name in DEFAULT_SYMLINKS:
                _symlink(target, name, dev)
            if os.path.exists("/proc/kcore"):
                _symlink("/proc/kcore", "core", dev)
            try:
                os.unlink("ptmx", dir_fd=dev)
            except (FileNotFoundError, IsADirectoryError):
                pass
            _symlink("pts/ptmx", "ptmx", dev)
        finally:
            os.close(dev)


class CreateDevices(Op):
    """``linux.devices``: mknod (or bind from the host inside a user ns).

    The default devices they list are not made by SetupDev (the config's
    type, mode and owner win, as with runc); ``/dev/ptmx`` is skipped when
    the default setup runs: it stays the pts/ptmx symlink, as with runc.
    Another file at the path is an error (runc keeps it silently; replacing
    it would rewrite the image)."""

    def __init__(self, devices, bind_from_host, skip_ptmx=False):
        self.devices = devices
        self.bind_from_host = bind_from_host
        self.skip_ptmx = skip_ptmx

    def describe(self):
        return "devices " + ", ".join(d.path for d in self.devices)

    def run(self, ctx):
        for d in self.devices:
            path = clean_path(d.path)
            if path == "/dev/ptmx" and self.skip_ptmx:
                continue
            parent, name = path.rsplit("/", 1)
            pfd = ctx.target(parent or "/", directory=True)
            try:
                make_device(
                    ctx,
                    pfd,
                    name,
                    d.type,
                    d.major,
                    d.minor,
                    0o666 if d.file_mode is None else d.file_mode,
                    d.uid or 0,
                    d.gid or 0,
                    self.bind_from_host,
                    display=path,
                )
            finally:
                os.close(pfd)


def _symlink(target, name, dirfd):
    try:
        os.symlink(target, name, dir_fd=dirfd)
    except FileExistsError:
        pass


DEVICE_KINDS = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def make_device(ctx, dirfd, name, dtype, major, minor, mode, uid, gid, bind_from_host, display=None, replace=False):
    """Create device ``name`` in directory fd ``dirfd``: mknod with the
    mode and owner, or (in a user namespace, where mknod is refused) a bind
    of the host's node onto an empty file.  An existing file that is not
    that device is an error, or with ``replace`` (the default devices) is
    removed first."""
    display = display or f"/dev/{name}"
    kind = DEVICE_KINDS.get(dtype)
    if kind is None:
        raise ConfigError(f"config.json: linux.devices: {display}: unknown type {dtype!r}")
    rdev = os.makedev(major, minor) if kind != stat.S_IFIFO else 0
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    if st is not None:
        same = stat.S_IFMT(st.st_mode) == kind and (kind == stat.S_IFIFO or st.st_rdev == rdev)
        if same:
            return
        if not replace:
            raise StageError(f"linux.devices: {display}: a file that is not this device already exists at that path")
        if stat.S_ISDIR(st.st_mode):
            raise StageError(f"{display}: is a directory, not a device")
        os.unlink(name, dir_fd=dirfd)
    if bind_from_host and kind != stat.S_IFIFO:
        # In a user namespace mknod is not allowed: bind the host's node,
        # after checking it is the requested device.
        host = os.open(display, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            hst = os.fstat(host)
            if stat.S_IFMT(hst.st_mode) != kind or hst.st_rdev != rdev:
                raise StageError(
                    f"linux.devices: {display}: the host's {display} is not device {dtype} {major}:{minor}"
                )
            os.mknod(name, stat.S_IFREG | 0o600, dir_fd=dirfd)
            tfd = sc.openat2(dirfd, name, os.O_PATH, sc.RESOLVE_BENEATH | sc.RESOLVE_NO_SYMLINKS)
            try:
                sc.bind_fd(host, tfd, display=display)
            finally:
                os.close(tfd)
        finally:
            os.close(host)
        return
    os.mknod(name, kind | (mode & 0o7777), rdev, dir_fd=dirfd)
    # the init runs with umask 0, so the node already has exactly ``mode``
    os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)
