"""create's config verdicts, cached by content.

``create`` validates config.json and converts it to the internal model on
every call: the imports of the validator and converter plus the work cost
about 3-4 ms of a ~50 ms create (docs/performance.md, "Config cache").  A
config that validated once gives the same verdict and the same model again
as long as nothing it depends on changed, so the verdict of a valid config
(its warning lines, the decoded document and the model) is kept in a file
named by a SHA-256 over everything the verdict depends on:

- the bytes of config.json, its path and the bundle directory (a relative
  root.path is resolved against it);
- ``--systemd-cgroup`` (it changes how linux.cgroupsPath is judged);
- pyrunc's version and the size, mtime and inode of every file of the
  validator and converter (pyrunc/config/*.py, process.py, syscalls.py
  with the flag values, the schemas);
- the host facts conversion reads: the kernel's capability count and this
  process's bounding set (unknown or ungrantable capabilities are warned
  about and dropped).

Only valid configs are cached: an invalid one takes the fresh path and
gets its own error line every time.  A hit replays the warnings to *warn*
in their order and returns the document and model as they were stored
(marshal keeps dicts, lists, tuples and scalars exactly).  An entry that
fails its checksum or does not decode is ignored and rewritten.

Where: ``/run/pyrunc-config-cache`` for root, ``$XDG_RUNTIME_DIR/pyrunc-
config-cache`` for an unprivileged caller (none without XDG_RUNTIME_DIR);
``PYRUNC_CONFIG_CACHE`` names another directory, or turns the cache off
when empty.  Not in the state root: a root holds one directory per
container and is empty once they are deleted, as runc's is (the tests
check it, engines list it); and not next to it either (an engine's runtime
root, such as containerd's /run/containerd/runc, holds its namespaces'
roots).  The key does not depend on the root, so one cache serves them all.
The directory is used only when it is this user's and not writable by
anyone else (an entry decides mounts and capabilities); it keeps at most
MAX_ENTRIES entries, the oldest removed first, and a memory-backed /run
forgets it at boot.
"""

import marshal
import os

from .. import __version__

try:  # the C module behind hashlib's sha256, without hashlib's OpenSSL import
    from _sha256 import sha256
except ImportError:  # Python 3.12+
    try:
        from _sha2 import sha256
    except ImportError:
        from hashlib import sha256

FORMAT = 1
MAX_ENTRIES = 64
MAX_ENTRY_BYTES = 1 << 20
_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../pyrunc
# the files whose code decides a verdict or a model
_CODE_DIRS = (os.path.join(_PKG, "config"), os.path.join(os.path.dirname(_PKG), "schemas"),
              os.path.join(_PKG, "schemas"))
_CODE_FILES = tuple(os.path.join(_PKG, name) for name in ("process.py", "syscalls.py", "__init__.py"))


def cache_dir(environ=os.environ):
    """The cache directory, or None when there is none."""
    if "PYRUNC_CONFIG_CACHE" in environ:
        return environ["PYRUNC_CONFIG_CACHE"] or None
    if os.geteuid() == 0:
        return "/run/pyrunc-config-cache"
    xdg = environ.get("XDG_RUNTIME_DIR")
    return os.path.join(xdg, "pyrunc-config-cache") if xdg else None


def host_facts():
    """What conversion reads from the host, as bytes for the key."""
    facts = []
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            facts.append(f.read().strip())
    except OSError:
        facts.append(b"?")
    try:
        with open("/proc/self/status", "rb") as f:
            facts += [line.strip() for line in f if line.startswith(b"CapBnd:")]
    except OSError:
        facts.append(b"?")
    return b"\0".join(facts)


def _code_stamp():
    parts = [__version__.encode()]
    for d in _CODE_DIRS:
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for name in names:
            if name.endswith((".py", ".json")):
                parts.append(_stat_stamp(os.path.join(d, name)))
    parts += [_stat_stamp(p) for p in _CODE_FILES]
    return b"\0".join(parts)


def _stat_stamp(path):
    try:
        st = os.stat(path)
    except OSError:
        return path.encode() + b":-"
    return b"%s:%d:%d:%d" % (path.encode(), st.st_size, st.st_mtime_ns, st.st_ino)


