"""The mount operations of the plan (``Op`` subclasses): each one is a
record the plan makes and ``run(ctx)`` the init calls in the container's
mount namespace, on fds of the rootfs (rootfs/__init__.py: the rules)."""

from .. import lightos as os  # os's calls without importing os (lightos.py)
import stat
from ..errors import StageError
from ..linux import procfs
from ..linux import syscalls as sc


MS_TO_ATTR = (
    (sc.MS_RDONLY, sc.MOUNT_ATTR_RDONLY),
    (sc.MS_NOSUID, sc.MOUNT_ATTR_NOSUID),
    (sc.MS_NODEV, sc.MOUNT_ATTR_NODEV),
    (sc.MS_NOEXEC, sc.MOUNT_ATTR_NOEXEC),
    (sc.MS_NOSYMFOLLOW, sc.MOUNT_ATTR_NOSYMFOLLOW),
    (sc.MS_NODIRATIME, sc.MOUNT_ATTR_NODIRATIME),
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
    for m in procfs.mounts(where=lambda point: path == point or path.startswith(point.rstrip("/") + "/")):
        point = m["mountpoint"]
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
                    sc.mount(
                        m.source or m.type, f"/proc/self/fd/{fd}", m.type, flags, data or None, display=m.destination
                    )
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
        sc.mount_setattr(
            tree,
            "",
            sc.AT_EMPTY_PATH | sc.AT_RECURSIVE,
            attr_set=sc.MOUNT_ATTR_RDONLY | sc.MOUNT_ATTR_NOSUID | sc.MOUNT_ATTR_NODEV | sc.MOUNT_ATTR_NOEXEC,
            display=display,
        )
        sc.move_mount(tree, "", target_fd, "", sc.MOVE_MOUNT_F_EMPTY_PATH | sc.MOVE_MOUNT_T_EMPTY_PATH, display=display)
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
        self.tree = -1  # detached tree made before the namespaces, if any
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
                raise StageError(f"mount {m.source} on /proc: /proc cannot be mounted because it is not of type proc")
            if slave:
                sc.mount_setattr(
                    tree,
                    "",
                    sc.AT_EMPTY_PATH | (sc.AT_RECURSIVE if m.recursive else 0),
                    propagation=sc.MS_SLAVE,
                    display=m.destination,
                )
            if userns_fd >= 0:
                rec = sc.AT_RECURSIVE if self.idmap[0] else 0
                sc.mount_setattr(
                    tree, "", sc.AT_EMPTY_PATH | rec, sc.MOUNT_ATTR_IDMAP, userns_fd=userns_fd, display=m.destination
                )
            attr_set, attr_clr = mount_attrs(m.flags, m.clear_flags)
            if attr_set or attr_clr:
                sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH, attr_set, attr_clr, display=m.destination)
            if m.rec_attr_set or m.rec_attr_clr:
                sc.mount_setattr(
                    tree, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE, m.rec_attr_set, m.rec_attr_clr, display=m.destination
                )
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
                sc.move_mount(
                    tree, "", fd, "", sc.MOVE_MOUNT_F_EMPTY_PATH | sc.MOVE_MOUNT_T_EMPTY_PATH, display=m.destination
                )
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
                sb_flags = m.flags & (
                    sc.MS_RDONLY | sc.MS_SYNCHRONOUS | sc.MS_DIRSYNC | sc.MS_LAZYTIME | sc.MS_I_VERSION | sc.MS_SILENT
                )
                sc.mount(None, f"/proc/self/fd/{fd}", None, sc.MS_REMOUNT | sb_flags, m.data, display=m.destination)
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
                        sc.mount(
                            "cgroup2",
                            f"/proc/self/fd/{fd}",
                            "cgroup2",
                            flags | (sc.MS_RDONLY if ro else 0),
                            None,
                            display=m.destination,
                        )
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
            sc.mount("tmpfs", f"/proc/self/fd/{fd}", "tmpfs", flags, "mode=755", display=m.destination)
        finally:
            os.close(fd)
        for name, options, fstype, host_dir in hierarchies:
            dest = m.destination.rstrip("/") + "/" + name
            sub = ctx.target(dest, directory=True)
            try:
                if ctx.new_cgroupns:
                    sc.mount(
                        "cgroup",
                        f"/proc/self/fd/{sub}",
                        fstype,
                        flags | (sc.MS_RDONLY if ro else 0),
                        options if fstype == "cgroup" else None,
                        display=dest,
                    )
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
            sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH, attrs | (sc.MOUNT_ATTR_RDONLY if ro else 0), display=display)
            sc.move_mount(
                tree, "", target_fd, "", sc.MOVE_MOUNT_F_EMPTY_PATH | sc.MOVE_MOUNT_T_EMPTY_PATH, display=display
            )
        finally:
            os.close(tree)


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
                    sc.mount(
                        "tmpfs",
                        f"/proc/self/fd/{fd}",
                        "tmpfs",
                        sc.MS_RDONLY,
                        _label_data(ctx, "size=0,mode=0755"),
                        display=path,
                    )
                else:
                    sc.bind_fd(null, fd, display=path)
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
                tree = sc.open_tree(
                    fd, "", sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC | sc.AT_RECURSIVE | sc.AT_EMPTY_PATH
                )
                try:
                    sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE, sc.MOUNT_ATTR_RDONLY, display=path)
                    sc.move_mount(
                        tree, "", fd, "", sc.MOVE_MOUNT_F_EMPTY_PATH | sc.MOVE_MOUNT_T_EMPTY_PATH, display=path
                    )
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


def _label_data(ctx, data):
    if ctx.mount_label:
        return f'{data},context="{ctx.mount_label}"'
    return data
