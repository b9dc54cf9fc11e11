"""checkpoint and restore with CRIU (docs/checkpoint.md).

pyrunc talks to criu as runc does: it starts ``criu swrk FD`` with one end
of an AF_UNIX SOCK_SEQPACKET socketpair and exchanges criu's RPC messages
(pyrunc/criu_rpc.py) over it, one request per criu process.  What runc
describes to criu, pyrunc describes too: the container's rootfs as the
root, every bind mount (and masked file, device node and the cgroup v2
bind) as an external mount with its destination as the key, the network
and pid namespaces joined by path as external namespaces, the cgroups
(manage_cgroups with the chosen mode, cg_root on restore), and the init's
stdio pipes (descriptors.json, runc's file, so that images move between
the two runtimes).

A restored container is an ordinary pyrunc container: the state directory
is written as ``create`` writes it (state.json with the init's pid and
start time and the cgroup manager, the converted config and the original), so
state, exec, kill and delete work on it.

Nothing here exits or parses argv; errors are ``CriuError`` (one line,
naming the cause and the criu log).
"""

import os

from . import criu_rpc as rpc
from . import state as st
from .errors import ContainerNotRunning, InvalidState, PyruncError
from .log import log
from .namespaces import PROC_NAMES

DESCRIPTORS = "descriptors.json"  # runc's name: the init's stdio at dump time
EXTERNAL_STDIO = "pyrunc-stdio.json"  # ours: stdio files of the host, dumped as external
DUMP_LOG, RESTORE_LOG = "dump.log", "restore.log"
_SEARCH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
# runc's key of an external namespace: --external net[<inode>]:extRootNetNS
_EXT_NS = {"network": ("net", "extRootNetNS"), "pid": ("pid", "extRootPidNS")}
_JOIN_NS_NAMES = {t: PROC_NAMES[t] for t in ("ipc", "uts", "mount", "user", "time")}
_DEFAULT_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")
CLONE_NEWNET = 0x40000000


class CriuError(PyruncError):
    """criu is missing, unusable, or a dump/restore failed."""


class CriuOptions:
    """The options of `checkpoint` and `restore` (runc's flags)."""

    __slots__ = (
        "image_path",
        "work_path",
        "parent_path",
        "leave_running",
        "tcp_established",
        "ext_unix_sk",
        "shell_job",
        "file_locks",
        "pre_dump",
        "manage_cgroups_mode",
        "empty_ns",
        "auto_dedup",
        "lazy_pages",
        "criu_path",
    )
    image_path: str
    work_path: str | None
    parent_path: str | None
    leave_running: bool | None
    tcp_established: bool | None
    ext_unix_sk: bool | None
    shell_job: bool | None
    file_locks: bool | None
    pre_dump: bool | None
    manage_cgroups_mode: str  # "" or one of rpc.CG_MODES
    empty_ns: int  # CLONE_* mask (given as namespace names)
    auto_dedup: bool | None
    lazy_pages: bool | None
    criu_path: str | None  # None: criu from PATH (Runtime(criu=...) fills it in)

    def __init__(self, **kw):
        for name in self.__slots__:
            setattr(self, name, kw.get(name))
        self.image_path = os.path.abspath(self.image_path or "checkpoint")
        self.manage_cgroups_mode = self.manage_cgroups_mode or ""
        if self.manage_cgroups_mode not in rpc.CG_MODES:
            raise PyruncError(
                f"invalid manage-cgroups-mode value {self.manage_cgroups_mode!r} (soft, full, strict or ignore)"
            )
        # runc never restores network devices: the net namespace is always
        # "empty" for criu; --empty-ns network is accepted and changes nothing
        mask = CLONE_NEWNET
        for ns in kw.get("empty_ns") or ():
            if ns != "network":
                raise PyruncError(f"namespace {ns!r} is not supported by --empty-ns (only network)")
        self.empty_ns = mask


