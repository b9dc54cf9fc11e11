"""The created container's init waits for `start` as a 1.4 KiB program, not
as a Python process (issue 21; docs/stage-protocol.md, "Start").

A Python init waiting for `start` holds ~5 MiB of private memory (the
interpreter's heap and every module create loaded), and a host runs many
created containers: containerd and CRI-O create each container well before
they start it.  So, once the init has applied everything the container's
process is given (rlimits, user, capabilities, no_new_privs, an early
seccomp filter, the cwd: ``process.finalize``) and answered READY, it execs
this program (``waiter_x86_64.S``, assembled here into ``ELF_X86_64``) from
a sealed memfd.  The kernel frees the Python address space at that execve.
What is left waits in accept() on the start socket, writes the AppArmor
exec label when `start` connects (through /proc checked to be procfs,
openat2 beneath it without links: as linux/procwrite.py), writes ``0.``,
loads the filter meant for right before the execve (under no_new_privs) and
execs the container's program, as the Python init did.

The program is bytes in this file, so ``pip install`` stays a plain
install: no compiler.  ``make waiter`` rebuilds them from the source with
binutils, and tests/unit/test_waiter_program.py checks that the bytes are that
source's.

The memfd holds the program, then at ``DATA_OFFSET`` a data block (the
layout is in the source's header): the listen fd, the filter, the label,
and the message parts for a failure (a failing execve is reported as the Python
init reports it: ``pyrunc: exec PATH: exec format error``).  It is sealed
(no write, no resize) before the execve: the container cannot change the
program that its pid 1 runs, through ``/proc/1/exe`` or otherwise
(CVE-2019-5736); and the program makes itself non-dumpable first.

Where the Python init still waits (``usable`` says why not), nothing
changes: another architecture, startContainer hooks (they run in the init
after `start`), a notifying filter (its agent must see only the container's
calls), an SELinux exec label (the waiter's execve would take it; the
waiter writes AppArmor's only), small rlimits on memory (the waiter's own execve could
fail past its point of no return), an early filter that might refuse a call
the waiter or the init still makes.
"""

from . import lightos as os  # os's calls without importing os (lightos.py)

from .linux import syscalls as sc

NAME = "pyrunc:[2:INIT]"
DATA_OFFSET = 4096  # where the data block starts in the memfd (the .S's DATA_OFFSET)
DATA_MAX = 65536  # what the program reads of it (BUF_SIZE)
MAGIC = b"PYWT"
HEADER_SIZE = 72
ERRNO_COUNT = 134  # strerror texts for errno 0..133

# `make waiter` writes this from waiter_x86_64.S (as, ld -T, the header below).
ELF_X86_64 = bytes.fromhex(
    "7f454c4602010100000000000000000003003e0001000000e80000000000000040000000000000009804000000000000"
    "000000004000380003004000040003000100000005000000000000000000000000000000000000000000000000000000"
    "800400000000000080040000000000000010000000000000010000000600000000000000000000000010000000000000"
    "00100000000000000000000000000000a010010000000000001000000000000051e57464060000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000008000000000000004889e5b89d000000"
    "bf0400000031f60f05b89d000000bf0f000000488d351e0300000f0548837d00040f82ec020000488b751031ff31c90f"
    "b60685c0742183e83083f8090f87d10200006bff0a01c748ffc6ffc183f9090f87be020000ebd885c90f84b402000041"
    "89fcb811000000488d35421f0000ba0000010041ba001000000f054989c5b8030000004489e70f05488d1d211f000049"
    "83fd480f8c7a020000813b505957540f856e0200008b432c4c39e80f876202000041beffffffffb8200100008b7b0431"
    "f631d241ba000008000f054883f8fc74e64883f89974e04885c00f884b0200004189c6b8030000008b7b040f058b4330"
    "85c00f84d2000000b801010000bf9cffffff488d3541020000ba00002b004531d20f054885c00f88a40000004189c444"
    "89e7e8c40100004885c00f8580000000488d15e90d000048c7020100080048c742080000000048c742100f000000b8b5"
    "0100004489e78b73304801de41ba180000000f054989c5b8030000004489e70f054c89e84885c078474489efe86a0100"
    "004885c07513b8010000004489ef8b73344801de8b53380f054989c4b8030000004489ef0f054c89e04885c0791ceb10"
    "4989c5b8030000004489e70f054c89e8448b433c448b4b40eb7bb82c0000004489f7488d356f010000ba0200000041ba"
    "004000004531c04531c90f058b4b0885c97432488d15160d000066890a8b43104801d848894208b83d010000bf010000"
    "008b730c0f054885c0740a448b431c448b4b20eb20b83b000000488b7d18488d7520488b4d00488d54cd100f05448b43"
    "14448b4b1848f7d84989c7488d3d5e0d0000488d35f7000000b908000000f3a44a8d34034489c981f9000e00000f87b8"
    "000000f3a4443b7b2873228b73244801de4d85ff740aac84c075fb49ffcfebf1b900010000ac84c07403aae2f8c6070a"
    "48ffc7488d35060d00004829f74989fcb801000000bf020000004c89e20f054585f67867b82c0000004489f7488d35e5"
    "0c0000498d9424f7ffffff41ba004000004531c04531c90f05eb40b88a000000488d35410c00000f054885c078144881"
    "3d2f0c0000a09f0000740748c7c0eeffffffc3b801000000bf02000000488d3534000000ba380000000f05b8e7000000"
    "bf010000000f05f4707972756e633a5b323a494e49545d00302e2f70726f6300707972756e633a20707972756e633a20"
    "696e69743a207468652077616974657227732064617461206973206d697373696e67206f72206d616c666f726d65640a"
    "002e7368737472746162002e74657874002e627373000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000b00000001000000"
    "0600000000000000e800000000000000e800000000000000980300000000000000000000000000000100000000000000"
    "00000000000000001100000008000000030000000000000000100000000000000010000000000000a010010000000000"
    "000000000000000010000000000000000000000000000000010000000300000000000000000000000000000000000000"
    "80040000000000001600000000000000000000000000000001000000000000000000000000000000"
)

