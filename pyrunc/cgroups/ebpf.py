"""cgroup v2 device controller: a BPF_PROG_TYPE_CGROUP_DEVICE program built here.

The kernel calls the program on every device open/mknod in the cgroup with a
``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;}``, where
``access_type = (access << 16) | type`` (type: 1 block, 2 char; access bits:
1 mknod, 2 read, 4 write).  Returning 1 allows, 0 denies (EPERM).

The program checks the rules last to first (the last matching rule decides)
and falls through to the default.  An allow rule matches when every requested
access bit is in the rule; a deny rule when any is.  This is exactly
``resources.device_allowed``, which the tests use as the reference.
"""

from __future__ import annotations

from .. import lightos as os  # os's calls without importing os (lightos.py)
import struct

from pyrunc.linux import ffi, syscalls
from pyrunc.cgroups.resources import WILDCARD, DeviceRule
from pyrunc.errors import CgroupError

TYPE_CHECKING = False  # typing is for the checker only: not imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable

# bpf(2) commands, program/attach types, flags (linux/bpf.h)
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2

DEV_BLOCK, DEV_CHAR = 1, 2
ACC_MKNOD, ACC_READ, ACC_WRITE = 1, 2, 4

# instruction opcodes used
_LDX_W = 0x61  # dst = *(u32 *)(src + off)
_MOV64_X = 0xBF  # dst = src
_MOV64_K = 0xB7  # dst = imm
_AND64_K = 0x57  # dst &= imm
_RSH64_K = 0x77  # dst >>= imm
_JNE_K = 0x55  # if dst != imm goto pc+off
_JNE_X = 0x5D  # if dst != src goto pc+off
_JEQ_K = 0x15  # if dst == imm goto pc+off
_EXIT = 0x95

# registers holding the decoded context
R_TYPE, R_ACCESS, R_MAJOR, R_MINOR = 2, 3, 4, 5


