"""The one place where pyrunc calls the kernel through ctypes (its C
module, through ``linux/ffi.py``: ``import ctypes`` itself costs ~1.5 ms).

Every wrapper raises ``OSError(errno, strerror, path)`` on failure, so that
error lines name what failed (``mount /proc: [Errno 1] ...``).  libc is
loaded as the already-mapped C library of the interpreter (``CDLL(None)``):
no ``ctypes.util.find_library``, which would spawn ``ldconfig`` — inside a
container that would run an image binary (docs/security.md, "The Python
runtime's own hazards").

Syscalls without a libc wrapper go through ``syscall(2)`` with the numbers of
the running architecture (x86_64 and aarch64 are known).

Only what the standard library lacks lives here; ``os`` already has fork,
setresuid, setgroups, mknod (dir_fd), pidfd_open, etc.
"""

from .. import lightos as os  # os's calls without importing os (lightos.py)

from . import ffi

_libc = ffi.Library()
_syscall = _libc.syscall
_syscall.restype = ffi.c_long

# --- syscall numbers -------------------------------------------------------
_NR = {
    "x86_64": dict(
        pivot_root=155,
        capget=125,
        capset=126,
        setns=308,
        unshare=272,
        open_tree=428,
        move_mount=429,
        fsopen=430,
        fsconfig=431,
        fsmount=432,
        pidfd_send_signal=424,
        close_range=436,
        openat2=437,
        mount_setattr=442,
        seccomp=317,
        bpf=321,
        sched_setattr=314,
        ioprio_set=251,
        set_mempolicy=238,
        personality=135,
        keyctl=250,
        clone3=435,
        gettid=186,
    ),
    "aarch64": dict(
        pivot_root=41,
        capget=90,
        capset=91,
        setns=268,
        unshare=97,
        open_tree=428,
        move_mount=429,
        fsopen=430,
        fsconfig=431,
        fsmount=432,
        pidfd_send_signal=424,
        close_range=436,
        openat2=437,
        mount_setattr=442,
        seccomp=277,
        bpf=280,
        sched_setattr=274,
        ioprio_set=30,
        set_mempolicy=237,
        personality=92,
        keyctl=219,
        clone3=435,
        gettid=178,
    ),
}[os.uname().machine]  # = platform.machine(), without platform's import (re, enum)

# --- constants -------------------------------------------------------------
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

AT_FDCWD = -100
AT_RECURSIVE = 0x8000
AT_EMPTY_PATH = 0x1000

OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_CMD_CREATE = 6

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000

RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

CLOSE_RANGE_CLOEXEC = 1 << 2

PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_SET_THP_DISABLE = 41
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

PROC_SUPER_MAGIC = 0x9FA0

TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441


def _check(ret, what, path=None):
    if ret < 0:
        err = ffi.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def _b(s):
    if s is None:
        return None
    return s if isinstance(s, bytes) else os.fsencode(s)


# --- mounts ----------------------------------------------------------------
_libc.mount.argtypes = [ffi.c_char_p, ffi.c_char_p, ffi.c_char_p, ffi.c_ulong, ffi.c_char_p]
_libc.umount2.argtypes = [ffi.c_char_p, ffi.c_int]


def mount(source, target, fstype, flags=0, data=None, *, display=None):
    """mount(2).  ``display`` names the target in errors when ``target`` is
    an fd path such as /proc/self/fd/7."""
    ret = _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data))
    _check(ret, "mount", display or target)


def umount2(target, flags=0):
    _check(_libc.umount2(_b(target), flags), "umount", target)


def pivot_root(new_root, put_old):
    _check(_syscall(_NR["pivot_root"], _b(new_root), _b(put_old)), "pivot_root", new_root)


def open_tree(dirfd, path, flags):
    return _check(_syscall(_NR["open_tree"], ffi.c_int(dirfd), _b(path), ffi.c_uint(flags)), "open_tree", path)


def move_mount(from_fd, from_path, to_fd, to_path, flags, *, display=None):
    ret = _syscall(
        _NR["move_mount"], ffi.c_int(from_fd), _b(from_path), ffi.c_int(to_fd), _b(to_path), ffi.c_uint(flags)
    )
    _check(ret, "move_mount", display or to_path)


def bind_fd(source_fd, target_fd, *, display=None):
    """Bind what ``source_fd`` names onto what ``target_fd`` names, both
    O_PATH fds (a detached clone, then move_mount: no path string between
    check and use)."""
    tree = open_tree(source_fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH)
    try:
        move_mount(tree, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH, display=display)
    finally:
        os.close(tree)


