"""The container's filesystem: a declarative mount plan, then its execution.

``plan(config, ...)`` turns the config into an ordered list of operations
(``Op`` subclasses) without touching the system: it is pure, unit-tested
and printed with ``--debug``.  ``execute(ops, ctx)`` runs them in the init,
in the container's new mount namespace, before ``pivot_root``.

Safety, by construction rather than by special cases (docs/security.md):
- every path inside the rootfs is resolved once, from an fd of the rootfs,
  with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), and missing
  components are created fd-relative (mkdirat/mknodat), so symlinks in the
  image can never point a mount, mkdir or mknod at the host;
- mounts target that fd (``/proc/self/fd/N`` or move_mount on the fd), never
  a path string that could be swapped between check and use;
- bind mounts are built detached (open_tree), given their flags with
  mount_setattr, then attached with move_mount;
- /proc and /sys must be real directories; nothing but proc may be mounted
  on /proc and only the lxcfs-style allow-list below it;
- the null device used for masking is verified to be char 1:3 by fstat.
"""

import os
import stat

from .config.semantic import clean_path  # one normalisation for validation and mounts
from .linux import syscalls as sc
from .errors import ConfigError, StageError
from .linux import procfs

RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS

# What may be mounted below /proc (lxcfs and friends), as runc allows.
PROC_MOUNT_ALLOWLIST = frozenset((
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/sys/kernel/ns_last_pid",
    "/proc/sys/crypto/fips_enabled",
))

DEFAULT_DEVICES = (  # name, major, minor
    ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
    ("urandom", 1, 9), ("tty", 5, 0),
)
DEFAULT_SYMLINKS = (
    ("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"), ("/proc/self/fd/2", "stderr"),
)

MS_TO_ATTR = (
    (sc.MS_RDONLY, sc.MOUNT_ATTR_RDONLY), (sc.MS_NOSUID, sc.MOUNT_ATTR_NOSUID),
    (sc.MS_NODEV, sc.MOUNT_ATTR_NODEV), (sc.MS_NOEXEC, sc.MOUNT_ATTR_NOEXEC),
    (sc.MS_NOSYMFOLLOW, sc.MOUNT_ATTR_NOSYMFOLLOW), (sc.MS_NODIRATIME, sc.MOUNT_ATTR_NODIRATIME),
)


# --- operations ------------------------------------------------------------
class Op:
    """One step of the plan.  ``describe()`` is what --debug logs."""

    def describe(self):
        return type(self).__name__

    def run(self, ctx):
        raise NotImplementedError

    def held_fds(self):
        """Fds this step holds from before the fork (the stages keep them)."""
        return ()


class PrepareRoot(Op):
    """Set the propagation of the new mount namespace's tree (rslave by
    default: host mounts still propagate in, nothing propagates out), make
    the mount holding the rootfs private if it is shared (pivot_root refuses
    a shared parent, and the bind below must not propagate to the host),
    then make the rootfs a mount point of its own.  ``pivot`` applies a
    shared/slave/unbindable rootfsPropagation again to the new "/"."""

    def __init__(self, propagation):
        self.propagation = propagation

    def describe(self):
        return f"root propagation {self.propagation:#x}; bind rootfs onto itself"

    def run(self, ctx):
        # unbindable would forbid the rootfs bind below: isolate with the
        # default now, pivot() makes the new root unbindable
        prop = self.propagation
        if prop & sc.MS_UNBINDABLE:
            prop = sc.MS_SLAVE | sc.MS_REC
        sc.mount(None, "/", None, prop, None)
        parent = _mount_point_of(ctx.rootfs)
        if parent is not None and parent[1]:
            sc.mount(None, parent[0], None, sc.MS_PRIVATE, None)
        sc.mount(ctx.rootfs, ctx.rootfs, None, sc.MS_BIND | sc.MS_REC, None)
        ctx.open_rootfs()


def _mount_point_of(path):
    """(mount point, is shared) of the mount ``path`` is on (longest prefix
    in our mountinfo), or None."""
    path = os.path.realpath(path)
    best = None
    for m in procfs.mounts():
        point = m["mountpoint"]
        if path == point or path.startswith(point.rstrip("/") + "/"):
            if best is None or len(point) >= len(best[0]):
                best = (point, any(x.startswith("shared:") for x in m["optional"]))
    return best


class FsMount(Op):
    """Mount a filesystem (proc, sysfs, tmpfs, devpts, mqueue, overlay, ...)."""

    # A read-only sysfs that a user namespace may not mount (it needs the
    # network namespace to be its own) becomes a read-only recursive bind
    # of the host's /sys, as crun and runc >= 1.4 do (set by plan()).
    sysfs_fallback = False

    def __init__(self, m, no_symlinks=False, defer_ro=False):
        self.m = m
        self.no_symlinks = no_symlinks
        # a read-only /dev is mounted writable and made read-only by
        # DevReadonly once devices, sub-mounts and the console exist (as runc)
        self.defer_ro = defer_ro

    def describe(self):
        m = self.m
        late = " (read-only at the end)" if self.defer_ro else ""
        return f"mount {m.type} {m.source!r} on {m.destination} flags={m.flags:#x} data={m.data!r}{late}"

    def run(self, ctx):
        m = self.m
        flags = m.flags & ~sc.MS_RDONLY if self.defer_ro else m.flags
        fd = ctx.target(m.destination, directory=True, no_symlinks=self.no_symlinks)
        try:
            data = m.data
            if m.type in ("tmpfs", "devpts", "mqueue") and ctx.mount_label and "context=" not in data:
                data = ",".join(x for x in (data, f'context="{ctx.mount_label}"') if x)
            if m.tmpcopyup:
                ctx.tmpcopyup(m, fd, data, flags)
            else:
                try:
                    sc.mount(m.source or m.type, f"/proc/self/fd/{fd}", m.type, flags, data or None,
                             display=m.destination)
                except PermissionError:
                    if not self.sysfs_fallback:
                        raise
                    _bind_host_sys(fd, m.destination)
        finally:
            os.close(fd)
        ctx.after_mount(m)


