"""The state store: one directory per container under ``--root``.

Layout of ``<root>/<id>/``:

- ``state.json``  the runtime state (``ContainerState``): init pid and its
  start time, bundle, creation time, cgroup manager, ... Small, so that the
  hot commands (``state``, ``kill``) read little.
- ``config.json`` two JSON documents, one per line: the converted internal
  config (``config.model.Config``), which start, exec and delete read, then
  the original config.json as given at create time, for ``inspect`` (what
  was asked).  One file, not two: every file of the directory is an inode
  allocated at create and freed at delete, and ext4's allocator scans past
  each recently freed inode (docs/performance.md section 25).  A directory
  written by pyrunc before that has the model alone and ``spec.json``.
- ``start.sock``  present while the container is ``created``: the init
  waits in accept() on it until ``start`` connects (docs/stage-protocol.md).

Every write is atomic (temp file + rename).  A per-container lock (flock on
the directory) serialises commands that change a container.  Creation is
exclusive by ``mkdir``: exactly one of concurrent creates of an id wins.

``ContainerState`` here is the stored record; the public, read-only view of
a container's state (the fields of runc's state JSON) is
``pyrunc.runtime.ContainerState``.
"""

from . import lightos as os  # os's calls without importing os (lightos.py)

from . import fastjson
from .errors import ContainerExists, ContainerNotExist, InvalidID, PyruncError

_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")
STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
SPEC_FILE = "spec.json"
START_SOCKET = "start.sock"
# What the init writes on the connection `start` made to START_SOCKET
# (docs/stage-protocol.md, "Start"): ACCEPTED once the startContainer hooks
# ran; COMMITTED when only the execve (and a filter under no_new_privs) is
# left; any other bytes are an error message.  The connection is
# close-on-exec: its EOF is the execve.
START_ACCEPTED = b"0"
START_COMMITTED = b"."


def validate_id(container_id):
    """runc's rule: [A-Za-z0-9_+.-]+, and not "." or ".."."""
    if (
        not container_id
        or container_id in (".", "..")
        or not _ID_CHARS.issuperset(container_id)
        or len(container_id) > 1024
    ):
        raise InvalidID(f"invalid container id format: {container_id}")


def _loads(data):
    return fastjson.loads(data)


def model_bytes(data):
    """The converted config's line of config.json's bytes (compact JSON
    never holds a raw newline)."""
    end = data.find(b"\n")
    return data if end < 0 else data[:end]


def _dumps(obj):
    return fastjson.dumps(obj, compact=True)