def fsopen(fstype, flags=FSOPEN_CLOEXEC):
    return _check(_syscall(_NR["fsopen"], _b(fstype), ffi.c_uint(flags)), "fsopen", fstype)


def fsconfig(fd, cmd, key=None, value=None, aux=0):
    ret = _syscall(_NR["fsconfig"], ffi.c_int(fd), ffi.c_uint(cmd), _b(key), _b(value), ffi.c_int(aux))
    _check(ret, "fsconfig", key)


def fsmount(fd, flags=FSMOUNT_CLOEXEC, attr_flags=0):
    return _check(_syscall(_NR["fsmount"], ffi.c_int(fd), ffi.c_uint(flags), ffi.c_uint(attr_flags)), "fsmount")


class MountAttr(ffi.Structure):
    _fields_ = [
        ("attr_set", ffi.c_uint64),
        ("attr_clr", ffi.c_uint64),
        ("propagation", ffi.c_uint64),
        ("userns_fd", ffi.c_uint64),
    ]


def mount_setattr(dirfd, path, flags, attr_set=0, attr_clr=0, propagation=0, userns_fd=0, *, display=None):
    attr = MountAttr(attr_set, attr_clr, propagation, userns_fd)
    ret = _syscall(
        _NR["mount_setattr"],
        ffi.c_int(dirfd),
        _b(path),
        ffi.c_uint(flags),
        ffi.byref(attr),
        ffi.c_size_t(ffi.sizeof(attr)),
    )
    _check(ret, "mount_setattr", display or path)


# --- paths -----------------------------------------------------------------
class OpenHow(ffi.Structure):
    _fields_ = [("flags", ffi.c_uint64), ("mode", ffi.c_uint64), ("resolve", ffi.c_uint64)]


def openat2(dirfd, path, flags, resolve, mode=0, *, display=None):
    """openat2(2); the returned fd is always O_CLOEXEC."""
    how = OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    ret = _syscall(_NR["openat2"], ffi.c_int(dirfd), _b(path), ffi.byref(how), ffi.c_size_t(ffi.sizeof(how)))
    return _check(ret, "openat2", display or path)


def close_range(first, last, flags=0):
    _check(_syscall(_NR["close_range"], ffi.c_uint(first), ffi.c_uint(last), ffi.c_uint(flags)), "close_range")


RENAME_EXCHANGE = 2


def rename_exchange(a, b):
    """Swap the names ``a`` and ``b`` atomically (renameat2 with
    RENAME_EXCHANGE); both must exist.  EINVAL where the file system cannot."""
    _check(_libc.renameat2(AT_FDCWD, _b(a), AT_FDCWD, _b(b), RENAME_EXCHANGE), "renameat2", b)


# memfd: executable on purpose (vm.memfd_noexec), and its seals
MFD_EXEC = 0x0010
F_ADD_SEALS = 1033
F_SEAL_SEAL = 0x0001
F_SEAL_SHRINK = 0x0002
F_SEAL_GROW = 0x0004
F_SEAL_WRITE = 0x0008


def add_seals(fd, seals):
    _check(_libc.fcntl(fd, F_ADD_SEALS, ffi.c_int(seals)), "fcntl(F_ADD_SEALS)")


FD_END = 0x7FFFFFFF  # above any fd number (the kernel caps them at nr_open, 2^20 by default)


def close_fds_except(keep):
    """Close every fd of this process except stdio and ``keep``.

    The first thing each stage does: a stage is a fork of the runtime, so
    it starts with every fd the runtime had, the ones pyrunc's caller left
    open (an engine's shim holds sockets, pipes, pidfds) and, in a library
    caller, that program's files.  What a stage keeps is listed by whoever
    made the fds it needs (stage records, protocol channel); anything else
    closed here can never be reached through /proc/<pid>/fd by a container
    process, whatever capabilities it holds.  Closed, not marked
    close-on-exec: the created init waits for a long time before its
    execve.  Negative numbers in ``keep`` are ignored.

    os.closerange is close_range(2) (one syscall per span), with CPython's
    own fallback on kernels without it."""
    kept = sorted({0, 1, 2}.union(fd for fd in keep if fd is not None and fd >= 0))
    lo = 0
    for fd in kept + [FD_END]:
        if fd > lo:
            os.closerange(lo, fd)
        lo = fd + 1


class _Statfs(ffi.Structure):
    _fields_ = [("f_type", ffi.c_long), ("_rest", ffi.c_long * 15)]


_libc.fstatfs.argtypes = [ffi.c_int, ffi.c_void_p]