def _bind_host_sys(target_fd, display):
    """The sysfs fallback: the host's /sys (still visible before pivot_root),
    cloned with its submounts (a user namespace may only take them all),
    read-only, nosuid, nodev, noexec throughout."""
    tree = sc.open_tree(sc.AT_FDCWD, "/sys", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC | sc.AT_RECURSIVE)
    try:
        sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE,
                         attr_set=sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV
                         | sc.MOUNT_ATTR_NOEXEC, display=display)
        sc.move_mount(tree, "", target_fd, "", sc.MOVE_MOUNT_F_EMPTY_PATH | sc.MOVE_MOUNT_T_EMPTY_PATH,
                      display=display)
    finally:
        os.close(tree)


def mount_attrs(flags, clear_flags):
    """MS_* flags set/cleared by the options -> (attr_set, attr_clr) for
    mount_setattr on one mount (binds and remounts change per-mount flags
    only; superblock flags such as sync or iversion do not apply to them)."""
    attr_set = attr_clr = 0
    for ms, attr in MS_TO_ATTR:
        if flags & ms:
            attr_set |= attr
        elif clear_flags & ms:
            attr_clr |= attr
    if flags & sc.MS_NOATIME:
        attr_set, attr_clr = attr_set | sc.MOUNT_ATTR_NOATIME, attr_clr | sc.MOUNT_ATTR__ATIME
    elif flags & sc.MS_STRICTATIME:
        attr_set, attr_clr = attr_set | sc.MOUNT_ATTR_STRICTATIME, attr_clr | sc.MOUNT_ATTR__ATIME
    elif flags & sc.MS_RELATIME or clear_flags & (sc.MS_NOATIME | sc.MS_STRICTATIME):
        attr_clr |= sc.MOUNT_ATTR__ATIME  # MOUNT_ATTR_RELATIME is 0
    return attr_set, attr_clr


class BindMount(Op):
    """A bind (or rbind) mount, built detached (open_tree), given its flags
    with mount_setattr, then attached with move_mount onto the target fd.

    An id-mapped bind is built in the host's user namespace by
    ``prepare_in_host`` (the kernel requires CAP_SYS_ADMIN over the source
    filesystem's user namespace to id-map it); the init only attaches it."""

    def __init__(self, m, idmap=None, early=False):
        self.m = m
        self.idmap = idmap  # None or (recursive, uid_maps, gid_maps)
        self.tree = -1      # detached tree made before the namespaces, if any
        self.userns_fd = -1  # the id-mapping's user namespace, while it is made
        # made by host root in the container's mount namespace (SourceOpener)
        self.early = early
        # A bind on /proc is accepted only of a procfs (the host's /proc into
        # a container sharing its pid namespace), as runc: anything else there
        # would fake /proc for the LSM and masking steps (CVE-2019-16884).
        self.on_proc = m.destination == "/proc"

    def held_fds(self):
        return (self.tree,) if self.tree >= 0 else ()

    def describe(self):
        m = self.m
        idm = f" idmap={self.idmap}" if self.idmap else ""
        return f"{'rbind' if m.recursive else 'bind'} {m.source} on {m.destination} flags={m.flags:#x}{idm}"

    def source_path(self, bundle):
        m = self.m
        return m.source if os.path.isabs(m.source) else os.path.join(bundle, m.source)

    def make_tree(self, bundle, userns_fd=-1, slave=False):
        """The detached tree of the source.  ``slave``: for a clone made in
        the host's mount namespace, whose shared mounts it would otherwise
        join as a peer (the container's mounts below it would appear on the
        host); binds made in the container's namespace are slaves already."""
        m = self.m
        src = self.source_path(bundle)
        try:
            os.stat(src)
        except OSError as e:
            raise StageError(f"mount {m.destination}: source {m.source}: {e.strerror}") from None
        flags = sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC | (sc.AT_RECURSIVE if m.recursive else 0)
        tree = sc.open_tree(sc.AT_FDCWD, src, flags)
        try:
            if self.on_proc and sc.fstatfs_type(tree) != sc.PROC_SUPER_MAGIC:
                raise StageError(f"mount {m.source} on /proc: /proc cannot be mounted "
                                 "because it is not of type proc")
            if slave:
                sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH | (sc.AT_RECURSIVE if m.recursive else 0),
                                 propagation=sc.MS_SLAVE, display=m.destination)
            if userns_fd >= 0:
                rec = sc.AT_RECURSIVE if self.idmap[0] else 0
                sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH | rec, sc.MOUNT_ATTR_IDMAP,
                                 userns_fd=userns_fd, display=m.destination)
            attr_set, attr_clr = mount_attrs(m.flags, m.clear_flags)
            if attr_set or attr_clr:
                sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH, attr_set, attr_clr,
                                 display=m.destination)
            if m.rec_attr_set or m.rec_attr_clr:
                sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE, m.rec_attr_set,
                                 m.rec_attr_clr, display=m.destination)
        except BaseException:
            os.close(tree)
            raise
        return tree

    def run(self, ctx):
        m = self.m
        tree, self.tree = self.tree, -1
        if tree < 0:
            tree = self.make_tree(ctx.bundle)
        try:
            is_dir = stat.S_ISDIR(os.fstat(tree).st_mode)
            fd = ctx.target(m.destination, directory=is_dir, no_symlinks=self.on_proc)
            try:
                sc.move_mount(tree, "", fd, "", sc.MOVE_MOUNT_F_EMPTY_PATH | sc.MOVE_MOUNT_T_EMPTY_PATH,
                              display=m.destination)
            finally:
                os.close(fd)
        finally:
            os.close(tree)
        ctx.after_mount(m, attrs_done=True)