# rlimits below which the waiter is not used: its execve maps ~70 KiB, and
# one that fails past the point of no return kills the init.
_MEMORY_RLIMITS = {"RLIMIT_AS", "RLIMIT_DATA", "RLIMIT_STACK"}
_MEMORY_RLIMIT_FLOOR = 16 << 20


def program():
    """The waiter for this machine, or None."""
    if os.uname().machine == "x86_64" and ELF_X86_64:
        return ELF_X86_64
    return None


def usable(proc, seccomp, *, start_hooks, notify_loaded):
    """Whether the init may wait as the waiter; else the Python init waits."""
    if program() is None or start_hooks or notify_loaded:
        return False
    if proc.selinux_label:
        return False  # SELinux: the waiter's execve would take the label
    for r in proc.rlimits or ():
        if r.type in _MEMORY_RLIMITS and r.soft < _MEMORY_RLIMIT_FLOOR:
            return False
    if seccomp is not None and not proc.no_new_privileges:
        # Loaded by the init before the waiter's execve: it must allow the
        # init's last calls and the waiter's whatever their arguments
        # (seccomp._AFTER_LOAD).  Under no_new_privs the waiter loads it
        # last (data_block refuses one too large).
        return ("waiter_label" if proc.apparmor_profile else "waiter") in seccomp.allows
    return True


def data_block(listen_fd, path, seccomp=None, label=None):
    """The data block: ``seccomp`` is the filter the waiter loads (under
    no_new_privs), or None; ``label`` the AppArmor exec label it writes,
    ``(file below /proc, text, words of a failure)``, or None.  ValueError
    if it would not fit DATA_MAX."""
    parts = []
    size = HEADER_SIZE

    def put(b):
        nonlocal size
        off = size
        parts.append(b)
        size += len(b)
        return off, len(b)

    # errno N's text follows the Nth NUL; runc's (Go's) words are lower-case
    table_off, _ = put(b"\0".join([os.strerror(n).lower().encode() for n in range(ERRNO_COUNT)]) + b"\0")
    bpf = seccomp.bpf if seccomp is not None else b""
    flags = seccomp.load_flags() if seccomp is not None else 0
    exec_off, exec_len = put(b"exec " + os.fsencode(path) + b": ")
    seccomp_off, seccomp_len = put(b"load seccomp filter: ")
    label_words = (0, 0, 0, 0, 0)
    if label is not None:
        rel, text, words_of_failure = label
        label_words = (put(os.fsencode(rel) + b"\0")[0], *put(text.encode()), *put(words_of_failure.encode()))
    filter_off, _ = put(bpf)
    if size > DATA_MAX:
        raise ValueError(f"waiter data block of {size} bytes")
    words = (listen_fd, len(bpf) // 8, flags, filter_off, exec_off, exec_len, seccomp_off, seccomp_len)
    header = MAGIC + b"".join(w.to_bytes(4, "little") for w in words)
    header += b"".join(w.to_bytes(4, "little") for w in (table_off, ERRNO_COUNT, size, *label_words, 0))
    return header + b"".join(parts)


def image(data):
    """A sealed memfd with the program and ``data``, inheritable (the
    waiter reads the data through it, then closes it)."""
    elf = program()
    try:
        fd = os.memfd_create("pyrunc-init", os.MFD_ALLOW_SEALING | sc.MFD_EXEC)
    except OSError as e:
        if e.errno != 22:  # EINVAL: a kernel before 6.3, where every memfd is executable
            raise
        fd = os.memfd_create("pyrunc-init", os.MFD_ALLOW_SEALING)
    try:
        content = elf + bytes(DATA_OFFSET - len(elf)) + data
        if os.write(fd, content) != len(content):
            raise OSError(5, "short write of the waiter's memfd")
        sc.add_seals(fd, sc.F_SEAL_SEAL | sc.F_SEAL_SHRINK | sc.F_SEAL_GROW | sc.F_SEAL_WRITE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def exec_waiter(fd, path, args, env):
    """execveat the waiter; returns only if that failed (OSError)."""
    os.execve(fd, [NAME, str(fd), path, *args], env)
