"""seccomp: compile the OCI ``linux.seccomp`` object in the runtime, load it in the init.

The container init is a fork of the runtime and must not import anything once
it is inside the container's rootfs, so the work is split in two:

* :func:`compile_filter` runs once, at create (config/convert.py): it
  validates the config, builds the filter with libseccomp (through its
  Python bindings) and exports the BPF program into a
  ``config.model.Seccomp`` record, persisted with the rest of the model.
* :meth:`PreparedSeccomp.from_record` runs in the runtime before each fork
  (create, exec): it lays the stored program out as the kernel's ``struct
  sock_fprog``.  No libseccomp, no recompilation.
* :meth:`PreparedSeccomp.load` runs in the init right before ``execve``: one
  ``seccomp(SECCOMP_SET_MODE_FILTER)`` syscall, no imports, no libseccomp.

With ``SCMP_ACT_NOTIFY`` the load returns the listener fd; the runtime hands
it to the agent at ``listenerPath`` with :func:`send_listener`, on a socket
the runtime connected before the fork.

Nothing heavy is imported at module import: the bindings, ctypes, socket and
json are imported inside the functions that need them.
"""

from . import lightos as os  # os's calls without importing os (lightos.py)

from pyrunc.errors import ConfigError, PyruncError

# --- kernel ABI (linux/seccomp.h) -------------------------------------------
SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2

SECCOMP_FILTER_FLAG_TSYNC = 1 << 0
SECCOMP_FILTER_FLAG_LOG = 1 << 1
SECCOMP_FILTER_FLAG_SPEC_ALLOW = 1 << 2
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3
SECCOMP_FILTER_FLAG_TSYNC_ESRCH = 1 << 4
SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV = 1 << 5

SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_KILL_THREAD = 0x00000000
SECCOMP_RET_TRAP = 0x00030000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_USER_NOTIF = 0x7FC00000
SECCOMP_RET_TRACE = 0x7FF00000
SECCOMP_RET_LOG = 0x7FFC0000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_DATA = 0x0000FFFF

BPF_MAXINSNS = 4096  # the kernel refuses longer classic-BPF programs
_BPF_INSN_SIZE = 8  # struct sock_filter {u16 code; u8 jt, jf; u32 k;}

# --- OCI names ---------------------------------------------------------------
# The action values are the kernel's SECCOMP_RET_* (libseccomp's SCMP_ACT_* are
# the same numbers), so both bindings accept them as plain ints.
ACTIONS = {
    "SCMP_ACT_KILL": SECCOMP_RET_KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": SECCOMP_RET_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": SECCOMP_RET_KILL_PROCESS,
    "SCMP_ACT_TRAP": SECCOMP_RET_TRAP,
    "SCMP_ACT_ERRNO": SECCOMP_RET_ERRNO,
    "SCMP_ACT_TRACE": SECCOMP_RET_TRACE,
    "SCMP_ACT_ALLOW": SECCOMP_RET_ALLOW,
    "SCMP_ACT_LOG": SECCOMP_RET_LOG,
    "SCMP_ACT_NOTIFY": SECCOMP_RET_USER_NOTIF,
}
# Only these carry a 16-bit value: the errno, or the tracer's message number.
_ACTIONS_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")

# libseccomp's enum scmp_compare.
OPERATORS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}

# OCI architecture name -> libseccomp's name for seccomp_arch_resolve_name().
ARCHES = {
    f"SCMP_ARCH_{n}": n.lower()
    for n in (
        "X86",
        "X86_64",
        "X32",
        "ARM",
        "AARCH64",
        "MIPS",
        "MIPS64",
        "MIPS64N32",
        "MIPSEL",
        "MIPSEL64",
        "MIPSEL64N32",
        "PPC",
        "PPC64",
        "PPC64LE",
        "S390",
        "S390X",
        "PARISC",
        "PARISC64",
        "RISCV64",
        "LOONGARCH64",
        "M68K",
        "SH",
        "SHEB",
    )
}

FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": SECCOMP_FILTER_FLAG_TSYNC,
    "SECCOMP_FILTER_FLAG_LOG": SECCOMP_FILTER_FLAG_LOG,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": SECCOMP_FILTER_FLAG_SPEC_ALLOW,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

