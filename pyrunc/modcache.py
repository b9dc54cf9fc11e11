"""The module cache: the compiled code of the modules pyrunc's commands
import, in one file the fast launcher reads once per call.

Why: every command starts a fresh interpreter, and an ordinary import of a
module from its ``.pyc`` costs a directory scan, several stats, an open and
a read per module -- about 100-150 us each on the machines measured here,
times the 40 to 80 modules a command imports (docs/performance.md).  Served
from this cache a module costs one ``stat`` of its source and the unmarshal
of its code, about a third of that.  The layout of the package (one module
per concern) therefore does not cost start-up time.

Correctness: an entry is used only while its source file has exactly the
size and modification time (ns) it had when the cache was built; otherwise
the finder answers "not mine" and the ordinary import machinery takes over.
So an edited tree, an upgraded package or an upgraded system Python never
runs stale code, they only lose the gain until the cache is rebuilt
(``python -m pyrunc.launcher`` or the first call of pip's script, which
rebuild it).  A module not in the cache is imported the ordinary way.

Trust: the file lives in the installation (``<venv>/sealed/``), written by
its owner, as the ``.pyc`` files next to the sources are.  It is opened for
each module served and closed again: a held fd could end up in a process
the container sees (a preserved-fd slot the caller left free).

The format (versioned by the interpreter's bytecode magic): 8 bytes of
index length, the marshalled index ``{module: (source path, mtime_ns, size,
is_package, offset, length)}``, then the marshalled code objects.  An
extension module's entry has offset -1: its shared object is loaded from the
recorded path (same size and mtime rule), which spares the path finder's
directory listings.
"""

import marshal
import posix  # not os: the launcher loads this module first, and os costs ~1.2 ms (lightos.py)
import sys

import _frozen_importlib  # the import system's own module: already loaded
import _frozen_importlib_external

CACHE_NAME = "modules.cache"
_MAGIC = _frozen_importlib_external.MAGIC_NUMBER

# The modules whose imports make up what the engines' commands load
# (create, start, run, exec, state, kill, delete, list, pause, resume, ps,
# update, events): the cache holds them and everything they import.
# Commands off this path (checkpoint, inspect, spec, the systemd driver)
# import the ordinary way.  tests/integration/test_modcache.py checks that
# the commands above open no .pyc.
HOT_MODULES = (
    "pyrunc.cli",
    "pyrunc.cli.lifecycle",
    "pyrunc.cli.exec",
    "pyrunc.cli.cgroup_cmds",
    "pyrunc.runtime",
    "pyrunc.records",
    "pyrunc.container",
    "pyrunc.creation",
    "pyrunc.execution",
    "pyrunc.stages.init",
    "pyrunc.stages.exec",
    "pyrunc.cgroups.v1",
    "pyrunc.cgroups.v2",
    "pyrunc.hooks",
    "pyrunc.netdev",
    "pyrunc.rootless",
    "pyrunc.caller",
    "pyrunc.seccomp",
    "pyrunc.config.validate",
    "pyrunc.config.host",
    "pyrunc.stages.jobs",
    "pyrunc.cgroups.stats",
    "pyrunc.cgroups.resources",
)


class CachedModules:
    """A meta path finder and loader over one cache file."""

    def __init__(self, path, identity, index, base):
        self.path = path
        self.identity = identity  # (inode, mtime_ns) of the file the index came from
        self.index = index
        self.base = base  # file offset of the first code object

    def find_spec(self, name, path=None, target=None):
        entry = self.index.get(name)
        if entry is None:
            return None
        source, mtime_ns, size, is_package = entry[:4]
        try:
            st = posix.stat(source)
        except OSError:
            return None
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            return None  # changed since the cache was built: the ordinary import
        if entry[4] < 0:
            # An extension module (_json, _socket, _ctypes...): its file by
            # name, without the path finder listing the /work or /usr/lib
            # directories that sys.path names first (~0.2 ms per command).
            loader = _frozen_importlib_external.ExtensionFileLoader(name, source)
            spec = _frozen_importlib.ModuleSpec(name, loader, origin=source)
            spec.has_location = True
            return spec
        # a loader by protocol (create_module, exec_module): importlib.abc would cost an import
        spec = _frozen_importlib.ModuleSpec(name, self, origin=source, is_package=is_package)  # type: ignore[arg-type]
        if is_package:
            spec.submodule_search_locations = [source.rpartition("/")[0]]
        spec.has_location = True  # __file__ is the source, as for an ordinary import
        return spec

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module):
        exec(self._code(module.__spec__.name, module.__spec__.origin), module.__dict__)

    def _code(self, name, source):
        """The module's code from the cache file.  The file is opened per
        module, not held: no fd of ours may outlive the import into a stage
        or a preserved-fd slot.  If the file was rebuilt meanwhile (another
        index), the code comes from the source instead."""
        offset, length = self.index[name][4:6]
        data = b""
        try:
            fd = posix.open(self.path, posix.O_RDONLY | posix.O_CLOEXEC)
            try:
                st = posix.fstat(fd)
                if (st.st_ino, st.st_mtime_ns) == self.identity:
                    data = posix.pread(fd, length, self.base + offset)
            finally:
                posix.close(fd)
        except OSError:
            pass
        if len(data) == length:
            return marshal.loads(data)
        return _frozen_importlib_external.SourceFileLoader(name, source).get_code(name)


def use(path):
    """Serve imports from the cache at ``path`` (first on sys.meta_path).
    A missing, unreadable or foreign-version file changes nothing."""
    try:
        fd = posix.open(path, posix.O_RDONLY | posix.O_CLOEXEC)
        try:
            st = posix.fstat(fd)
            length = int.from_bytes(posix.pread(fd, 8, 0), "little")
            magic, index = marshal.loads(posix.pread(fd, length, 8))
        finally:
            posix.close(fd)
    except (OSError, ValueError, EOFError, TypeError):
        return None
    if magic != _MAGIC:
        return None
    finder = CachedModules(path, (st.st_ino, st.st_mtime_ns), index, 8 + length)
    sys.meta_path.insert(0, finder)
    return finder


def build(path, modules=HOT_MODULES):
    """Import ``modules`` (with sys.path as the launcher sets it) and write
    the cache of every module then loaded from a ``.py`` file (and the path
    of every extension module then loaded), atomically.  Returns the number
    of modules cached."""
    import importlib
    import os

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional dependency that is not installed
            pass
    index, chunks, offset = {}, [], 0
    for name, module in sorted(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        source = getattr(spec, "origin", None)
        if not source or not os.path.isabs(source):
            continue  # built-in, frozen or namespace modules
        if isinstance(getattr(spec, "loader", None), _frozen_importlib_external.ExtensionFileLoader):
            st = os.stat(source)
            index[name] = (source, st.st_mtime_ns, st.st_size, False, -1, 0)
            continue
        if not source.endswith(".py"):
            continue
        with open(source, "rb") as f:
            st = os.fstat(f.fileno())
            code = compile(f.read(), source, "exec", dont_inherit=True)
        data = marshal.dumps(code)
        is_package = getattr(spec, "submodule_search_locations", None) is not None
        index[name] = (source, st.st_mtime_ns, st.st_size, is_package, offset, len(data))
        chunks.append(data)
        offset += len(data)
    head = marshal.dumps((_MAGIC, index))
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(len(head).to_bytes(8, "little"))
            f.write(head)
            f.writelines(chunks)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
    return len(index)