# --- finding criu ------------------------------------------------------------
def find_criu(explicit=None):
    """The criu executable: ``--criu PATH``, else PATH, else the sbin dirs."""
    if explicit:
        if os.sep in explicit:
            if os.access(explicit, os.X_OK):
                return explicit
            raise CriuError(f"criu not found at {explicit}: checkpoint and restore need criu")
        name = explicit
    else:
        name = "criu"
    dirs = os.environ.get("PATH", "").split(os.pathsep) + list(_SEARCH)
    for d in dirs:
        p = os.path.join(d or ".", name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    raise CriuError("criu not found in PATH: checkpoint and restore need criu (3.11 or newer)")


def _cache_path():
    if os.geteuid() == 0:
        return "/run/pyrunc-criu-check"
    base = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(base, "pyrunc-criu-check") if base else None


NEGATIVE_TTL = 600  # seconds a failed `criu check` is believed (a module may be loaded later)


def criu_usable():
    """Whether criu is installed and `criu check` passes on this kernel.

    For `--version`'s +CRIU line, which must stay cheap: the verdict is
    cached in /run (per boot and criu binary); a failure only for a while,
    as loading a module (tun) can make criu usable."""
    import time

    try:
        criu = find_criu()
        mtime = os.stat(criu).st_mtime_ns
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except (CriuError, OSError):
        return False
    key = f"{boot} {criu} {mtime}"
    cache = _cache_path()
    if cache:
        try:
            with open(cache) as f:
                line = f.read().strip()
            k, _, rest = line.rpartition(" ")
            verdict, _, stamp = rest.partition("@")
            if k == key and (verdict == "1" or time.time() - float(stamp) < NEGATIVE_TTL):
                return verdict == "1"
        except (OSError, ValueError):
            pass
    import subprocess

    try:
        ok = (
            subprocess.run(
                [criu, "check"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=30,
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    if cache:
        try:
            st.write_atomic(cache, f"{key} {int(ok)}@{time.time():.0f}\n".encode(), 0o644)
        except OSError:
            pass
    return ok


# --- one criu swrk session -----------------------------------------------------
class _Swrk:
    """``criu swrk`` with one end of a SOCK_SEQPACKET socketpair."""

    def __init__(self, criu, *, extra_fds=(), own_stdio=False):
        import socket
        import subprocess

        self.sock, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        stdio = None if own_stdio else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                [criu, "swrk", str(peer.fileno())],
                pass_fds=(peer.fileno(), *extra_fds),
                stdin=stdio,
                stdout=stdio,
                stderr=stdio,
                close_fds=True,
            )
        except OSError as e:
            self.sock.close()
            raise CriuError(f"cannot run {criu}: {e.strerror}") from None
        finally:
            # ours closed: criu dying is EOF on self.sock, never a hang
            peer.close()
        self.pid = self.proc.pid

    def call(self, req, on_notify=None):
        """Send ``req``; answer criu's notifications; return the final response."""
        import socket

        self.sock.sendall(rpc.encode(rpc.REQ, req))
        while True:
            data, ancdata, _, _ = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(16 * 4))
            fds = []  # criu sends the pty master with orphan-pts-master
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds += [
                        int.from_bytes(payload[i : i + 4], "little")
                        for i in range(0, len(payload) - len(payload) % 4, 4)
                    ]
            try:
                if not data:
                    return None
                resp = rpc.decode(rpc.RESP, data)
                if resp.get("type") != rpc.NOTIFY_TYPE or not resp.get("success", False):
                    return resp
                note = resp.get("notify") or {}
                if on_notify is not None:
                    on_notify(note.get("script", ""), note.get("pid", 0), fds)
            finally:
                for fd in fds:
                    os.close(fd)
            self.sock.sendall(rpc.encode(rpc.REQ, {"type": rpc.NOTIFY_TYPE, "notify_success": True}))

    def finish(self, timeout=60):
        """Close our end and reap criu; its exit status."""
        import subprocess

        self.sock.close()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def kill(self):
        self.sock.close()
        try:
            self.proc.kill()
        except ProcessLookupError:
            pass
        self.proc.wait()


def _log_errors(log_path):
    """The error lines of a criu log (criu writes "Error (file:line): ..."),
    without the exit reports of the helper commands criu probes with."""
    out = []
    try:
        with open(log_path, errors="replace") as f:
            for line in f:
                if "Error (" in line and "exited, status=" not in line:
                    out.append(line.strip().split("): ", 1)[-1][:300])
    except OSError:
        pass
    return out


def _failure(what, resp, log_path, status=None):
    errors = _log_errors(log_path)
    if any("kerndat" in e for e in errors):
        # criu failed before looking at the container: its probe of the kernel
        cause = f"this kernel cannot run criu ({errors[0]}; see `criu check`)"
    elif errors:
        cause = errors[0]
    else:
        cause = (resp or {}).get("cr_errmsg") or ""
        if not cause and (resp or {}).get("cr_errno"):
            cause = os.strerror(resp["cr_errno"])
        if not cause:
            cause = "criu exited unexpectedly" + (f" (status {status})" if status is not None else "")
    return CriuError(f"{what} failed: {cause} (criu log: {log_path})")


def _features_check(criu, **want):
    s = _Swrk(criu)
    try:
        resp = s.call({"type": rpc.FEATURE_CHECK, "features": dict(want)})
    finally:
        s.finish()
    got = (resp or {}).get("features") or {}
    missing = [k for k, v in want.items() if v and not got.get(k)]
    if not resp or not resp.get("success") or missing:
        raise CriuError(f"criu is missing features: {', '.join(missing) or ', '.join(want)}")


def _open_dir(path, create):
    if create:
        try:
            os.makedirs(path, 0o700, exist_ok=True)
        except OSError as e:
            raise CriuError(f"cannot create {path}: {e.strerror}") from None
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise CriuError(f"cannot open {path}: {e.strerror}") from None


def _clean(path):
    return "/" + os.path.normpath("/" + path).lstrip("/")


def _external_mounts(cfg, mgr, restoring, init_pid=None):
    """ext_mnt entries: (key in the image, value).  At dump the value is the
    key criu writes in the image (the destination); at restore, the host
    path bind-mounted there."""
    out = []
    for m in cfg.mounts:
        if m.bind:
            dest = _clean(m.destination)
            out.append((dest, m.source if restoring else dest))
        elif m.type == "cgroup" and not cfg.has_new_namespace("cgroup") and mgr is not None:
            # without a cgroup namespace, cgroup v2's /sys/fs/cgroup is a bind
            # of the container's own cgroup directory (rootfs.CgroupMount)
            paths = mgr.paths()
            if set(paths) == {""}:
                dest = _clean(m.destination)
                out.append((dest, paths[""] if restoring else dest))
    # masked files are binds of the host's /dev/null
    if restoring:
        if cfg.masked_paths:
            out.append(("/dev/null", "/dev/null"))
    else:
        for p in cfg.masked_paths:
            try:
                if not os.path.isdir(f"/proc/{init_pid}/root{_clean(p)}"):
                    if os.path.exists(f"/proc/{init_pid}/root{_clean(p)}"):
                        out.append((_clean(p), "/dev/null"))
            except OSError:
                continue
    # device nodes: binds from the host inside a user namespace
    for path in dict.fromkeys([d.path for d in cfg.devices] + list(_DEFAULT_DEVICES)):
        out.append((_clean(path), path if restoring else _clean(path)))
    seen, uniq = set(), []
    for k, v in out:
        if k not in seen:
            seen.add(k)
            uniq.append({"key": k, "val": v})
    return uniq


def _criu_options(opts, cfg, images_fd, fds, log_file):
    """The criu options dump and restore share (images, log, cgroups, the
    flags of both verbs, the work directory, which is opened here and
    appended to ``fds``).  Returns (options, the directory of criu's log)."""
    o = {
        "images_dir_fd": images_fd,
        "log_level": 4,
        "log_file": log_file,
        "manage_cgroups": True,
        "manage_cgroups_mode": rpc.CG_MODES[opts.manage_cgroups_mode],
        "notify_scripts": True,
        "shell_job": bool(opts.shell_job),
        "tcp_established": bool(opts.tcp_established),
        "ext_unix_sk": bool(opts.ext_unix_sk),
        "file_locks": bool(opts.file_locks),
        "empty_ns": opts.empty_ns,
        "orphan_pts_master": True,
        "auto_dedup": bool(opts.auto_dedup),
        "lazy_pages": bool(opts.lazy_pages),
        "config_file": _config_file(cfg),
    }
    log_dir = opts.image_path
    if opts.work_path:
        wd = _open_dir(os.path.abspath(opts.work_path), create=True)
        fds.append(wd)
        o["work_dir_fd"] = wd
        log_dir = os.path.abspath(opts.work_path)
    return o, log_dir


def _config_file(cfg):
    """runc's criu configuration file rule (annotation org.criu.config)."""
    ann = cfg.annotations or {}
    if "org.criu.config" in ann:
        return ann["org.criu.config"] or None
    return "/etc/criu/runc.conf"


# --- checkpoint -------------------------------------------------------------------
def checkpoint(store, container_id, opts):
    """Dump the container's process tree into ``opts.image_path``.

    Unless ``leave_running`` or ``pre_dump``, the container is gone
    afterwards (criu killed its processes; state and cgroup are removed),
    as with runc.  A failed dump leaves the container as it was."""
    from . import container as core

    with store.lock(container_id):
        c = core.Container.load(store, container_id)
        status = c.status
        if status in ("created", "stopped", "creating"):
            raise InvalidState(f"Container cannot be checkpointed in {status} state")
        cfg = store.load_config(container_id)
        criu = find_criu(opts.criu_path)
        if opts.parent_path:
            if os.path.isabs(opts.parent_path):
                raise PyruncError("--parent-path must be relative")
            # relative to the images (criu's parent_img): img/../parent
            # resolves only once img exists
            os.close(_open_dir(opts.image_path, create=True))
            real = os.path.join(opts.image_path, opts.parent_path)
            if not os.path.isdir(real):
                raise PyruncError(f"invalid --parent-path: {real}: not a directory")
        if opts.pre_dump:
            _features_check(criu, mem_track=True)
        if opts.lazy_pages:
            _features_check(criu, lazy_pages=True)
        fds = []
        try:
            img = _open_dir(opts.image_path, create=True)
            fds.append(img)
            o, log_dir = _criu_options(opts, cfg, img, fds, DUMP_LOG)
            o.update(root=c.state.rootfs, pid=c.state.init_pid, leave_running=bool(opts.leave_running))
            external = []
            for ns in cfg.namespaces:
                if ns.type in _EXT_NS and ns.path:
                    name, key = _EXT_NS[ns.type]
                    try:
                        ino = os.stat(ns.path).st_ino
                    except OSError as e:
                        raise CriuError(f"{ns.path}: {e.strerror}") from None
                    external.append(f"{name}[{ino}]:{key}")
            mgr = c.cgroup_manager()
            if mgr is not None and mgr.exists():
                paths = mgr.paths()
                fz = paths.get("freezer") or paths.get("")
                if fz:
                    o["freeze_cgroup"] = fz
            if opts.parent_path:
                o["parent_img"] = opts.parent_path
                o["track_mem"] = True
            if not opts.pre_dump:
                o["ext_mnt"] = _external_mounts(cfg, mgr, False, c.state.init_pid)
                _write_descriptors(opts.image_path, c.state.init_pid)
                ext_stdio = _external_stdio(c.state.init_pid)
                st.write_atomic(os.path.join(opts.image_path, EXTERNAL_STDIO), _json(ext_stdio), 0o600)
                external += sorted({v["key"] for v in ext_stdio.values()})
            if external:
                o["external"] = external
            log_path = os.path.join(log_dir, DUMP_LOG)
            kind = rpc.PRE_DUMP if opts.pre_dump else rpc.DUMP
            s = _Swrk(criu, extra_fds=tuple(fds))
            try:
                resp = s.call({"type": kind, "opts": o})
            except BaseException:
                s.kill()
                raise
            code = s.finish()
            what = "pre-dump" if opts.pre_dump else "checkpoint"
            if not resp or not resp.get("success") or resp.get("type") != kind:
                raise _failure(what, resp, log_path, code)
            if code != 0 and not opts.pre_dump:
                raise _failure(what, resp, log_path, code)
        finally:
            for fd in fds:
                os.close(fd)
        if opts.leave_running or opts.pre_dump:
            return
        # criu killed the container's processes: the container is destroyed
        # as `delete` does it (cgroup, state dir, poststop hooks), as runc
        core.kill_everything(c)
        core.destroy(c)


def _write_descriptors(image_path, pid):
    """runc's descriptors.json: what the init's fds 0-2 were, so that a
    restore can hand criu the new pipes in their place."""
    out = []
    for fd in range(3):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            out.append("/dev/null")
    st.write_atomic(os.path.join(image_path, DESCRIPTORS), _json(out), 0o600)


def _json(obj):
    from .fastjson import dumps

    return dumps(obj, compact=True).encode()


def _external_stdio(pid):
    """The init's stdio that are files of the host the container cannot
    see (the caller's /dev/null, a log file): criu cannot look them up in
    the container's mounts, so they are dumped as external files
    ("file[mnt_id:inode]") and a restore hands criu its own fd in their
    place.  (runc's init reopens a host /dev/null inside the container
    instead; pyrunc's keeps the fd it was given.)
    {fd slot: {"key": criu key, "path": the file's path, "type": S_IFMT}}."""
    import stat
    from .linux import procfs

    try:
        visible = {m["id"] for m in procfs.mounts(pid)}
    except OSError:
        return {}
    out = {}
    for fd in range(3):
        try:
            s = os.stat(f"/proc/{pid}/fd/{fd}")
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f if ":" in line)
            mnt = int(info["mnt_id"])
        except (OSError, KeyError, ValueError):
            continue
        if not (stat.S_ISREG(s.st_mode) or stat.S_ISCHR(s.st_mode)) or mnt in visible:
            continue  # pipes and sockets criu handles; visible files it reopens
        try:
            path = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            path = ""
        out[str(fd)] = {"key": f"file[{mnt:x}:{s.st_ino:x}]", "path": path, "type": stat.S_IFMT(s.st_mode)}
    return out


def _stdio_inherit(image_path, descriptors, opened=None):
    """inherit_fd entries: the dumped stdio pipes and external files
    become this process's fds (criu's own stdio) in the same slots.  criu
    wants an external file's replacement to be of the same type: a slot
    of ours that is not (a restore whose stdout is a log file, of a
    container whose stdout was /dev/null) gives way to another slot that
    is, else to the same path opened again (fds appended to ``opened``)."""
    import stat

    out = []
    for i, d in enumerate(descriptors[:3]):
        if d.startswith("pipe:"):
            out.append({"key": d, "fd": i})
    import json

    try:
        with open(os.path.join(image_path, EXTERNAL_STDIO)) as f:
            ext = json.load(f)
    except FileNotFoundError:
        return out  # an image of runc
    except (OSError, ValueError) as e:
        raise CriuError(f"{os.path.join(image_path, EXTERNAL_STDIO)}: {e}") from None
    files: dict[str, dict] = {}
    for slot, v in sorted(ext.items()):
        v = v if isinstance(v, dict) else {"key": v}
        files.setdefault(v["key"], dict(v, slots=[]))["slots"].append(int(slot))

    def kind(fd):
        try:
            return stat.S_IFMT(os.fstat(fd).st_mode)
        except OSError:
            return None

    for key, entry in files.items():
        want = entry.get("type")
        # the stdout slot first (writable, usually), then the others, then any of ours
        order = sorted(entry["slots"], key=lambda i: i != 1) + [i for i in (1, 0, 2) if i not in entry["slots"]]
        fd = next((i for i in order if want is None or kind(i) == want), None)
        if fd is None and entry.get("path", "").startswith("/") and opened is not None:
            try:
                new = os.open(entry["path"], os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                new = -1
            if new >= 0 and kind(new) == want:
                opened.append(new)
                fd = new
            elif new >= 0:
                os.close(new)
        out.append({"key": key, "fd": entry["slots"][0] if fd is None else fd})
    return out


def _read_descriptors(image_path):
    import json

    path = os.path.join(image_path, DESCRIPTORS)
    try:
        with open(path) as f:
            fds = json.load(f)
    except FileNotFoundError:
        raise CriuError(f"{path}: no such file: not a checkpoint image directory") from None
    except (OSError, ValueError) as e:
        raise CriuError(f"{path}: {e}") from None
    if not isinstance(fds, list) or not all(isinstance(x, str) for x in fds):
        raise CriuError(f"{path}: not a list of descriptors")
    return fds


# --- restore ----------------------------------------------------------------------
def restore(
    store,
    container_id,
    bundle,
    opts,
    *,
    pid_file=None,
    detach=True,
    no_subreaper=False,
    no_pivot=False,
    config_path=None,
    systemd_cgroup=False,
    console_socket=None,
):
    """Restore a container from ``opts.image_path`` with the bundle's config;
    return the ``Container`` (status running).  The restored init is a
    child of this process (criu's rst_sibling), as with runc.

    A failed restore leaves no state directory, cgroup or process behind."""
    from . import container as core
    from .config.convert import build
    from .config.validate import load_config

    st.validate_id(container_id)
    bundle = os.path.abspath(bundle or ".")
    doc = load_config(os.path.join(bundle, config_path or "config.json"))
    # the same judgement as create's (and `pyrunc validate`'s)
    cfg = build(doc, bundle, warn=log.warning, systemd_cgroup=systemd_cgroup)
    for ns in cfg.namespaces:
        if ns.type == "cgroup" and ns.path:
            raise CriuError("criu cannot restore into a cgroup namespace joined by path")
    terminal = bool(cfg.process and cfg.process.terminal)
    if terminal and not console_socket:
        raise PyruncError("cannot restore a container with a terminal without --console-socket")
    if console_socket and not terminal:
        raise PyruncError("cannot use console socket if the container has no terminal")
    descriptors = _read_descriptors(opts.image_path)
    criu = find_criu(opts.criu_path)
    if opts.lazy_pages:
        _features_check(criu, lazy_pages=True)
    if pid_file:
        pid_file = os.path.abspath(pid_file)
    if not detach and not no_subreaper:
        from .linux import syscalls as sc

        sc.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)

    store.create_dir(container_id)
    state = st.ContainerState(
        id=container_id,
        bundle=bundle,
        rootfs=cfg.root_path,
        created=core.now_rfc3339(),
        oci_version=cfg.oci_version,
        annotations=cfg.annotations,
        owner_uid=os.geteuid(),
    )
    c = core.Container(store, state)
    mgr = swrk = console = None
    criu_root = None
    fds = []
    try:
        store.save_config(container_id, cfg, doc)
        if console_socket:
            from .console import connect_socket

            console = connect_socket(console_socket)
        from .cgroups import new_manager
        from .cgroups import forget_mounts

        forget_mounts()  # the cgroup lookups of this call read the mount table once, from here
        mgr = new_manager(cfg.cgroups_path, container_id, systemd=systemd_cgroup, annotations=cfg.annotations)
        if mgr.exists() and mgr.pids():
            mgr = None
            raise CriuError("the container's cgroup already holds processes")
        state.cgroup = mgr.to_dict()
        store.save(state)
        mgr.create()
        img = _open_dir(opts.image_path, create=False)
        fds.append(img)
        _make_mountpoints(cfg)
        criu_root = _bind_root(store.dir(container_id), cfg.root_path)
        o, log_dir = _criu_options(opts, cfg, img, fds, RESTORE_LOG)
        o.update(evasive_devices=True, rst_sibling=True, root=criu_root)
        log_path = os.path.join(log_dir, RESTORE_LOG)
        inherit, join = [], []
        for ns in cfg.namespaces:
            if not ns.path:
                continue
            if ns.type in _EXT_NS:
                try:
                    fd = os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError as e:
                    raise CriuError(f"namespace {ns.path} to restore into: {e.strerror}") from None
                fds.append(fd)
                inherit.append({"key": _EXT_NS[ns.type][1], "fd": fd})
            elif ns.type in _JOIN_NS_NAMES:
                join.append({"ns": _JOIN_NS_NAMES[ns.type], "ns_file": ns.path})
        inherit += _stdio_inherit(opts.image_path, descriptors, fds)
        if inherit:
            o["inherit_fd"] = inherit
        if join:
            o["join_ns"] = join
        o["ext_mnt"] = _external_mounts(cfg, mgr, True)
        swrk = _Swrk(criu, extra_fds=tuple(fds), own_stdio=True)
        # criu restores the tree into its own cgroups: put it in the
        # container's and say that they are the root of the restored ones
        mgr.apply(swrk.pid)
        o["cg_root"] = _cg_roots(swrk.pid)
        restored = {}

        def on_notify(script, pid, passed_fds):
            if script == "setup-namespaces" and pid:
                restored["pid"] = pid
                _run_create_hooks(c, cfg, pid)
            elif script == "post-restore" and pid:
                restored["pid"] = pid
            elif script == "orphan-pts-master":
                # the restored terminal's new master, for the console socket
                # (as create sends it: "/dev/ptmx" and the fd)
                if console is None or not passed_fds:
                    raise CriuError("criu restored a terminal but sent no pty master")
                from .console import send_master

                send_master(console, passed_fds[:1][0])

        resp = swrk.call({"type": rpc.RESTORE, "opts": o}, on_notify)
        pid = ((resp or {}).get("restore") or {}).get("pid") or restored.get("pid")
        if pid:
            state.init_pid = pid
            state.init_start = st.proc_start_time(pid)[0]
        if not resp or not resp.get("success") or resp.get("type") != rpc.RESTORE or not pid:
            code = swrk.finish()
            swrk = None
            raise _failure("restore", resp, log_path, code)
        code = swrk.finish()
        swrk = None
        if code != 0:
            raise _failure("restore", resp, log_path, code)
        if not st.init_alive(state):
            raise CriuError(f"restore failed: the restored init (pid {pid}) exited at once (criu log: {log_path})")
        cfg = _note_time_namespace(store, container_id, cfg, doc, pid)
        mgr.set(cfg.resources, initial=True)
        store.save(state)
        if pid_file:
            st.write_atomic(pid_file, str(pid).encode(), 0o644)
        return c
    except BaseException:
        if swrk is not None:
            swrk.kill()
        if criu_root is not None:
            _unbind_root(criu_root)  # before the state dir it lies in goes
            criu_root = None
        _undo_restore(store, state, mgr)
        raise
    finally:
        for fd in fds:
            os.close(fd)
        if console is not None:
            console.close()
        if criu_root is not None:
            _unbind_root(criu_root)


def _make_mountpoints(cfg):
    """Create the config's missing mount points in the rootfs, as runc does
    before a restore: criu mounts onto the paths its image names but does
    not create them, and a rootfs that never ran the container (podman's
    restore --import) lacks the ones create made (/etc/hostname...).
    Those under a tmpfs are skipped: criu restores the tmpfs with them."""
    tmpfs = [_clean(m.destination) for m in cfg.mounts if m.type == "tmpfs"]
    for m in cfg.mounts:
        dest = _clean(m.destination)
        if m.type == "cgroup" or dest == "/" or any(dest.startswith(t + "/") for t in tmpfs):
            continue
        is_file = bool(m.bind) and os.path.exists(m.source) and not os.path.isdir(m.source)
        _mkpath_in_root(cfg.root_path, dest, is_file)


def _mkpath_in_root(root, path, is_file):
    """mkdir -p (and an empty file last) below ``root`` without following
    symlinks: an image's links must not make us create files on the host.
    A symlink in the way is left alone (criu then reports the path)."""
    parts = [p for p in path.split("/") if p]
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for i, name in enumerate(parts):
            last = i == len(parts) - 1
            try:
                os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if last and is_file:
                    os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644, dir_fd=fd))
                    return
                os.mkdir(name, 0o755, dir_fd=fd)
            if last:
                return
            try:
                nfd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError:
                return  # a symlink or a file in the way
            os.close(fd)
            fd = nfd
    except OSError as e:
        raise CriuError(f"creating the mount point {path} in the rootfs: {e.strerror}") from None
    finally:
        os.close(fd)