class Remount(Op):
    """``remount``: change the flags of what is already mounted at the
    destination (per-mount flags with mount_setattr; filesystem data, if
    any, with a MS_REMOUNT of the superblock)."""

    def __init__(self, m):
        self.m = m

    def describe(self):
        m = self.m
        return f"remount {m.destination} flags={m.flags:#x} data={m.data!r}"

    def run(self, ctx):
        m = self.m
        fd = ctx.target(m.destination, create=False)
        try:
            if m.data:
                sb_flags = m.flags & (sc.MS_RDONLY | sc.MS_SYNCHRONOUS | sc.MS_DIRSYNC
                                      | sc.MS_LAZYTIME | sc.MS_I_VERSION | sc.MS_SILENT)
                sc.mount(None, f"/proc/self/fd/{fd}", None, sc.MS_REMOUNT | sb_flags, m.data,
                         display=m.destination)
            attr_set, attr_clr = mount_attrs(m.flags, m.clear_flags)
            if attr_set or attr_clr:
                sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH, attr_set, attr_clr, display=m.destination)
        finally:
            os.close(fd)
        ctx.after_mount(m)


class CgroupMount(Op):
    """``type: cgroup``: the container's own cgroups, read-only by default.

    cgroup v2: a fresh cgroup2 mount with a cgroup namespace (it shows the
    namespace root), else a bind of the container's cgroup directory.
    cgroup v1: a tmpfs with one entry per hierarchy, each a fresh mount (with
    a cgroup namespace) or a bind of the container's directory, plus the
    comount symlinks (cpu -> cpu,cpuacct)."""

    def __init__(self, m):
        self.m = m

    def describe(self):
        return f"cgroup mount on {self.m.destination}"

    def run(self, ctx):
        m = self.m
        flags = m.flags & ~sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
        ro = bool(m.flags & sc.MS_RDONLY)
        hierarchies = ctx.cgroup_hierarchies()
        if hierarchies is None:  # pure v2
            fd = ctx.target(m.destination, directory=True)
            try:
                if ctx.new_cgroupns:
                    try:
                        sc.mount("cgroup2", f"/proc/self/fd/{fd}", "cgroup2",
                                 flags | (sc.MS_RDONLY if ro else 0), None, display=m.destination)
                    except OSError as e:
                        # A user namespace may be refused a cgroup2 mount
                        # (EPERM, EBUSY: seen under a read-only /sys bound from
                        # the host, the rootless spec's): bind the directory
                        # the cgroup namespace is rooted at instead, which
                        # shows the same tree (runc falls back to a bind too).
                        if e.errno not in (1, 16) or not ctx.v2_dir:  # EPERM, EBUSY
                            raise
                        self._bind(ctx.v2_dir, fd, ro, m.destination)
                else:
                    self._bind(ctx.v2_dir, fd, ro, m.destination)
            finally:
                os.close(fd)
            return
        fd = ctx.target(m.destination, directory=True)
        try:
            sc.mount("tmpfs", f"/proc/self/fd/{fd}", "tmpfs", flags, "mode=755",
                     display=m.destination)
        finally:
            os.close(fd)
        for name, options, fstype, host_dir in hierarchies:
            dest = m.destination.rstrip("/") + "/" + name
            sub = ctx.target(dest, directory=True)
            try:
                if ctx.new_cgroupns:
                    sc.mount("cgroup", f"/proc/self/fd/{sub}", fstype,
                             flags | (sc.MS_RDONLY if ro else 0),
                             options if fstype == "cgroup" else None, display=dest)
                else:
                    self._bind(host_dir, sub, ro, dest)
            finally:
                os.close(sub)
            if "," in name:
                for alias in name.split(","):
                    if alias.startswith("name="):
                        continue
                    pfd = ctx.target(m.destination, directory=True)
                    try:
                        os.symlink(name, alias, dir_fd=pfd)
                    except FileExistsError:
                        pass
                    finally:
                        os.close(pfd)
        if ro:
            fd = ctx.target(m.destination, directory=True)
            try:
                sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH, sc.MOUNT_ATTR_RDONLY, display=m.destination)
            finally:
                os.close(fd)

    @staticmethod
    def _bind(host_dir, target_fd, ro, display):
        tree = sc.open_tree(sc.AT_FDCWD, host_dir, sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC)
        try:
            # a bind keeps the host mount's flags: a host may mount its cgroup
            # hierarchy without nosuid/nodev/noexec, the container never gets that
            attrs = sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV | sc.MOUNT_ATTR_NOEXEC
            sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH,
                             attrs | (sc.MOUNT_ATTR_RDONLY if ro else 0), display=display)
            sc.move_mount(tree, "", target_fd, "", sc.MOVE_MOUNT_F_EMPTY_PATH | sc.MOVE_MOUNT_T_EMPTY_PATH,
                          display=display)
        finally:
            os.close(tree)


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
                make_device(ctx, dev, name, "c", major, minor, 0o666, 0, 0, self.bind_from_host,
                            replace=True)
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
                make_device(ctx, pfd, name, d.type, d.major, d.minor,
                            0o666 if d.file_mode is None else d.file_mode,
                            d.uid or 0, d.gid or 0, self.bind_from_host, display=path)
            finally:
                os.close(pfd)