def write_atomic(path, data, mode=0o600, *, exchange=None):
    """Write ``data`` (bytes) to ``path`` via a temp file and rename.

    A full disk or any other error leaves the old file (or none) in place.

    ``exchange``: a function swapping two existing names atomically
    (``linux.syscalls.rename_exchange``), for a file that is usually
    there already.  The new file then takes the old one's name by an
    exchange, and the old content, now under the temp name, is unlinked.
    Why: ext4 (auto_da_alloc) allocates and starts writing the blocks of a
    file renamed over another at once, so that the later unlink of that
    file frees blocks, and with the ``discard`` mount option waits for the
    device to trim them (0.3 ms per container delete alone, ~3 ms with 8
    at once on the machine measured; docs/performance.md section 19).
    Where the exchange is refused (no old file, a file system without it)
    the rename is done."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.close(fd)
        fd = -1
        if exchange is not None and _exchanged(exchange, tmp, path):
            return
        os.rename(tmp, path)
    except BaseException as e:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError) and not e.filename:
            # os.write's error names no file; the caller's one line should
            raise OSError(e.errno, e.strerror, path) from None
        raise


def _exchanged(exchange, tmp, path):
    """Swap ``tmp`` in at ``path`` and unlink the old content; False when
    the exchange is refused and nothing changed."""
    try:
        exchange(tmp, path)
    except OSError:
        return False  # ENOENT (no old file), EINVAL (not supported), ...: rename
    try:
        os.unlink(tmp)  # the old content
    except OSError:
        pass  # a leftover temp name; delete removes every name in the directory
    return True


def hook_state(oci_version, container_id, status, pid, bundle, annotations):
    """The state object hooks and a seccomp agent get (runtime.md's fields)."""
    out = {"ociVersion": oci_version, "id": container_id, "status": status, "pid": pid, "bundle": bundle}
    if annotations:
        out["annotations"] = annotations
    return out


class ContainerState:
    """The runtime's record of one container (state.json)."""

    __slots__ = (
        "id",
        "bundle",
        "rootfs",
        "init_pid",
        "init_start",
        "created",
        "oci_version",
        "annotations",
        "cgroup",
        "paused",
        "owner_uid",
        "net_devices",
        "use_systemd",
    )

    def __init__(self, **kw):
        self.id = kw.get("id", "")
        self.bundle = kw.get("bundle", "")
        self.rootfs = kw.get("rootfs", "")
        self.init_pid = kw.get("init_pid", 0)
        self.init_start = kw.get("init_start", 0)
        self.created = kw.get("created", "")
        self.oci_version = kw.get("oci_version", "")
        self.annotations = kw.get("annotations") or {}
        self.cgroup = kw.get("cgroup")
        self.paused = kw.get("paused", False)
        self.owner_uid = kw.get("owner_uid", 0)
        self.net_devices = kw.get("net_devices")
        self.use_systemd = kw.get("use_systemd", False)

    def to_dict(self):
        return {k: getattr(self, k) for k in self.__slots__}


class StateStore:
    def __init__(self, root, sticky=False):
        self.root = os.path.abspath(root)
        # the default root in $XDG_RUNTIME_DIR (rootless): sticky, or the
        # session's cleaner may prune it (XDG Base Directory spec; as runc)
        self.sticky = sticky
        self._written: dict[str, bytes] = {}  # {id: the state.json bytes this store wrote last}

    def dir(self, container_id):
        validate_id(container_id)
        return os.path.join(self.root, container_id)

    # --- creation --------------------------------------------------------
    def create_dir(self, container_id):
        """Make the container's directory; fail if the id exists."""
        path = self.dir(container_id)
        try:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            if self.sticky:
                os.chmod(self.root, 0o1700)
        except OSError as e:
            raise PyruncError(f"cannot create state root {self.root}: {e.strerror}") from None
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise ContainerExists(container_id) from None
        except OSError as e:
            raise PyruncError(f"cannot create state directory {path}: {e.strerror}") from None
        return path

    # --- reading ---------------------------------------------------------
    def exists(self, container_id):
        return os.path.isdir(self.dir(container_id))

    def load(self, container_id):
        path = os.path.join(self.dir(container_id), STATE_FILE)
        try:
            data = os.read_file(path)
        except FileNotFoundError:
            raise ContainerNotExist(container_id) from None
        except NotADirectoryError:
            raise ContainerNotExist(container_id) from None
        return ContainerState(**_loads(data))

    def load_config(self, container_id):
        from .config.model import Config

        return Config.from_dict(_loads(model_bytes(os.read_file(os.path.join(self.dir(container_id), CONFIG_FILE)))))

    def load_spec(self, container_id):
        d = self.dir(container_id)
        spec = os.read_file(os.path.join(d, CONFIG_FILE)).partition(b"\n")[2]
        if not spec:  # written by an earlier pyrunc
            spec = os.read_file(os.path.join(d, SPEC_FILE))
        return _loads(spec)

    def list_ids(self):
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return None
        return sorted(n for n in names if os.path.isfile(os.path.join(self.root, n, STATE_FILE)))

    # --- writing ---------------------------------------------------------
    def save(self, state, *, unless_written=False, exchange=None):
        """Write state.json (a new file renamed over the old one).
        ``unless_written``: not when this store wrote exactly these bytes
        last (create's final save, whose state rarely changed since the
        init's pid was recorded: each write allocates an inode and frees
        one, which costs the file system, ext4's allocator most, when many
        containers come and go).  ``exchange``: see write_atomic."""
        data = _dumps(state.to_dict()).encode()
        if unless_written and self._written.get(state.id) == data:
            return
        write_atomic(os.path.join(self.dir(state.id), STATE_FILE), data, exchange=exchange)
        self._written = {state.id: data}  # the last container's only: a library's store lives long

    def save_config(self, container_id, config, spec_doc=None):
        """Write config.json: the converted config, and the original document,
        or with ``spec_doc`` None the one already there (``update`` changes the
        converted one only)."""
        path = os.path.join(self.dir(container_id), CONFIG_FILE)
        if spec_doc is not None:
            spec = _dumps(spec_doc).encode()
        else:
            try:
                spec = os.read_file(path).partition(b"\n")[2]
            except FileNotFoundError:
                spec = b""
        write_atomic(path, _dumps(config.to_dict()).encode() + b"\n" + spec)

    def start_socket_path(self, container_id):
        return os.path.join(self.dir(container_id), START_SOCKET)

    def remove(self, container_id):
        d = self.dir(container_id)
        try:
            names = os.listdir(d)
        except FileNotFoundError:
            return
        for n in names:
            try:
                os.unlink(os.path.join(d, n))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass

    # --- locking ---------------------------------------------------------
    def lock(self, container_id):
        return _DirLock(self.dir(container_id))


class _DirLock:
    """An exclusive flock on the container directory, released on exit."""

    def __init__(self, path):
        self.path = path
        self.fd = -1

    def __enter__(self):
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotExist(os.path.basename(self.path)) from None
        # imported here: the commands that only read (state, kill, list)
        # never lock and need not load the extension module
        import fcntl

        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def proc_start_time(pid):
    """The start time (clock ticks since boot) of ``pid`` and whether it is a
    zombie, or (0, False) if there is no such process.  Guards against pid
    reuse: a container's init is identified by (pid, start time)."""
    try:
        data = os.read_file(f"/proc/{pid}/stat")
    except (FileNotFoundError, ProcessLookupError):
        return 0, False
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[19]), fields[0] == b"Z"


def init_alive(state):
    if not state.init_pid:
        return False
    start, zombie = proc_start_time(state.init_pid)
    return start == state.init_start and not zombie


def status_of(state, store):
    """The container's status as runtime.md defines it."""
    if not state.init_pid:
        return "creating"
    if not init_alive(state):
        return "stopped"
    if os.path.exists(store.start_socket_path(state.id)):
        return "created"
    if state.paused:
        return "paused"
    return "running"