def _bind_root(state_dir, rootfs):
    """criu wants the root to be a mount point whose parent is not
    overmounted: a recursive bind of the rootfs in the state directory."""
    from .linux import syscalls as sc

    root = os.path.join(state_dir, "criu-root")
    os.mkdir(root, 0o755)
    try:
        sc.mount(rootfs, root, None, sc.MS_BIND | sc.MS_REC)
    except OSError as e:
        os.rmdir(root)
        raise CriuError(f"bind mount of the rootfs for criu: {e.strerror}") from None
    return os.path.realpath(root)


def _unbind_root(root):
    from .linux import syscalls as sc

    try:
        sc.umount2(root, sc.MNT_DETACH)
    except OSError as e:
        log.warning(f"unmounting {root}: {e.strerror}")
    try:
        os.rmdir(root)
    except OSError:
        pass


def _cg_roots(pid):
    """cg_root for each hierarchy of ``pid`` (now in the container's
    cgroups); the v2 one is criu's default root."""
    from .linux import procfs

    return [{"ctrl": ctrls, "path": path} if ctrls else {"path": path} for _, ctrls, path in procfs.cgroups(pid)]


def _run_create_hooks(c, cfg, pid):
    """prestart and createRuntime hooks, once criu made the namespaces (runc
    runs them at criu's setup-namespaces notification)."""
    names = [n for n in ("prestart", "createRuntime") if cfg.hooks.get(n)]
    if not names:
        return
    from .hooks import run_hooks

    state = c.hook_state("creating")
    state["pid"] = pid
    for name in names:
        run_hooks(cfg.hook_list(name), state, name)