class MaskPaths(Op):
    """``maskedPaths``: files get the verified null device, directories a
    read-only empty tmpfs; missing paths are skipped."""

    def __init__(self, paths):
        self.paths = paths

    def describe(self):
        return "mask " + " ".join(self.paths)

    def run(self, ctx):
        null = ctx.null_device()
        for path in self.paths:
            try:
                fd = ctx.target(path, create=False)
            except FileNotFoundError:
                continue
            try:
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    sc.mount("tmpfs", f"/proc/self/fd/{fd}", "tmpfs", sc.MS_RDONLY,
                             _label_data(ctx, "size=0,mode=0755"), display=path)
                else:
                    tree = sc.open_tree(null, "", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC
                                        | sc.AT_EMPTY_PATH)
                    try:
                        sc.move_mount(tree, "", fd, "", sc.MOVE_MOUNT_F_EMPTY_PATH
                                      | sc.MOVE_MOUNT_T_EMPTY_PATH, display=path)
                    finally:
                        os.close(tree)
            finally:
                os.close(fd)


class ReadonlyPaths(Op):
    """``readonlyPaths``: a recursive read-only bind of each path onto itself
    (only read-only, as runc: a read-only /usr must stay executable)."""

    def __init__(self, paths):
        self.paths = paths

    def describe(self):
        return "read-only " + " ".join(self.paths)

    def run(self, ctx):
        for path in self.paths:
            try:
                fd = ctx.target(path, create=False)
            except FileNotFoundError:
                continue
            try:
                tree = sc.open_tree(fd, "", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC
                                    | sc.AT_RECURSIVE | sc.AT_EMPTY_PATH)
                try:
                    sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE,
                                     sc.MOUNT_ATTR_RDONLY, display=path)
                    sc.move_mount(tree, "", fd, "", sc.MOVE_MOUNT_F_EMPTY_PATH
                                  | sc.MOVE_MOUNT_T_EMPTY_PATH, display=path)
                finally:
                    os.close(tree)
            finally:
                os.close(fd)


class DevReadonly(Op):
    """The deferred read-only flag of a ``ro`` /dev mount: applied after the
    default devices, ``linux.devices``, the mounts below /dev and the
    console exist (run by ``finish``, after the console), as runc does."""

    late = True

    def describe(self):
        return "read-only /dev"

    def run(self, ctx):
        fd = ctx.target("/dev", create=False, no_symlinks=True)
        try:
            sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH, sc.MOUNT_ATTR_RDONLY, display="/dev")
        finally:
            os.close(fd)


class ReadonlyRoot(Op):
    def describe(self):
        return "read-only root"

    def run(self, ctx):
        sc.mount_setattr(ctx.rootfs_fd, "", sc.AT_EMPTY_PATH, sc.MOUNT_ATTR_RDONLY, display="/")


def _copy_tree(src_dir, dst_dir):
    """Copy the entries of directory fd ``src_dir`` into directory fd
    ``dst_dir`` (no symlink is ever followed on either side)."""
    nofollow = os.O_NOFOLLOW | os.O_CLOEXEC
    for name in os.listdir(src_dir):
        st = os.stat(name, dir_fd=src_dir, follow_symlinks=False)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(name, 0o700, dir_fd=dst_dir)
            s = os.open(name, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=src_dir)
            try:
                d = os.open(name, os.O_RDONLY | os.O_DIRECTORY | nofollow, dir_fd=dst_dir)
                try:
                    _copy_tree(s, d)
                finally:
                    os.close(d)
            finally:
                os.close(s)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(name, dir_fd=src_dir), name, dir_fd=dst_dir)
        elif stat.S_ISREG(st.st_mode):
            s = os.open(name, os.O_RDONLY | nofollow, dir_fd=src_dir)
            try:
                d = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o600,
                            dir_fd=dst_dir)
                try:
                    while True:
                        chunk = os.read(s, 1 << 20)
                        if not chunk:
                            break
                        os.write(d, chunk)
                finally:
                    os.close(d)
            finally:
                os.close(s)
        else:  # devices, fifos, sockets
            os.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst_dir)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(name, mode, dir_fd=dst_dir)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False)


def _label_data(ctx, data):
    if ctx.mount_label:
        return f'{data},context="{ctx.mount_label}"'
    return data


def _symlink(target, name, dirfd):
    try:
        os.symlink(target, name, dir_fd=dirfd)
    except FileExistsError:
        pass