# After load() the init must still pass the listener fd to the runtime (one
# sendmsg) before anyone can answer a notification: a NOTIFY rule on that
# syscall would block the init forever.  runc has the same restriction.
NOTIFY_FORBIDDEN_SYSCALLS = ("sendmsg",)

# What the runtime still calls once a filter is loaded, as a filter sees it
# from this machine's processes: AUDIT_ARCH_*, and per use the syscall
# numbers.  "write": the init's commit byte to `start` (stages/init.py);
# "waiter": the init's last calls after an early filter (rt_sigaction,
# execveat) and the waiter's (prctl, pread64, close, accept4, sendto,
# execve, write, exit_group: waiter.py, waiter_x86_64.S); "waiter_label":
# those and the AppArmor label's (openat, fstatfs, openat2).  An
# architecture or use not listed is answered "maybe not".
_WAITER_X86_64 = (13, 322, 157, 17, 3, 288, 44, 59, 1, 231)
_AFTER_LOAD: dict[str, tuple[int, dict[str, tuple[int, ...]]]] = {
    "x86_64": (0xC000003E, {"write": (1,), "waiter": _WAITER_X86_64, "waiter_label": _WAITER_X86_64 + (257, 138, 437)}),
    "aarch64": (0xC00000B7, {"write": (64,)}),
}


def after_load_allowed(bpf):
    """The uses of _AFTER_LOAD whose calls ``bpf`` allows whatever their
    arguments (computed once, at compile: ``config.model.Seccomp.allows``)."""
    arch, uses = _AFTER_LOAD.get(os.uname().machine, (0, {}))
    return sorted(use for use, nrs in uses.items() if allows_all_whatever_the_arguments(bpf, nrs, arch))


_SCMP_ERROR = -1  # __NR_SCMP_ERROR: libseccomp does not know the name
_SCMP_ARCH_NATIVE = 0
_LIBSECCOMP_SONAME = "libseccomp.so.2"