def _note_time_namespace(store, container_id, cfg, doc, pid):
    """criu restores into a new time namespace when the kernel has them:
    record it in the config, so that exec joins it too.  Returns the
    config (a new one when it changed)."""
    if cfg.namespace("time") is not None:
        return cfg
    try:
        if os.readlink(f"/proc/{pid}/ns/time") == os.readlink("/proc/self/ns/time"):
            return cfg
    except OSError:
        return cfg
    from .config.model import Namespace
    from .linux.syscalls import CLONE_NEWTIME

    cfg = cfg.replace(namespaces=cfg.namespaces + [Namespace(type="time", path="", flag=CLONE_NEWTIME)])
    store.save_config(container_id, cfg, doc)
    return cfg


def _undo_restore(store, state, mgr):
    import _signal
    from . import container as core

    if state.init_pid:
        try:
            core.signal_init(state, _signal.SIGKILL)
            core.wait_gone(state.init_pid, state.init_start, 5)
        except PyruncError:
            pass
        try:
            os.waitpid(state.init_pid, os.WNOHANG)  # our child (rst_sibling)
        except ChildProcessError:
            pass
    if mgr is not None:
        import time

        deadline = time.monotonic() + 5
        while True:  # killed tasks (criu's, the restored ones) leave the cgroup soon
            try:
                if mgr.exists():
                    mgr.kill_all(_signal.SIGKILL)
                    mgr.destroy()
                break
            except Exception as e:  # noqa: BLE001 - the restore error is what matters
                if time.monotonic() > deadline:
                    log.warning(f"cleanup after failed restore: {e}")
                    break
                time.sleep(0.05)
    try:
        store.remove(state.id)
    except OSError as e:
        log.warning(f"cleanup after failed restore: {e}")


def wait_foreground(store, container_id, pid):
    """`restore` without --detach: forward signals to the init, wait for
    it, delete the container; its exit status (128+n for signal n)."""
    from . import container as core

    code = core.wait_foreground(pid)
    try:
        core.delete(store, container_id, force=True)
    except ContainerNotRunning:
        pass
    return code