DEVICE_KINDS = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def make_device(ctx, dirfd, name, dtype, major, minor, mode, uid, gid, bind_from_host,
                display=None, replace=False):
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
            raise StageError(f"linux.devices: {display}: a file that is not this device "
                             "already exists at that path")
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
                raise StageError(f"linux.devices: {display}: the host's {display} is not "
                                 f"device {dtype} {major}:{minor}")
            os.mknod(name, stat.S_IFREG | 0o600, dir_fd=dirfd)
            tfd = sc.openat2(dirfd, name, os.O_PATH, sc.RESOLVE_BENEATH | sc.RESOLVE_NO_SYMLINKS)
            try:
                tree = sc.open_tree(host, "", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC
                                    | sc.AT_EMPTY_PATH)
                try:
                    sc.move_mount(tree, "", tfd, "", sc.MOVE_MOUNT_F_EMPTY_PATH
                                  | sc.MOVE_MOUNT_T_EMPTY_PATH, display=display)
                finally:
                    os.close(tree)
            finally:
                os.close(tfd)
        finally:
            os.close(host)
        return
    os.mknod(name, kind | (mode & 0o7777), rdev, dir_fd=dirfd)
    # the init runs with umask 0, so the node already has exactly ``mode``
    os.chown(name, uid, gid, dir_fd=dirfd, follow_symlinks=False)