def fstatfs_type(fd):
    """The filesystem magic of the file behind ``fd`` (statfs.f_type)."""
    buf = _Statfs()
    _check(_libc.fstatfs(fd, ffi.byref(buf)), "fstatfs")
    return buf.f_type & 0xFFFFFFFF


# --- namespaces ------------------------------------------------------------
def unshare(flags):
    _check(_syscall(_NR["unshare"], ffi.c_int(flags)), "unshare")


def setns(fd, nstype=0, *, display=None):
    _check(_syscall(_NR["setns"], ffi.c_int(fd), ffi.c_int(nstype)), "setns", display)


_libc.sethostname.argtypes = [ffi.c_char_p, ffi.c_size_t]
_libc.setdomainname.argtypes = [ffi.c_char_p, ffi.c_size_t]


def sethostname(name):
    b = _b(name)
    _check(_libc.sethostname(b, len(b)), "sethostname", name)


def setdomainname(name):
    b = _b(name)
    _check(_libc.setdomainname(b, len(b)), "setdomainname", name)


# --- process attributes ----------------------------------------------------
_libc.prctl.argtypes = [ffi.c_int, ffi.c_ulong, ffi.c_ulong, ffi.c_ulong, ffi.c_ulong]


def prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


def is_child_subreaper() -> bool:
    flag = ffi.c_int(0)
    prctl(PR_GET_CHILD_SUBREAPER, ffi.addressof(flag))
    return bool(flag.value)


class CapHeader(ffi.Structure):
    _fields_ = [("version", ffi.c_uint32), ("pid", ffi.c_int)]


class CapData(ffi.Structure):
    _fields_ = [("effective", ffi.c_uint32), ("permitted", ffi.c_uint32), ("inheritable", ffi.c_uint32)]


_CAP_V3 = 0x20080522


def capget(pid=0):
    """Return (effective, permitted, inheritable) as 64-bit masks."""
    hdr = CapHeader(_CAP_V3, pid)
    data = (CapData * 2)()
    _check(_syscall(_NR["capget"], ffi.byref(hdr), ffi.byref(data)), "capget")
    return tuple(getattr(data[0], f) | (getattr(data[1], f) << 32) for f in ("effective", "permitted", "inheritable"))


def capset(effective, permitted, inheritable):
    hdr = CapHeader(_CAP_V3, 0)
    data = (CapData * 2)()
    for i in (0, 1):
        data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
        data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
    _check(_syscall(_NR["capset"], ffi.byref(hdr), ffi.byref(data)), "capset")


def personality(persona):
    return _check(_syscall(_NR["personality"], ffi.c_ulong(persona)), "personality")


class Rlimit64(ffi.Structure):
    _fields_ = [("cur", ffi.c_uint64), ("max", ffi.c_uint64)]


def setrlimit(resource, soft, hard):
    """setrlimit(2) through glibc's prlimit64 (64-bit limits everywhere);
    the ``resource`` module would cost an extension module's load per
    create.  Errors in runc's words: ``error setting rlimit type 7:
    operation not permitted``."""
    limits = Rlimit64(soft, hard)
    if _libc.prlimit64(0, resource, ffi.byref(limits), None) < 0:
        err = ffi.get_errno()
        raise OSError(err, f"error setting rlimit type {resource}: {os.strerror(err).lower()}")


def ioprio_set(which, who, ioprio):
    _check(_syscall(_NR["ioprio_set"], ffi.c_int(which), ffi.c_int(who), ffi.c_int(ioprio)), "ioprio_set")


class SchedAttr(ffi.Structure):
    _fields_ = [
        ("size", ffi.c_uint32),
        ("sched_policy", ffi.c_uint32),
        ("sched_flags", ffi.c_uint64),
        ("sched_nice", ffi.c_int32),
        ("sched_priority", ffi.c_uint32),
        ("sched_runtime", ffi.c_uint64),
        ("sched_deadline", ffi.c_uint64),
        ("sched_period", ffi.c_uint64),
        ("sched_util_min", ffi.c_uint32),
        ("sched_util_max", ffi.c_uint32),
    ]


def sched_setattr(pid, attr, flags=0):
    attr.size = ffi.sizeof(SchedAttr)
    _check(_syscall(_NR["sched_setattr"], ffi.c_int(pid), ffi.byref(attr), ffi.c_uint(flags)), "sched_setattr")


def set_mempolicy(mode, nodemask_words, maxnode):
    """``nodemask_words``: a sequence of unsigned longs (bit i = node i)."""
    arr = (ffi.c_ulong * max(1, len(nodemask_words)))(*nodemask_words)
    ptr = ffi.byref(arr) if nodemask_words else None
    _check(_syscall(_NR["set_mempolicy"], ffi.c_int(mode), ptr, ffi.c_ulong(maxnode)), "set_mempolicy")