def entry_key(data, config_path, bundle, systemd_cgroup):
    h = sha256(b"pyrunc config cache %d\0" % FORMAT)
    for part in (_code_stamp(), host_facts(), os.fsencode(config_path), os.fsencode(bundle),
                 b"systemd" if systemd_cgroup else b"cgroupfs"):
        h.update(b"%d:" % len(part) + part)
    h.update(data)
    return h.hexdigest()


def _open_dir(path, create):
    """An fd of the cache dir, or None when there is none or it is not safe
    to trust (another owner, writable by others, a symlink)."""
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        os.close(fd)
        return None
    return fd


def _read_entry(dir_fd, key):
    """(warnings, doc, model dict) of a sound entry, else None."""
    try:
        fd = os.open(key, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_uid != os.geteuid():
            return None
        blob = b""
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            blob += chunk
    finally:
        os.close(fd)
    digest, payload = blob[:32], blob[32:]
    if len(digest) != 32 or sha256(payload).digest() != digest:
        return None
    try:
        fmt, stored_key, warnings, doc, model = marshal.loads(payload)
    except Exception:  # noqa: BLE001 - any undecodable entry is a miss
        return None
    if fmt != FORMAT or stored_key != key or not isinstance(warnings, list) \
            or not isinstance(doc, dict) or not isinstance(model, dict):
        return None
    return warnings, doc, model


def _write_entry(dir_fd, key, warnings, doc, model):
    try:
        payload = marshal.dumps((FORMAT, key, warnings, doc, model))
    except ValueError:  # an unmarshallable value: not cached
        return
    if len(payload) > MAX_ENTRY_BYTES:  # megabytes of annotations: not worth keeping
        return
    tmp = f".{key}.{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dir_fd)
        try:
            os.write(fd, sha256(payload).digest() + payload)
        finally:
            os.close(fd)
        os.replace(tmp, key, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        _evict(dir_fd)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass


def _evict(dir_fd):
    names = [n for n in os.listdir(dir_fd) if not n.startswith(".")]
    if len(names) <= MAX_ENTRIES:
        return
    aged = []
    for n in names:
        try:
            aged.append((os.stat(n, dir_fd=dir_fd, follow_symlinks=False).st_mtime_ns, n))
        except OSError:
            pass
    for _, n in sorted(aged)[:len(aged) - MAX_ENTRIES]:
        try:
            os.unlink(n, dir_fd=dir_fd)
        except OSError:
            pass


def fresh(config_path, bundle, systemd_cgroup, warn):
    """The uncached verdict: load, validate, convert (what create did
    before the cache); returns (doc, cfg) or raises ConfigError."""
    from ..container import _without_cgroups_path
    from .convert import convert
    from .validate import load_config, validate_config
    doc = load_config(config_path)
    # with --systemd-cgroup, cgroupsPath is slice:prefix:name, which the
    # systemd manager checks itself (the validator knows only cgroupfs paths)
    validate_config(_without_cgroups_path(doc) if systemd_cgroup else doc)
    return doc, convert(doc, bundle, warn=warn)


def load_validated(config_path, bundle, *, systemd_cgroup=False, warn=lambda line: None):
    """config.json at *config_path*, validated and converted: (doc, cfg),
    from the cache when an entry matches, else fresh (and then stored)."""
    from .model import Config
    path = cache_dir()
    if path is None:
        return fresh(config_path, bundle, systemd_cgroup, warn)
    try:
        with open(config_path, "rb") as f:
            data = f.read()
    except OSError:
        return fresh(config_path, bundle, systemd_cgroup, warn)  # the same error line as always
    key = entry_key(data, config_path, bundle, systemd_cgroup)
    dir_fd = _open_dir(path, create=False)
    try:
        hit = _read_entry(dir_fd, key) if dir_fd is not None else None
        if hit is not None:
            warnings, doc, model = hit
            for line in warnings:
                warn(line)
            return doc, Config.from_dict(model)
        lines = []

        def record(line):
            lines.append(line)
            warn(line)
        doc, cfg = fresh(config_path, bundle, systemd_cgroup, record)
        if dir_fd is None:
            dir_fd = _open_dir(path, create=True)
        if dir_fd is not None:
            # store only what was judged from the bytes the key names (the
            # file may have changed since it was read for the key)
            try:
                with open(config_path, "rb") as f:
                    same = f.read() == data
            except OSError:
                same = False
            if same:
                _write_entry(dir_fd, key, lines, doc, cfg.to_dict())
        return doc, cfg
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