class PlanContext:
    """What the operations need at run time (in the init, pre-pivot)."""

    def __init__(self, rootfs, bundle, mount_label="", new_cgroupns=False, self_cgroups=None,
                 cgroup_dirs=None):
        self.rootfs = rootfs
        self.bundle = bundle
        self.mount_label = mount_label
        self.new_cgroupns = new_cgroupns
        self.self_cgroups = self_cgroups or ""
        # controller -> the container's cgroup dir, when the init is not (yet)
        # in its cgroups while the mounts are made (late join, see init.py)
        self.cgroup_dirs = cgroup_dirs
        self.rootfs_fd = -1
        self._null = -1
        self.v2_dir = None

    def open_rootfs(self):
        self.rootfs_fd = os.open(self.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def close(self):
        for fd in (self.rootfs_fd, self._null):
            if fd >= 0:
                os.close(fd)
        self.rootfs_fd = self._null = -1

    def target(self, path, directory=True, create=True, no_symlinks=False):
        """An O_PATH fd of ``path`` inside the rootfs, creating what is
        missing (directories, or an empty file when ``directory`` is false)."""
        path = clean_path(path)
        rel = path.lstrip("/") or "."
        resolve = RESOLVE | (sc.RESOLVE_NO_SYMLINKS if no_symlinks else 0)
        try:
            return sc.openat2(self.rootfs_fd, rel, os.O_PATH, resolve, display=path)
        except OSError as e:
            if e.errno == 40 and no_symlinks:  # ELOOP
                raise StageError(f"{path} must be mounted on ordinary directory") from None
            if e.errno != 2 or not create:
                if e.errno == 2:
                    raise FileNotFoundError(2, "no such file", path) from None
                raise
        return self._create(rel.split("/"), directory, resolve, path)

    def _create(self, parts, directory, resolve, display):
        """Create the missing components of ``parts`` (relative to the
        rootfs) and return an O_PATH fd of the result.

        A dangling symlink on the way is followed *inside the root*, as runc
        does (a destination ``/data -> /srv/data`` creates ``/srv/data``):
        its target replaces the component (an absolute one from the root, a
        relative one from the symlink's directory) and creation goes on from
        there.  Every lookup is still openat2(RESOLVE_IN_ROOT) from the rootfs
        fd and every creation is mkdirat/mknodat on a parent fd, so neither
        the symlink nor one swapped in meanwhile can lead outside the root."""
        links = steps = 0
        i = 0
        while i < len(parts):
            steps += 1
            if steps > 4096:  # a directory removed as fast as it is made
                raise OSError(40, "cannot create the mount point", display)
            sub = "/".join(parts[: i + 1])
            try:
                os.close(sc.openat2(self.rootfs_fd, sub, os.O_PATH, resolve, display=display))
                i += 1
                continue
            except OSError as e:
                if e.errno != 2:
                    raise
            parent = sc.openat2(self.rootfs_fd, "/".join(parts[:i]) or ".",
                                os.O_PATH | os.O_DIRECTORY, resolve, display=display)
            try:
                try:
                    link = os.readlink(parts[i], dir_fd=parent)
                except OSError:  # not a symlink (or gone): create it
                    link = None
                    if i == len(parts) - 1 and not directory:
                        os.mknod(parts[i], stat.S_IFREG | 0o755, dir_fd=parent)
                    else:
                        os.mkdir(parts[i], 0o755, dir_fd=parent)
            except FileExistsError:
                link = None  # made meanwhile (maybe a symlink): look again
            finally:
                os.close(parent)
            if link is None:
                continue
            links += 1
            if resolve & sc.RESOLVE_NO_SYMLINKS:
                raise StageError(f"{display} must be mounted on ordinary directory")
            if links > 40:
                raise OSError(40, "Too many levels of symbolic links", display)
            rest = [x for x in link.split("/") if x]
            parts = (rest if link.startswith("/") else parts[:i] + rest) + parts[i + 1:]
            if not parts:
                parts = ["."]
            i = 0
        return sc.openat2(self.rootfs_fd, "/".join(parts), os.O_PATH, resolve, display=display)

    def after_mount(self, m, attrs_done=False):
        """Propagation and recursive attributes, applied to the new mount
        (binds got their attributes before they were attached)."""
        rec_attrs = not attrs_done and (m.rec_attr_set or m.rec_attr_clr)
        if not (m.propagation or rec_attrs):
            return
        fd = self.target(m.destination, create=False)
        try:
            for prop in m.propagation:
                rec = sc.AT_RECURSIVE if prop & sc.MS_REC else 0
                sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH | rec,
                                 propagation=prop & ~sc.MS_REC, display=m.destination)
            if rec_attrs:
                sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE, m.rec_attr_set,
                                 m.rec_attr_clr, display=m.destination)
        finally:
            os.close(fd)

    def tmpcopyup(self, m, fd, data, flags=None):
        """Mount a tmpfs and copy the directory's original content into it
        (owners, modes, times, symlinks as symlinks; everything fd-relative
        and O_NOFOLLOW, so nothing in the image can redirect the copy)."""
        src = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            sc.mount("tmpfs", f"/proc/self/fd/{fd}", "tmpfs", m.flags if flags is None else flags,
                     data or None, display=m.destination)
            new = self.target(m.destination, create=False)
            try:
                dst = os.open(f"/proc/self/fd/{new}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            finally:
                os.close(new)
            try:
                st = os.fstat(src)
                _copy_tree(src, dst)
                os.chown(dst, st.st_uid, st.st_gid)
                os.chmod(dst, stat.S_IMODE(st.st_mode))
            finally:
                os.close(dst)
        finally:
            os.close(src)

    def null_device(self):
        """The host's /dev/null, verified to be char device 1:3."""
        if self._null < 0:
            fd = os.open("/dev/null", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
            st = os.fstat(fd)
            if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
                os.close(fd)
                raise StageError("/dev/null is not the null device (1:3)")
            self._null = fd
        return self._null

    def cgroup_hierarchies(self):
        """None on a pure cgroup v2 host; else [(name, options, fstype, host_dir)]
        for each v1 hierarchy mounted under /sys/fs/cgroup (and the v2
        'unified' one of a hybrid host), host_dir being this process's cgroup
        in it (the init is already in the container's cgroups)."""
        mounts = [(m["mountpoint"], m["root"], m["fstype"], m["super_options"])
                  for m in procfs.mounts()
                  if m["mountpoint"].startswith("/sys/fs/cgroup")
                  and m["fstype"] in ("cgroup", "cgroup2")]
        own = {ctrls: path for _, ctrls, path in procfs.parse_cgroup(self.self_cgroups)}
        dirs = self.cgroup_dirs
        if any(p == "/sys/fs/cgroup" and t == "cgroup2" for p, _, t, _ in mounts):
            for p, root, t, _ in mounts:
                if p == "/sys/fs/cgroup":
                    self.v2_dir = (dirs or {}).get("") or _join_cgroup(p, root, own.get("", "/"))
            return None
        out = []
        for point, root, fstype, opts in mounts:
            name = point[len("/sys/fs/cgroup/"):]
            if not name or "/" in name:
                continue
            if fstype == "cgroup2":
                out.append((name, None, "cgroup2", (dirs or {}).get("")
                            or _join_cgroup(point, root, own.get("", "/"))))
                continue
            ctrl_opts = [o for o in opts if o not in ("rw", "ro", "relatime") and
                         not o.startswith("release_agent") and o not in ("nosuid", "nodev", "noexec")]
            key = ",".join(o for o in ctrl_opts)
            path = own.get(key)
            if path is None:
                for k, v in own.items():
                    if set(k.split(",")) == set(ctrl_opts):
                        path = v
                        break
            known = [dirs[c] for c in ctrl_opts if dirs and c in dirs]
            host_dir = known[0] if known else _join_cgroup(point, root, path or "/")
            out.append((name, ",".join(ctrl_opts), "cgroup", host_dir))
        return out


def _join_cgroup(point, root, path):
    if root != "/" and path.startswith(root):
        path = path[len(root):]
    return point + "/" + path.strip("/") if path.strip("/") else point


# --- planning --------------------------------------------------------------
ROOTFS_PROPAGATION = {
    "": sc.MS_SLAVE | sc.MS_REC, "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}
# Mount points that must be real directories of the image: a symlink there
# would make later steps (masking, device nodes, procfs writes) act on
# whatever it points to (CVE-2019-19921, CVE-2023-27561, CVE-2026-41579).
NO_SYMLINK_DESTINATIONS = frozenset(("/proc", "/sys", "/dev"))


def check_plan(cfg):
    """The config's rules the mount plan enforces (ConfigError), without
    anything of the host: what create refuses, for ``pyrunc validate``."""
    plan(cfg, in_userns=cfg.namespace("user") is not None)


def plan(cfg, *, in_userns, host_devices=None):
    """The ordered mount plan for ``cfg`` (a config.model.Config).

    ``host_devices``: bind device nodes from the host instead of mknod
    (default: ``in_userns``; also true when the runtime itself is in a user
    namespace, where mknod is refused)."""
    if host_devices is None:
        host_devices = in_userns
    ops = []
    try:
        prop = ROOTFS_PROPAGATION[cfg.rootfs_propagation]
    except KeyError:
        raise ConfigError(f"config.json: linux.rootfsPropagation: {cfg.rootfs_propagation!r} "
                          "is not a propagation mode") from None
    # Applied to "/" of the new mount namespace, as runc does (default rslave:
    # host mounts still propagate in, nothing propagates back out).
    ops.append(PrepareRoot(prop))
    bind_dev = dev_ro = False
    # With a user namespace the bind sources are cloned by host root
    # (SourceOpener); not when joining a mount namespace, where the sources
    # are that namespace's paths and stay the init's to resolve.
    # Not for an unprivileged runtime: the helper's setns into the container's
    # mount namespace needs CAP_SYS_CHROOT where it runs, and with the
    # caller's uid it could open nothing the container's root cannot.
    early_binds = in_userns and os.geteuid() == 0 \
        and not any(ns.type == "mount" and ns.path for ns in cfg.namespaces)
    for i, m in enumerate(cfg.mounts):
        # conversion made it clean and absolute; a Mount made elsewhere gets
        # a clean copy (records are frozen)
        dest = clean_path(m.destination if m.destination.startswith("/") else "/" + m.destination)
        if dest != m.destination:
            m = m.replace(destination=dest)
        if dest == "/proc" and m.type != "proc" and not m.bind:
            raise ConfigError(f"config.json: mounts[{i}]: /proc cannot be mounted because it is not of type proc")
        if dest.startswith("/proc/") and dest not in PROC_MOUNT_ALLOWLIST:
            raise ConfigError(f"config.json: mounts[{i}]: {dest} cannot be mounted because it is inside /proc")
        if m.flags & sc.MS_REMOUNT:
            ops.append(Remount(m))
        elif m.bind:
            idmap = None
            if m.idmap:
                uid, gid = m.idmap["uid"], m.idmap["gid"]
                if not uid and not gid:
                    if not (in_userns and cfg.uid_mappings and cfg.gid_mappings):
                        raise ConfigError(f"config.json: mounts[{i}].options: idmap needs uidMappings "
                                          "and gidMappings or the container's user namespace")
                    uid = [(x.container_id, x.host_id, x.size) for x in cfg.uid_mappings]
                    gid = [(x.container_id, x.host_id, x.size) for x in cfg.gid_mappings]
                idmap = (m.idmap["recursive"], uid, gid)
            ops.append(BindMount(m, idmap, early=early_binds))
            if dest == "/dev":
                bind_dev = True
        elif m.type == "cgroup":
            ops.append(CgroupMount(m))
        else:
            defer_ro = dest == "/dev" and bool(m.flags & sc.MS_RDONLY)
            op = FsMount(m, no_symlinks=dest in NO_SYMLINK_DESTINATIONS, defer_ro=defer_ro)
            op.sysfs_fallback = m.type == "sysfs" and host_devices and bool(m.flags & sc.MS_RDONLY)
            ops.append(op)
            if defer_ro:
                dev_ro = True
    listed = {clean_path(d.path) for d in cfg.devices or ()}
    if not bind_dev:
        ops.append(SetupDev(bind_from_host=host_devices,
                            skip=[n for n, _, _ in DEFAULT_DEVICES if "/dev/" + n in listed]))
    if cfg.devices:
        ops.append(CreateDevices(cfg.devices, bind_from_host=host_devices, skip_ptmx=not bind_dev))
    if cfg.masked_paths:
        ops.append(MaskPaths(cfg.masked_paths))
    if cfg.readonly_paths:
        ops.append(ReadonlyPaths(cfg.readonly_paths))
    if dev_ro:
        ops.append(DevReadonly())
    return ops


def prepare_in_host(ops, bundle):
    """Run in the intermediate before it joins or creates any namespace:
    build the detached trees that only the host's user namespace may make
    (id-mapped binds), and start the helper that opens the other bind
    sources as host root (``SourceOpener``).  The init inherits the trees
    through fork."""
    early = []
    for op in ops:
        if not isinstance(op, BindMount) or op.tree >= 0:
            continue
        if op.idmap:
            # the id-mapping's user namespace is made here (it needs the
            # host's /proc to write its maps), before the helper is forked
            op.userns_fd = idmap_userns(op.idmap[1], op.idmap[2])
            if not op.early:  # no user namespace: cloned here, made a slave
                try:
                    op.tree = op.make_tree(bundle, op.userns_fd, slave=True)
                finally:
                    os.close(op.userns_fd)
                    op.userns_fd = -1
                continue
        if op.early:
            early.append(op)
    if early:
        _opener.start(early, bundle)


def collect_sources():
    """Run in the intermediate once it has its final mount namespace (after
    its unshare): the helper clones the bind sources there and hands the
    trees over.  Nothing to do when prepare_in_host started no helper."""
    _opener.collect()


class SourceOpener:
    """Bind sources in a container with a user namespace are cloned by host
    root, not by the container's root: a source that only host root can
    reach (below a 0700 directory of root's) works as with runc, whose
    parent opens the sources the same way.

    A helper forked before the intermediate enters any namespace keeps the
    host's credentials; once the intermediate has unshared its mount
    namespace, the helper joins that namespace (setns needs no more than
    being host root) and clones each source there with open_tree.  The
    clones are taken from the intermediate's copy of the mounts, which the
    kernel made in the container's user namespace: submounts of an rbind
    stay locked and shared mounts became slaves, exactly as if the
    container's root had made the bind (and as with runc).  The trees come
    back over a SOCK_SEQPACKET pair, one fd per message."""

    def __init__(self):
        self.pid = -1
        self.sock = None
        self.ops = ()

    def start(self, ops, bundle):
        import socket  # the runtime's own interpreter, before any namespace is entered
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            parent.close()
            self._helper(child, ops, bundle)  # never returns
        child.close()
        self.pid, self.sock, self.ops = pid, parent, ops

    @staticmethod
    def _helper(sock, ops, bundle):
        import socket
        code = 0
        try:
            if sock.recv(1) != b"1":
                os._exit(0)  # the intermediate gave up
            target = f"/proc/{os.getppid()}/ns/mnt"
            if os.readlink(target) != os.readlink("/proc/self/ns/mnt"):
                fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    sc.setns(fd, sc.CLONE_NEWNS, display="the container's mount namespace")
                finally:
                    os.close(fd)
            for i, op in enumerate(ops):
                tree = op.make_tree(bundle, op.userns_fd)
                socket.send_fds(sock, [str(i).encode()], [tree])
                os.close(tree)
            sock.send(b"done")
        except BaseException as e:  # noqa: BLE001 - reported to the intermediate
            code = 1
            msg = str(e) if isinstance(e, StageError) else (
                f"mount: bind source {e.filename or ''}: {e.strerror or e}" if isinstance(e, OSError)
                else f"{type(e).__name__}: {e}")
            try:
                sock.send(b"error " + msg.encode()[:4000])
            except OSError:
                pass
        os._exit(code)

    def collect(self):
        if self.sock is None:
            return
        import socket
        sock, self.sock = self.sock, None
        try:
            sock.send(b"1")
            while True:
                msg, fds, _, _ = socket.recv_fds(sock, 4096, 1)
                if fds:
                    self.ops[int(msg)].tree = fds[0]
                    continue
                if msg == b"done":
                    break
                if msg.startswith(b"error "):
                    raise StageError(msg[6:].decode(errors="replace"))
                raise StageError("mount: the helper opening the bind sources exited unexpectedly")
        finally:
            sock.close()
            os.waitpid(self.pid, 0)
            self.pid = -1
            for op in self.ops:
                if op.userns_fd >= 0:
                    os.close(op.userns_fd)
                    op.userns_fd = -1


_opener = SourceOpener()


def idmap_userns(uid_maps, gid_maps):
    """An fd of a new user namespace with these (containerID, hostID, size)
    maps, owned by a throwaway child: it unshares, we write its maps, open
    its ns file and let it exit (the namespace lives on through the fd)."""
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: unshare, say so, wait to be released
        code = 0
        try:
            os.close(ready_r)
            os.close(hold_w)
            sc.unshare(sc.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(hold_r, 1)
        except BaseException:  # noqa: BLE001 - the parent sees the closed pipe
            code = 1
        os._exit(code)
    os.close(ready_w)
    os.close(hold_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise StageError("id-mapped mount: cannot create a user namespace")
        for name, maps in (("uid_map", uid_maps), ("gid_map", gid_maps)):
            text = "".join(f"{c} {h} {n}\n" for c, h, n in maps)
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(ready_r)
        os.close(hold_w)
        os.waitpid(pid, 0)


def execute(ops, ctx, debug=None):
    """Run the plan, except the ``late`` steps (see ``finish``)."""
    for op in ops:
        if getattr(op, "late", False):
            continue
        if debug:
            debug(op.describe())
        op.run(ctx)


def finish(ops, ctx, debug=None):
    """The ``late`` steps: what must wait until the init set up the console
    (a read-only /dev still gets its /dev/console)."""
    for op in ops:
        if getattr(op, "late", False):
            if debug:
                debug(op.describe())
            op.run(ctx)


def pivot(rootfs, no_pivot=False, propagation=""):
    """Enter the rootfs: pivot_root (the old root is detached), or for roots
    on ramfs (--no-pivot) MS_MOVE + chroot, after detaching every mount
    that is not the rootfs, below it or above it (so the host's tree is not
    reachable by escaping the chroot).  Then a shared, slave or unbindable
    ``propagation`` (linux.rootfsPropagation) is applied to the new root
    (it could not be before: the rootfs' parent had to be private)."""
    os.chdir(rootfs)
    if no_pivot:
        _detach_outside(rootfs)
        sc.mount(rootfs, "/", None, sc.MS_MOVE, None)
        os.chroot(".")
    else:
        old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.pivot_root(".", ".")
            # The old root is now stacked on top of the new one.  Work on it
            # through its own fd (the cwd is still the new root: a recursive
            # change on "." would strip the container's own mounts of their
            # propagation): make it slave so the detach cannot propagate to
            # the host, then detach it.
            os.fchdir(old_root)
            sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC, None)
            sc.umount2(".", sc.MNT_DETACH)
        finally:
            os.close(old_root)
    os.chdir("/")
    flag = ROOTFS_PROPAGATION.get(propagation or "", 0)
    if propagation and not flag & sc.MS_PRIVATE:
        # Only the new "/" itself: PrepareRoot applied the recursive part of
        # an r-form before the mounts, and a mount's own propagation option
        # (rshared on a volume under rootfsPropagation rslave) must not be
        # overridden now (runc never re-applies it).  runbindable had no
        # earlier step (it would forbid the rootfs bind).
        sc.mount(None, "/", None, flag if flag & sc.MS_UNBINDABLE else flag & ~sc.MS_REC, None)


def _detach_outside(rootfs):
    """--no-pivot: lazily unmount every mount point outside ``rootfs``
    except its ancestors (which MS_MOVE needs), deepest first."""
    rootfs = os.path.realpath(rootfs).rstrip("/") or "/"
    points = {m["mountpoint"] for m in procfs.mounts()}
    for point in sorted(points, key=len, reverse=True):
        inside = point == rootfs or point.startswith(rootfs + "/")
        ancestor = point == "/" or rootfs.startswith(point.rstrip("/") + "/")
        if inside or ancestor:
            continue
        try:
            sc.mount(None, point, None, sc.MS_SLAVE | sc.MS_REC, None)
            sc.umount2(point, sc.MNT_DETACH)
        except OSError:
            pass  # already gone with a parent, or locked: stays hidden under the chroot