def seccomp(operation, flags, args):
    """seccomp(2); ``args`` is a ctypes object passed by reference (or None)."""
    ptr = ffi.byref(args) if args is not None else None
    return _check(_syscall(_NR["seccomp"], ffi.c_uint(operation), ffi.c_uint(flags), ptr), "seccomp")


def bpf(cmd, attr, size):
    """bpf(2); ``attr`` is a ctypes object (union bpf_attr member)."""
    return _check(_syscall(_NR["bpf"], ffi.c_int(cmd), ffi.byref(attr), ffi.c_uint(size)), "bpf")


def pidfd_send_signal(pidfd, sig):
    _check(
        _syscall(_NR["pidfd_send_signal"], ffi.c_int(pidfd), ffi.c_int(sig), None, ffi.c_uint(0)), "pidfd_send_signal"
    )


# --- a fork born in a cgroup ------------------------------------------------
CLONE_CHILD_SETTID = 0x01000000
CLONE_INTO_CGROUP = 0x200000000
_SIGCHLD = 17
# glibc's struct pthread keeps the thread's kernel tid at this offset (glibc
# 2.26 and later); its fork() has the kernel write the child's tid there.
# Checked against gettid() before it is used: another layout gets no
# CLONE_CHILD_SETTID, and the child then has its parent's tid in that field,
# which only glibc's raise/abort/pthread_kill would read (to a thread of
# another process: ESRCH).
_PTHREAD_TID_OFFSET = {"x86_64": 0x2D0, "aarch64": 0xD0}.get(os.uname().machine)


_python = None  # (the interpreter's C API and syscall(2) with the GIL held, struct clone_args): made at first use


def _python_api():
    """Made on the first clone only: create, run and exec import this
    module, and a ctypes structure class alone costs ~40 us to build."""
    global _python
    if _python is None:

        class CloneArgs(ffi.Structure):
            # struct clone_args up to `cgroup` (CLONE_ARGS_SIZE_VER2, Linux 5.7)
            _fields_ = [
                (name, ffi.c_uint64)
                for name in (
                    "flags",
                    "pidfd",
                    "child_tid",
                    "parent_tid",
                    "exit_signal",
                    "stack",
                    "stack_size",
                    "tls",
                    "set_tid",
                    "set_tid_size",
                    "cgroup",
                )
            ]

        api = ffi.Library(hold_gil=True)
        api.syscall.restype = ffi.c_long
        api.PyOS_BeforeFork.restype = None
        api.PyOS_AfterFork_Child.restype = None
        api.PyOS_AfterFork_Parent.restype = None
        _python = (api, CloneArgs)
    return _python


def _own_tid_field():
    """The address of the calling thread's tid in glibc's struct pthread, or
    0 when it is not at the offset known for this architecture."""
    if _PTHREAD_TID_OFFSET is None:
        return 0
    _libc.pthread_self.restype = ffi.c_void_p
    address = _libc.pthread_self() + _PTHREAD_TID_OFFSET
    return address if ffi.c_int.from_address(address).value == _syscall(_NR["gettid"]) else 0


def fork_into_cgroup(cgroup_fd):
    """``os.fork()``, with the child created in the cgroup v2 directory
    ``cgroup_fd`` (an O_PATH fd will do): clone3 with CLONE_INTO_CGROUP
    (Linux 5.7).  The child never belongs to another cgroup, and nothing is
    migrated: no write to cgroup.procs, so no wait for the kernel's migration
    lock (cgroups/join.py).  Returns 0 in the child, the child's pid in the
    parent; raises OSError (ENOSYS or E2BIG on older kernels, EOPNOTSUPP on a
    cgroup v1 fd, EBUSY when the cgroup has controllers enabled for its
    children, EACCES/EPERM/ENOENT where a migration would be refused), and
    then no process was made.  Only from a single-threaded process (see
    the check below); a process with more threads gets EBUSY.

    What os.fork does around fork(2), the same here around clone3: the
    interpreter's before-fork and after-fork steps (the import lock, the
    GIL and thread states rebuilt in the child, os.register_at_fork's
    callbacks), all with the GIL held, so no other thread of this process
    runs Python code at the clone.  glibc's own fork steps do not run: its
    atfork handlers (pyrunc registers none; the libraries it loads neither)
    and its locks (the other threads pyrunc runs, the lock warmer, call no
    C function that takes one outside the GIL: write and sleep)."""
    if len(os.listdir("/proc/self/task")) != 1:
        # Another thread waiting for the GIL at the clone would leave its
        # request to drop it set in the child, whose first bytecode, before
        # the after-fork step, would then wait for a thread switch that no
        # thread there can make (CPython's FORCE_SWITCHING).  os.fork runs
        # that step from C, before any bytecode; this cannot.
        raise OSError(16, "clone3(CLONE_INTO_CGROUP): other threads run in this process")  # EBUSY
    python, clone_args = _python_api()
    tid_field = _own_tid_field()
    args = clone_args(
        flags=CLONE_INTO_CGROUP | (CLONE_CHILD_SETTID if tid_field else 0),
        child_tid=tid_field,
        exit_signal=_SIGCHLD,
        cgroup=cgroup_fd,
    )
    python.PyOS_BeforeFork()
    pid = python.syscall(_NR["clone3"], ffi.byref(args), ffi.c_size_t(ffi.sizeof(args)))
    if pid == 0:
        python.PyOS_AfterFork_Child()
        return 0
    err = ffi.get_errno()
    python.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, f"clone3(CLONE_INTO_CGROUP): {os.strerror(err)}")
    return pid