def _insn(code, dst=0, src=0, off=0, imm=0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _access_bits(access: str) -> int:
    return (
        (ACC_READ if "r" in access else 0) | (ACC_WRITE if "w" in access else 0) | (ACC_MKNOD if "m" in access else 0)
    )


def _rule_block(rule: DeviceRule) -> list[bytes]:
    """Instructions returning ``rule.allow`` if the rule matches, else falling through."""
    # Each check is (builder of the jump with a given skip offset); built in
    # two passes since the skip distance is "to the end of this block".  The
    # builders run below, in this call, so they read t, bits and the rule as
    # they are now (no loop rebinds them).
    checks: list[list[Callable[[int], bytes]]] = []
    if rule.type != "a":
        t = DEV_BLOCK if rule.type == "b" else DEV_CHAR
        checks.append([lambda off: _insn(_JNE_K, R_TYPE, 0, off, t)])
    bits = _access_bits(rule.access)
    if bits != ACC_MKNOD | ACC_READ | ACC_WRITE:
        if rule.allow:  # requested ⊆ rule: (req & bits) == req
            checks.append(
                [
                    lambda off: _insn(_MOV64_X, 1, R_ACCESS),
                    lambda off: _insn(_AND64_K, 1, 0, 0, bits),
                    lambda off: _insn(_JNE_X, 1, R_ACCESS, off),
                ]
            )
        else:  # requested ∩ rule ≠ ∅
            checks.append(
                [
                    lambda off: _insn(_MOV64_X, 1, R_ACCESS),
                    lambda off: _insn(_AND64_K, 1, 0, 0, bits),
                    lambda off: _insn(_JEQ_K, 1, 0, off, 0),
                ]
            )
    if rule.major != WILDCARD:
        checks.append([lambda off: _insn(_JNE_K, R_MAJOR, 0, off, rule.major)])
    if rule.minor != WILDCARD:
        checks.append([lambda off: _insn(_JNE_K, R_MINOR, 0, off, rule.minor)])
    tail = [_insn(_MOV64_K, 0, 0, 0, 1 if rule.allow else 0), _insn(_EXIT)]
    flat = [b for c in checks for b in c]
    out = []
    for i, build in enumerate(flat):
        remaining = len(flat) - i - 1 + len(tail)  # instructions after this one in the block
        out.append(build(remaining))
    return out + tail


def build_program(default_allow: bool, rules: list[DeviceRule]) -> bytes:
    """The program text (concatenated 8-byte instructions)."""
    prog = [
        _insn(_LDX_W, R_TYPE, 1, 0),  # access_type
        _insn(_MOV64_X, R_ACCESS, R_TYPE),
        _insn(_AND64_K, R_TYPE, 0, 0, 0xFFFF),
        _insn(_RSH64_K, R_ACCESS, 0, 0, 16),
        _insn(_LDX_W, R_MAJOR, 1, 4),
        _insn(_LDX_W, R_MINOR, 1, 8),
    ]
    for rule in reversed(rules):
        prog += _rule_block(rule)
    prog += [_insn(_MOV64_K, 0, 0, 0, 1 if default_allow else 0), _insn(_EXIT)]
    return b"".join(prog)


# --- bpf_attr layouts (only the members each command reads) ------------------


class _ProgLoad(ffi.Structure):
    _fields_ = [
        ("prog_type", ffi.c_uint32),
        ("insn_cnt", ffi.c_uint32),
        ("insns", ffi.c_uint64),
        ("license", ffi.c_uint64),
        ("log_level", ffi.c_uint32),
        ("log_size", ffi.c_uint32),
        ("log_buf", ffi.c_uint64),
        ("kern_version", ffi.c_uint32),
        ("prog_flags", ffi.c_uint32),
        ("prog_name", ffi.c_char * 16),
        ("prog_ifindex", ffi.c_uint32),
        ("expected_attach_type", ffi.c_uint32),
    ]


class _Attach(ffi.Structure):
    _fields_ = [
        ("target_fd", ffi.c_uint32),
        ("attach_bpf_fd", ffi.c_uint32),
        ("attach_type", ffi.c_uint32),
        ("attach_flags", ffi.c_uint32),
        ("replace_bpf_fd", ffi.c_uint32),
    ]


class _Query(ffi.Structure):
    _fields_ = [
        ("target_fd", ffi.c_uint32),
        ("attach_type", ffi.c_uint32),
        ("query_flags", ffi.c_uint32),
        ("attach_flags", ffi.c_uint32),
        ("prog_ids", ffi.c_uint64),
        ("prog_cnt", ffi.c_uint32),
    ]


class _GetFd(ffi.Structure):
    _fields_ = [("prog_id", ffi.c_uint32), ("next_id", ffi.c_uint32), ("open_flags", ffi.c_uint32)]


def load_program(code: bytes) -> int:
    """BPF_PROG_LOAD; returns the program fd.  On a verifier error the message
    includes the verifier log."""
    insns = ffi.create_string_buffer(code, len(code))
    lic = ffi.create_string_buffer(b"Apache-2.0")
    log = ffi.create_string_buffer(65536)
    attr = _ProgLoad(
        prog_type=BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt=len(code) // 8,
        insns=ffi.addressof(insns),
        license=ffi.addressof(lic),
        prog_name=b"pyrunc_devices",
        expected_attach_type=BPF_CGROUP_DEVICE,
    )
    try:
        return syscalls.bpf(BPF_PROG_LOAD, attr, ffi.sizeof(attr))
    except OSError as e:
        if e.errno != 13 and e.errno != 22:  # not a verifier rejection
            raise
    # retry with the verifier log to explain the rejection
    attr.log_level, attr.log_size, attr.log_buf = 1, len(log), ffi.addressof(log)
    try:
        return syscalls.bpf(BPF_PROG_LOAD, attr, ffi.sizeof(attr))
    except OSError as e:
        text = log.value.decode(errors="replace").strip().splitlines()
        raise OSError(e.errno, f"bpf(BPF_PROG_LOAD): {os.strerror(e.errno)}: {' | '.join(text[-3:])}") from None


def attached_program_ids(cgroup_fd: int) -> list[int]:
    ids = (ffi.c_uint32 * 64)()
    attr = _Query(target_fd=cgroup_fd, attach_type=BPF_CGROUP_DEVICE, prog_ids=ffi.addressof(ids), prog_cnt=64)
    syscalls.bpf(BPF_PROG_QUERY, attr, ffi.sizeof(attr))
    return list(ids[: attr.prog_cnt])


def _prog_fd_by_id(prog_id: int) -> int:
    attr = _GetFd(prog_id=prog_id)
    return syscalls.bpf(BPF_PROG_GET_FD_BY_ID, attr, ffi.sizeof(attr))


def install(
    cgroup_dir: str, default_allow: bool, rules: list[DeviceRule], field: str = "linux.resources.devices"
) -> None:
    """Load the program and attach it to ``cgroup_dir``, replacing what was there.

    The new program is attached (multi mode) before the old ones are detached,
    so the cgroup is never without a filter during an update.
    """
    code = build_program(default_allow, rules)
    try:
        cg = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(f"{field}: open {cgroup_dir}: {e.strerror}") from None
    prog = -1
    try:
        try:
            old = attached_program_ids(cg)
            prog = load_program(code)
            attr = _Attach(
                target_fd=cg, attach_bpf_fd=prog, attach_type=BPF_CGROUP_DEVICE, attach_flags=BPF_F_ALLOW_MULTI
            )
            syscalls.bpf(BPF_PROG_ATTACH, attr, ffi.sizeof(attr))
            for prog_id in old:
                ofd = _prog_fd_by_id(prog_id)
                try:
                    attr = _Attach(target_fd=cg, attach_bpf_fd=ofd, attach_type=BPF_CGROUP_DEVICE)
                    syscalls.bpf(BPF_PROG_DETACH, attr, ffi.sizeof(attr))
                finally:
                    os.close(ofd)
        except OSError as e:
            raise CgroupError(
                f"{field}: installing the eBPF device filter on {cgroup_dir}: {e.strerror or e}"
            ) from None
    finally:
        if prog >= 0:
            os.close(prog)  # the attachment keeps the program alive
        os.close(cg)
