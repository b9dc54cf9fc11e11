"""Path resolution inside the rootfs and mount sources outside it: the
``PlanContext`` the operations run with (openat2 RESOLVE_IN_ROOT from an fd
of the rootfs), and the bind sources opened by the runtime in the host's
mount namespace before the init enters the container's (``SourceOpener``)."""

from .. import lightos as os  # os's calls without importing os (lightos.py)
import stat
from ..config.semantic import clean_path  # one normalisation for validation and mounts
from ..errors import StageError
from ..linux import procfs
from ..linux import syscalls as sc
from .ops import BindMount


RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS


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
                d = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o600, dir_fd=dst_dir)
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


class PlanContext:
    """What the operations need at run time (in the init, pre-pivot)."""

    def __init__(
        self,
        rootfs,
        bundle,
        mount_label="",
        new_cgroupns=False,
        self_cgroups=None,
        cgroup_dirs=None,
        await_cgroups=None,
    ):
        self.rootfs = rootfs
        self.bundle = bundle
        self.mount_label = mount_label
        self.new_cgroupns = new_cgroupns
        self.self_cgroups = self_cgroups or ""
        # controller -> the container's cgroup dir, when the init is not (yet)
        # in its cgroups while the mounts are made (late join, see init.py)
        self.cgroup_dirs = cgroup_dirs
        # called before anything reads or binds them: the runtime may still
        # be making the cgroups (init.py, _await_cgroups)
        self.await_cgroups = await_cgroups
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
            parent = sc.openat2(
                self.rootfs_fd, "/".join(parts[:i]) or ".", os.O_PATH | os.O_DIRECTORY, resolve, display=display
            )
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
            parts = (rest if link.startswith("/") else parts[:i] + rest) + parts[i + 1 :]
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
                sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH | rec, propagation=prop & ~sc.MS_REC, display=m.destination)
            if rec_attrs:
                sc.mount_setattr(
                    fd, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE, m.rec_attr_set, m.rec_attr_clr, display=m.destination
                )
        finally:
            os.close(fd)

    def tmpcopyup(self, m, fd, data, flags=None):
        """Mount a tmpfs and copy the directory's original content into it
        (owners, modes, times, symlinks as symlinks; everything fd-relative
        and O_NOFOLLOW, so nothing in the image can redirect the copy)."""
        src = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            sc.mount(
                "tmpfs",
                f"/proc/self/fd/{fd}",
                "tmpfs",
                m.flags if flags is None else flags,
                data or None,
                display=m.destination,
            )
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
        if self.await_cgroups is not None:
            self.await_cgroups()
        mounts = [
            (m["mountpoint"], m["root"], m["fstype"], m["super_options"])
            for m in procfs.mounts(where=lambda point: point.startswith("/sys/fs/cgroup"))
            if m["fstype"] in ("cgroup", "cgroup2")
        ]
        own = {ctrls: path for _, ctrls, path in procfs.parse_cgroup(self.self_cgroups)}
        dirs = self.cgroup_dirs
        if any(p == "/sys/fs/cgroup" and t == "cgroup2" for p, _, t, _ in mounts):
            for p, root, _t, _ in mounts:
                if p == "/sys/fs/cgroup":
                    self.v2_dir = (dirs or {}).get("") or _join_cgroup(p, root, own.get("", "/"))
            return None
        out: list[tuple[str, str | None, str, str]] = []  # (name, controllers, fstype, host dir)
        for point, root, fstype, opts in mounts:
            name = point[len("/sys/fs/cgroup/") :]
            if not name or "/" in name:
                continue
            if fstype == "cgroup2":
                out.append((name, None, "cgroup2", (dirs or {}).get("") or _join_cgroup(point, root, own.get("", "/"))))
                continue
            ctrl_opts = [
                o
                for o in opts
                if o not in ("rw", "ro", "relatime")
                and not o.startswith("release_agent")
                and o not in ("nosuid", "nodev", "noexec")
            ]
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
        path = path[len(root) :]
    return point + "/" + path.strip("/") if path.strip("/") else point


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
        self.ops: list | tuple = ()  # the BindMount ops whose trees the helper opens

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
            msg = (
                str(e)
                if isinstance(e, StageError)
                else (
                    f"mount: bind source {e.filename or ''}: {e.strerror or e}"
                    if isinstance(e, OSError)
                    else f"{type(e).__name__}: {e}"
                )
            )
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