# --- unix sockets without the socket module ---------------------------------
# ``import socket`` costs several ms on every call; the stage channel and the
# start socket only need these few calls.
AF_UNIX = 1
AF_INET = 2
SOCK_DGRAM = 2
SOCK_STREAM = 1
SOCK_SEQPACKET = 5
SOCK_CLOEXEC = 0o2000000


class SockaddrUn(ffi.Structure):
    _fields_ = [("sun_family", ffi.c_ushort), ("sun_path", ffi.c_char * 108)]


def _sockaddr(path):
    b = _b(path)
    if len(b) >= 108:
        raise OSError(36, "socket path too long", path)
    return SockaddrUn(AF_UNIX, b)


def socket(domain, kind, proto=0):
    """socket(2), close-on-exec, without loading the socket module."""
    return _check(_libc.socket(domain, kind | SOCK_CLOEXEC, proto), "socket")


POLLIN = 0x0001


def readable(fds, timeout_ms=-1):
    """The fds of ``fds`` that poll(2) finds readable (or hung up), waiting
    up to ``timeout_ms`` (-1: until one is); EINTR is retried."""
    entry = POLLIN.to_bytes(2, "little") + bytes(2)
    buf = ffi.create_string_buffer(b"".join(fd.to_bytes(4, "little", signed=True) + entry for fd in fds))
    while True:
        if _libc.poll(buf, len(fds), timeout_ms) >= 0:
            break
        if ffi.get_errno() != 4:  # EINTR
            _check(-1, "poll")
    raw = buf.raw
    return [fd for i, fd in enumerate(fds) if raw[8 * i + 6 : 8 * i + 8] != b"\0\0"]


def socketpair(kind=SOCK_SEQPACKET):
    fds = (ffi.c_int * 2)()
    _check(_libc.socketpair(AF_UNIX, kind | SOCK_CLOEXEC, 0, fds), "socketpair")
    return fds[0], fds[1]


def unix_listen(path, backlog=4):
    """A listening AF_UNIX stream socket bound at ``path`` (relative paths
    are relative to the cwd, which keeps long state dirs under 108 bytes)."""
    fd = socket(AF_UNIX, SOCK_STREAM)
    addr = _sockaddr(path)
    try:
        _check(_libc.bind(fd, ffi.byref(addr), ffi.sizeof(addr)), "bind", path)
        _check(_libc.listen(fd, backlog), "listen", path)
    except OSError:
        os.close(fd)
        raise
    return fd


def accept(fd):
    return _check(_libc.accept4(fd, None, None, SOCK_CLOEXEC), "accept")


KEYCTL_JOIN_SESSION_KEYRING = 1


def join_session_keyring(name):
    return _check(
        _syscall(_NR["keyctl"], ffi.c_int(KEYCTL_JOIN_SESSION_KEYRING), _b(name)), "keyctl(join session keyring)"
    )


def ioctl_int(fd, request, arg=0):
    """ioctl(2) with an integer argument, returning its integer result."""
    return _check(_libc.ioctl(fd, ffi.c_ulong(request), ffi.c_long(arg)), "ioctl")


def ioctl_ptr(fd, request, buf):
    return _check(_libc.ioctl(fd, ffi.c_ulong(request), ffi.byref(buf)), "ioctl")


_libc.ioctl.restype = ffi.c_int


# --- filesystem and devices (rootfs/) ------------------------------------
MS_I_VERSION = 1 << 23