class PreparedSeccomp:
    """A compiled filter, ready to be installed by :meth:`load`.

    ``bpf`` is the program (8 bytes per instruction), ``flags`` the
    SECCOMP_FILTER_FLAG_* bits from the config, ``uses_notify`` whether any
    rule is SCMP_ACT_NOTIFY, ``skipped_syscalls`` the names libseccomp did not
    know (left out of the filter).
    """

    def __init__(
        self,
        bpf,
        flags=0,
        *,
        uses_notify=False,
        listener_path=None,
        listener_metadata="",
        skipped_syscalls=(),
        allows=None,
    ):
        from pyrunc.linux import ffi, syscalls

        if len(bpf) % _BPF_INSN_SIZE or not bpf:
            raise ValueError(f"seccomp: BPF program of {len(bpf)} bytes is not whole instructions")
        self.bpf = bytes(bpf)
        self.flags = flags
        self.uses_notify = uses_notify
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata
        self.skipped_syscalls = tuple(skipped_syscalls)

        # Everything load() touches is built here, in the runtime: the init
        # only makes the syscall.
        class SockFprog(ffi.Structure):
            _fields_ = [("len", ffi.c_ushort), ("filter", ffi.c_void_p)]

        self._insns = ffi.create_string_buffer(self.bpf, len(self.bpf))
        self._fprog = SockFprog(len(self.bpf) // _BPF_INSN_SIZE, ffi.addressof(self._insns))
        self._syscalls = syscalls
        self._load_flags = self.load_flags()
        # What the runtime may still call once this filter is loaded
        # (after_load_allowed; the record's, else computed here).
        self.allows = frozenset(after_load_allowed(self.bpf) if allows is None else allows)
        # whether the init may still write to the start socket
        # (stages/init.py, process.finalize_and_exec)
        self.allows_write = "write" in self.allows

    @classmethod
    def from_record(cls, record):
        """The loadable form of a ``config.model.Seccomp`` (the compiled program)."""
        return cls(
            record.bpf,
            record.flags,
            uses_notify=record.uses_notify,
            listener_path=record.listener_path,
            listener_metadata=record.listener_metadata,
            skipped_syscalls=record.skipped_syscalls,
            allows=record.allows,
        )

    @property
    def instructions(self):
        return len(self.bpf) // _BPF_INSN_SIZE

    def load_flags(self):
        """The flags actually passed to seccomp(2).

        NEW_LISTENER is added when a rule notifies.  WAIT_KILLABLE_RECV only
        means something for a listener (the kernel rejects it otherwise), so
        it is dropped without one.  TSYNC and NEW_LISTENER together need
        TSYNC_ESRCH (the kernel could not return both an fd and a tid).
        """
        flags = self.flags
        if self.uses_notify:
            flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER
            if flags & SECCOMP_FILTER_FLAG_TSYNC:
                flags |= SECCOMP_FILTER_FLAG_TSYNC_ESRCH
        else:
            flags &= ~SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
        return flags

    def load(self):
        """Install the filter on the calling thread (in the init, just before
        execve).  Returns the notify listener fd (close-on-exec) when the
        filter notifies, else None.  Raises OSError from seccomp(2), e.g.
        EACCES without no_new_privs or CAP_SYS_ADMIN."""
        ret = self._syscalls.seccomp(SECCOMP_SET_MODE_FILTER, self._load_flags, self._fprog)
        return ret if self.uses_notify else None


def allows_whatever_the_arguments(bpf, nr, arch):
    """Whether the classic-BPF program ``bpf`` answers SECCOMP_RET_ALLOW (or
    LOG) to syscall ``nr`` on ``arch`` without reading its arguments or the
    instruction pointer: then it allows that call, whatever they are."""
    return allows_all_whatever_the_arguments(bpf, (nr,), arch)


def allows_all_whatever_the_arguments(bpf, nrs, arch):
    """:func:`allows_whatever_the_arguments` for every syscall of ``nrs``,
    in one walk: the program is run on the set of seccomp_data that differ
    only in the number, and a jump on the number splits the set.  An
    instruction outside what libseccomp emits for such a path answers
    False."""
    import struct

    if not nrs or min(nrs) < 0:
        return False
    # struct sock_filter, on the little-endian machines of _AFTER_LOAD
    program = list(struct.iter_unpack("<HBBI", bpf[: len(bpf) - len(bpf) % _BPF_INSN_SIZE]))
    n = len(program)
    # Each path: (pc, the accumulator: None for "the number, masked by
    # mask" or a constant, mask, the numbers on this path).
    paths: list[tuple[int, int | None, int, frozenset[int]]] = [(0, 0, 0xFFFFFFFF, frozenset(nrs))]
    while paths:
        pc, const, mask, group = paths.pop()
        while True:
            if not 0 <= pc < n:
                return False
            code, jt, jf, k = program[pc]
            pc += 1
            if code == 0x15 and const is None and mask == 0xFFFFFFFF:  # JEQ on the number: most of them
                if k not in group:
                    pc += jf
                elif len(group) == 1:
                    pc += jt
                else:
                    paths.append((pc + jt, None, mask, frozenset((k,))))
                    group = group - {k}
                    pc += jf
            elif code == 0x20:  # BPF_LD|BPF_W|BPF_ABS: a field of seccomp_data
                if k == 0:
                    const, mask = None, 0xFFFFFFFF
                elif k == 4:
                    const = arch
                else:
                    return False  # the instruction pointer or an argument
            elif code == 0x00:  # BPF_LD|BPF_IMM
                const = k
            elif code == 0x54:  # BPF_ALU|BPF_AND|BPF_K
                if const is None:
                    mask &= k
                else:
                    const &= k
            elif code == 0x05:  # BPF_JMP|BPF_JA
                pc += k
            elif code in _JUMPS:
                test = _JUMPS[code]
                if const is not None:
                    pc += jt if test(const, k) else jf
                    continue
                taken = frozenset(nr for nr in group if test(nr & mask, k))
                if taken and taken != group:
                    paths.append((pc + jt, None, mask, taken))
                    group = group - taken
                    pc += jf
                else:
                    pc += jt if taken else jf
            elif code == 0x06:  # BPF_RET|BPF_K
                if (k & 0xFFFF0000) not in (SECCOMP_RET_ALLOW, SECCOMP_RET_LOG):  # the action, not its data
                    return False
                break
            else:
                return False
    return True


_JUMPS = {
    0x15: lambda a, k: a == k,  # BPF_JMP|BPF_JEQ|BPF_K
    0x25: lambda a, k: a > k,  # BPF_JGT
    0x35: lambda a, k: a >= k,  # BPF_JGE
    0x45: lambda a, k: bool(a & k),  # BPF_JSET
}


# --- compiling ------------------------------------------------------------------


def _bindings():
    """libseccomp's Python bindings: the official ``seccomp`` module, else the
    ``pyseccomp`` ctypes twin.

    pyseccomp locates its libraries with ctypes.util.find_library at import,
    which runs ``ldconfig -p`` twice; the runtime must not spawn processes, so
    that lookup is answered with the sonames while it imports.  Unless some
    other code loaded ctypes.util already, the answer comes from a stand-in
    module: the real one imports subprocess, shutil, tempfile and more (about
    50 modules, 10 ms or more of every create with a seccomp profile, which
    is every create by podman and Docker), only for pyseccomp's two lookups.
    """
    try:
        import seccomp

        return seccomp
    except ImportError:
        pass
    import sys

    if "pyseccomp" in sys.modules:
        return sys.modules["pyseccomp"]
    import ctypes

    # "c" -> None: CDLL(None) is the libc the interpreter already has mapped.
    known = {"c": None, "seccomp": _LIBSECCOMP_SONAME}
    util = sys.modules.get("ctypes.util")
    if util is not None:
        real = util.find_library
        util.find_library = lambda name: known[name] if name in known else real(name)  # type: ignore[attr-defined]
    else:
        stand_in = type(sys)("ctypes.util")
        stand_in.find_library = lambda name: known[name] if name in known else _real_find_library(stand_in, name)  # type: ignore[attr-defined]
        sys.modules["ctypes.util"] = stand_in
        ctypes.util = stand_in  # type: ignore[attr-defined]
    try:
        import pyseccomp
    except (ImportError, OSError, RuntimeError) as e:
        raise PyruncError(f"seccomp: libseccomp is not available: {e}") from None
    finally:
        if util is not None:
            util.find_library = real  # type: ignore[attr-defined]
        else:
            _drop_stand_in(stand_in)
    return pyseccomp


def _drop_stand_in(stand_in):
    """Take the ctypes.util stand-in out of sys.modules and the ctypes package."""
    import ctypes
    import sys

    if sys.modules.get("ctypes.util") is stand_in:
        del sys.modules["ctypes.util"]
    if getattr(ctypes, "util", None) is stand_in:
        del ctypes.util  # type: ignore[attr-defined]


def _real_find_library(stand_in, name):
    """A name the stand-in does not know (a pyseccomp we have not seen): the
    real ctypes.util answers."""
    import importlib

    _drop_stand_in(stand_in)
    return importlib.import_module("ctypes.util").find_library(name)


_libseccomp_handle = None


def _libseccomp():
    """libseccomp itself (for what the bindings do not expose: the version and
    architecture names), or None when the library is missing."""
    global _libseccomp_handle
    if _libseccomp_handle is None:
        from pyrunc.linux import ffi

        try:
            lib = ffi.Library(_LIBSECCOMP_SONAME)
        except OSError:
            return None
        lib.seccomp_arch_resolve_name.argtypes = [ffi.c_char_p]
        lib.seccomp_arch_resolve_name.restype = ffi.c_uint32
        _libseccomp_handle = lib
    return _libseccomp_handle


def _where(field, *parts):
    return "config.json: " + field + "".join(parts)


def _errno_value(value, where):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= SECCOMP_RET_DATA:
        raise ConfigError(f"{where}: {value!r} is not an integer between 0 and {SECCOMP_RET_DATA}")
    return value


def _action(name, errno_ret, where, errno_field):
    """The kernel action value for an OCI action name plus its errnoRet."""
    if not isinstance(name, str) or name not in ACTIONS:
        raise ConfigError(f"{where}: {_show(name)} is not a known action (one of {', '.join(ACTIONS)})")
    value = ACTIONS[name]
    if name in _ACTIONS_WITH_ERRNO:
        import errno

        ret = errno.EPERM if errno_ret is None else _errno_value(errno_ret, errno_field)
        return value | ret
    if errno_ret is not None:
        raise ConfigError(f"{errno_field}: {name} does not take an errno (only {' and '.join(_ACTIONS_WITH_ERRNO)} do)")
    return value


def _show(v):
    import json

    return json.dumps(v)


def _uint64(value, where):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise ConfigError(f"{where}: {value!r} is not an unsigned 64-bit integer")
    return value


def _list_of(value, where, what):
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(f"{where}: must be an array of {what}")
    return value


def _conditions(binding, args, where):
    """OCI args -> libseccomp Arg objects.  For MASKED_EQ ``value`` is the
    mask and ``valueTwo`` the value the masked argument must equal."""
    out = []
    for j, arg in enumerate(_list_of(args, where, "objects")):
        at = f"{where}[{j}]"
        if not isinstance(arg, dict):
            raise ConfigError(f"{at}: must be an object")
        index = arg.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 5:
            raise ConfigError(f"{at}.index: {index!r} is not a syscall argument index (0 to 5)")
        op = arg.get("op")
        if not isinstance(op, str) or op not in OPERATORS:
            raise ConfigError(f"{at}.op: {_show(op)} is not a known operator (one of {', '.join(OPERATORS)})")
        if "value" not in arg:
            raise ConfigError(f"{at}.value: is required")
        value = _uint64(arg["value"], f"{at}.value")
        value_two = _uint64(arg.get("valueTwo", 0), f"{at}.valueTwo")
        out.append(binding.Arg(index, OPERATORS[op], value, value_two))
    indexes = [a["index"] for a in args or ()]
    if 1 < len(set(indexes)) < len(indexes):
        # Same-index conditions are alternatives (see prepare); mixed with
        # other arguments there is no rule libseccomp can express.
        raise ConfigError(
            f"{where}: several conditions on one argument are only allowed when every condition is on that argument"
        )
    return out


def _resolve_arch(name, where):
    if not isinstance(name, str) or name not in ARCHES:
        raise ConfigError(f"{where}: {_show(name)} is not a known architecture (one of {', '.join(ARCHES)})")
    lib = _libseccomp()
    token = lib.seccomp_arch_resolve_name(ARCHES[name].encode()) if lib else 0
    if not token:
        raise ConfigError(f"{where}: {name} is not supported by libseccomp {libseccomp_version() or '(missing)'}")
    return token


def _flag_bits(flags, where):
    bits = 0
    for i, name in enumerate(_list_of(flags, where, "strings")):
        if not isinstance(name, str) or name not in FLAGS:
            raise ConfigError(f"{where}[{i}]: {_show(name)} is not a known flag (one of {', '.join(FLAGS)})")
        if not _kernel_has_flag(FLAGS[name]):
            raise ConfigError(f"{where}[{i}]: {name} is not supported by this kernel")
        bits |= FLAGS[name]
    return bits


def _export(filt):
    """The filter's BPF program, via a memfd (a pipe could fill up and block
    on a large filter)."""
    fd = os.memfd_create("pyrunc-seccomp-bpf", os.MFD_CLOEXEC)
    try:
        with open(fd, "rb", closefd=False) as handle:
            filt.export_bpf(handle)
        size = os.lseek(fd, 0, os.SEEK_END)
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while size > 0:
            chunk = os.read(fd, size)
            if not chunk:
                break
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def prepare(linux_seccomp, field="linux.seccomp"):
    """Compile the OCI ``linux.seccomp`` object into a :class:`PreparedSeccomp`
    (:func:`compile_filter`, then the loadable form)."""
    return PreparedSeccomp.from_record(compile_filter(linux_seccomp, field))


# --- the host's cache of compiled filters -------------------------------------
# Engines pass the same profile with every container (podman's and Docker's
# defaults: 350-450 syscall names), and compiling it is most of what such a
# create spends beyond runc: importing the bindings and building the filter,
# ~25 ms of CPU (docs/performance.md).  The program depends only on the
# profile, libseccomp, the kernel and this code, so it is kept per host, by
# the hash of all four, in a directory only root can write: its entries are
# loaded into containers as their filter, so an entry is used only when the
# directory and the file are root's, written by nobody else, and not links.
# /run is a tmpfs: the cache starts empty at every boot (a kernel change
# needs one).  Rootless callers and any failure compile as before.

CACHE_DIR = "/run/pyrunc-seccomp-cache"
_CACHE_FORMAT = 3  # 2: Seccomp.allows; 3: its "waiter_label"
_CACHE_MAX_BYTES = 1 << 20  # 4096 instructions are 64 KiB of hex; anything far larger is not ours


def compile_cached(linux_seccomp, field="linux.seccomp", cache_dir=CACHE_DIR):
    """:func:`compile_filter`, answered from the host's cache when the same
    profile was compiled before by this code, libseccomp and kernel.  A hit
    gives the record a fresh compile gives (and its debug lines); invalid
    profiles are never cached (they fail in compile_filter every time)."""
    key = _cache_key(linux_seccomp, cache_dir)
    if key is not None:
        record = _cache_read(cache_dir, key)
        if record is not None:
            if record.skipped_syscalls:
                from pyrunc.log import log

                for name in record.skipped_syscalls:
                    log.debug(f"seccomp: syscall {name!r} is unknown to libseccomp {libseccomp_version()}, skipped")
            return record
    record = compile_filter(linux_seccomp, field)
    if key is not None:
        _cache_write(cache_dir, key, record)
    return record


def _cache_key(linux_seccomp, cache_dir):
    """The entry's name, or None when this caller keeps no cache (not root).

    The SHA-256 of the profile as parsed (repr of the JSON values: the same
    document gives the same text; a profile written in another key order is
    only a miss) with everything else the program depends on.  _sha256 is
    built into the interpreter: hashlib would load OpenSSL (ms)."""
    if os.geteuid() != 0 or not cache_dir:
        return None
    import _sha256

    try:
        version = libseccomp_version()
        if version is None:
            return None
        here = os.path.dirname(os.path.abspath(__file__))
        code = [
            (name, st.st_size, st.st_mtime_ns)
            for name in ("seccomp.py", "config/model.py")
            for st in (os.stat(os.path.join(here, name)),)
        ]
        uname = os.uname()
        from pyrunc import __version__

        text = repr([_CACHE_FORMAT, __version__, code, version, uname.machine, uname.release, linux_seccomp])
    except OSError:
        return None
    return _sha256.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _trusted_dir(cache_dir, create):
    """An fd of the cache directory if it is root's and only root's (made
    when ``create``), else None."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(cache_dir, flags)
    except FileNotFoundError:
        if not create:
            return None
        try:
            os.mkdir(cache_dir, 0o700)
            fd = os.open(cache_dir, flags)
        except OSError:
            return None
    except OSError:
        return None
    st = os.fstat(fd)
    if st.st_uid != 0 or st.st_mode & 0o077:
        os.close(fd)
        return None
    return fd


def _cache_read(cache_dir, key):
    from pyrunc import fastjson

    dfd = _trusted_dir(cache_dir, create=False)
    if dfd is None:
        return None
    try:
        fd = os.open(key, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            st = os.fstat(fd)
            import stat

            if not stat.S_ISREG(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o022 or st.st_nlink != 1:
                return None
            if st.st_size > _CACHE_MAX_BYTES:
                return None
            data = os.read(fd, st.st_size + 1)
        finally:
            os.close(fd)
        entry = fastjson.loads(data)
        if entry.get("key") != key:
            return None
        from pyrunc.config.model import Seccomp

        record = Seccomp.from_dict(entry["record"])
        if not record.bpf_hex or len(bytes.fromhex(record.bpf_hex)) % _BPF_INSN_SIZE:
            return None  # not a program
        return record
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    finally:
        os.close(dfd)


def _cache_write(cache_dir, key, record):
    """Write the entry atomically (a reader sees all of it or nothing); a
    failure only means no entry."""
    from pyrunc import fastjson

    dfd = _trusted_dir(cache_dir, create=True)
    if dfd is None:
        return
    tmp = f".{key}.{os.getpid()}.tmp"
    try:
        data = fastjson.dumps({"key": key, "record": record.to_dict()}, compact=True).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, key, src_dir_fd=dfd, dst_dir_fd=dfd)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=dfd)
        except OSError:
            pass
    finally:
        os.close(dfd)


def compile_filter(linux_seccomp, field="linux.seccomp"):
    """Compile the OCI ``linux.seccomp`` object into a ``config.model.Seccomp``.

    Runs once, at conversion (create, restore).  Invalid input raises ConfigError
    naming the field; syscall names this libseccomp does not know are left
    out with a debug log line (as runc does); rules whose action equals the
    default action are redundant and left out (libseccomp refuses them).
    """
    if not isinstance(linux_seccomp, dict):
        raise ConfigError(f"{_where(field)}: must be an object")
    sc = linux_seccomp
    if "defaultAction" not in sc:
        raise ConfigError(f"{_where(field, '.defaultAction')}: is required")
    default = _action(
        sc["defaultAction"],
        sc.get("defaultErrnoRet"),
        _where(field, ".defaultAction"),
        _where(field, ".defaultErrnoRet"),
    )
    if default == SECCOMP_RET_USER_NOTIF:
        raise ConfigError(
            f"{_where(field, '.defaultAction')}: SCMP_ACT_NOTIFY cannot be the "
            "default action (the init could not hand over the listener)"
        )
    flags = _flag_bits(sc.get("flags"), _where(field, ".flags"))
    listener_path = sc.get("listenerPath") or None
    metadata = sc.get("listenerMetadata") or ""
    if listener_path is not None and not isinstance(listener_path, str):
        raise ConfigError(f"{_where(field, '.listenerPath')}: must be a string")
    if not isinstance(metadata, str):
        raise ConfigError(f"{_where(field, '.listenerMetadata')}: must be a string")
    if metadata and listener_path is None:
        raise ConfigError(f"{_where(field, '.listenerMetadata')}: must not be set without linux.seccomp.listenerPath")
    arch_tokens = [
        _resolve_arch(a, _where(field, f".architectures[{i}]"))
        for i, a in enumerate(_list_of(sc.get("architectures"), _where(field, ".architectures"), "strings"))
    ]

    binding = _bindings()
    try:
        filt = binding.SyscallFilter(default)
    except Exception as e:  # the bindings raise RuntimeError/ValueError/OSError
        raise ConfigError(f"{_where(field, '.defaultAction')}: libseccomp refused {sc['defaultAction']}: {e}") from None
    for i, token in enumerate(arch_tokens):
        try:
            if not filt.exist_arch(token):
                filt.add_arch(token)
        except Exception as e:
            import errno

            why = (
                f"it cannot share a filter with {os.uname().machine} (different byte order)"
                if getattr(e, "errno", None) == errno.EDOM
                else _describe(e)
            )
            raise ConfigError(
                f"{_where(field, f'.architectures[{i}]')}: libseccomp refused {sc['architectures'][i]}: {why}"
            ) from None

    from pyrunc.log import log

    uses_notify = False
    skipped = []
    rules_field = _where(field, ".syscalls")
    for i, rule in enumerate(_list_of(sc.get("syscalls"), rules_field, "objects")):
        at = f"{rules_field}[{i}]"
        if not isinstance(rule, dict):
            raise ConfigError(f"{at}: must be an object")
        names = rule.get("names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(f"{at}.names: must be a non-empty array of syscall names")
        if "action" not in rule:
            raise ConfigError(f"{at}.action: is required")
        action = _action(rule["action"], rule.get("errnoRet"), f"{at}.action", f"{at}.errnoRet")
        conditions = _conditions(binding, rule.get("args"), f"{at}.args")
        if action == SECCOMP_RET_USER_NOTIF:
            for name in names:
                if name in NOTIFY_FORBIDDEN_SYSCALLS:
                    raise ConfigError(
                        f"{at}.action: SCMP_ACT_NOTIFY cannot be used for {name} "
                        "(the init needs it to hand over the listener)"
                    )
        if action == default:
            continue
        # Several conditions on one argument can only mean "any of these
        # values" (a single value cannot equal two): one rule per condition,
        # as Docker's profiles expect.  Otherwise all conditions hold at once.
        if len(conditions) > 1 and len({a.get("index") for a in rule["args"]}) == 1:
            condition_sets = [[c] for c in conditions]
        else:
            condition_sets = [conditions]
        for name in names:
            try:
                number = binding.resolve_syscall(_SCMP_ARCH_NATIVE, name)
            except ValueError:
                number = _SCMP_ERROR
            if number == _SCMP_ERROR:
                skipped.append(name)
                log.debug(f"seccomp: syscall {name!r} is unknown to libseccomp {libseccomp_version()}, skipped")
                continue
            for conds in condition_sets:
                try:
                    filt.add_rule(action, name, *conds)
                except Exception as e:
                    raise ConfigError(f"{at}: libseccomp refused the rule for {name}: {_describe(e)}") from None
            if action == SECCOMP_RET_USER_NOTIF:
                uses_notify = True

    bpf = _export(filt)
    if len(bpf) // _BPF_INSN_SIZE > BPF_MAXINSNS:
        raise ConfigError(
            f"{_where(field)}: the compiled filter has {len(bpf) // _BPF_INSN_SIZE} "
            f"instructions, the kernel accepts at most {BPF_MAXINSNS}"
        )
    from pyrunc.config.model import Seccomp

    return Seccomp(
        bpf_hex=bpf.hex(),
        flags=flags,
        uses_notify=uses_notify,
        listener_path=listener_path,
        listener_metadata=metadata,
        skipped_syscalls=skipped,
        allows=after_load_allowed(bpf),
    )


def _describe(exc):
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


# --- notify -------------------------------------------------------------------


def send_listener(sock, listener_fd, pid, state, metadata=""):
    """Hand the notify fd to the seccomp agent, then close ``sock``.

    ``sock``: connected by the runtime to ``listenerPath`` before the fork
    (the path is the host's).  One message: the container process state
    (``ociVersion``, ``fds: ["seccompFd"]``, ``pid`` of the process that
    loaded the filter, ``metadata`` when set, ``state``: the container's)
    with ``listener_fd`` attached.  Runs in a stage that may have entered
    the container's root: it uses only modules loaded before the fork
    (socket, by console.connect_unix; fastjson)."""
    import socket
    from pyrunc import fastjson

    doc = {"ociVersion": state.get("ociVersion") or "1.3.0", "fds": ["seccompFd"], "pid": pid, "state": state}
    if metadata:
        doc["metadata"] = metadata
    payload = fastjson.dumps(doc, compact=True).encode()
    try:
        sent = socket.send_fds(sock, [payload], [listener_fd])
        if sent < len(payload):
            sock.sendall(payload[sent:])
    finally:
        sock.close()


# --- what this machine supports ---------------------------------------------------


def _kernel_has_flag(flag):
    """Probe a filter flag the way libseccomp does: with a NULL program the
    kernel answers EFAULT if it accepts the flags and EINVAL if not.
    WAIT_KILLABLE_RECV is only valid together with NEW_LISTENER."""
    from pyrunc.linux import syscalls

    if flag == SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV:
        flag |= SECCOMP_FILTER_FLAG_NEW_LISTENER
    try:
        syscalls.seccomp(SECCOMP_SET_MODE_FILTER, flag, None)
    except OSError as e:
        import errno

        return e.errno == errno.EFAULT
    return False  # cannot happen: a NULL program never installs


def _kernel_has_action(action):
    from pyrunc.linux import ffi, syscalls

    try:
        syscalls.seccomp(SECCOMP_GET_ACTION_AVAIL, 0, ffi.c_uint32(action))
    except OSError:
        return False
    return True


def supported():
    """The ``linux.seccomp`` object of ``pyrunc features``, true for this
    machine: ``enabled`` needs libseccomp and a kernel with seccomp filters;
    ``archs`` are the ones this libseccomp knows; ``supportedFlags`` the
    known flags this kernel accepts."""
    try:
        _bindings()
        lib = _libseccomp()
    except PyruncError:
        lib = None
    kernel = _kernel_has_flag(0)
    archs = sorted(
        n for n, lname in ARCHES.items() if lib is not None and lib.seccomp_arch_resolve_name(lname.encode())
    )
    return {
        "enabled": lib is not None and kernel,
        "actions": sorted(ACTIONS),
        "operators": sorted(OPERATORS),
        "archs": archs,
        "knownFlags": sorted(FLAGS),
        "supportedFlags": sorted(n for n, bit in FLAGS.items() if kernel and _kernel_has_flag(bit)),
    }


def libseccomp_version():
    """``"2.5.4"``, or None when libseccomp is not installed."""
    from pyrunc.linux import ffi

    lib = _libseccomp()
    if lib is None:
        return None

    class Version(ffi.Structure):
        _fields_ = [("major", ffi.c_uint), ("minor", ffi.c_uint), ("micro", ffi.c_uint)]

    lib.seccomp_version.restype = ffi.POINTER(Version)
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"
