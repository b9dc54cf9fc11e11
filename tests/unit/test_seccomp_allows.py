"""seccomp.allows_whatever_the_arguments: whether a compiled filter lets the
init write the byte that releases `start` (stages/init.py), decided by
running the program itself on write(2)'s seccomp_data."""

import os
import struct

import pytest

from pyrunc import seccomp
from pyrunc.seccomp import SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, allows_whatever_the_arguments

WRITE, OTHER, X86_64 = 1, 2, 0xC000003E


def program(*insns):
    return b"".join(struct.pack("<HBBI", *i) for i in insns)


def ld(offset):
    return (0x20, 0, 0, offset)


def jeq(k, jt, jf):
    return (0x15, jt, jf, k)


def ret(k):
    return (0x06, 0, 0, k)


ALLOW, ERRNO = ret(SECCOMP_RET_ALLOW), ret(SECCOMP_RET_ERRNO | 1)


def test_allow_all():
    assert allows_whatever_the_arguments(program(ALLOW), WRITE, X86_64)


def test_by_number_and_architecture():
    p = program(ld(4), jeq(X86_64, 0, 4), ld(0), jeq(WRITE, 0, 1), ERRNO, ALLOW)
    assert not allows_whatever_the_arguments(p, WRITE, X86_64)
    assert allows_whatever_the_arguments(p, OTHER, X86_64)
    # another architecture jumps past the end: no answer, so not allowed
    assert not allows_whatever_the_arguments(p, OTHER, 0x40000003)


def test_reading_an_argument_or_the_instruction_pointer_is_no():
    for offset in (8, 16, 20, 56):
        p = program(ld(0), jeq(WRITE, 0, 2), ld(offset), ALLOW, ALLOW)
        assert not allows_whatever_the_arguments(p, WRITE, X86_64)
        assert allows_whatever_the_arguments(p, OTHER, X86_64)


def test_an_unknown_instruction_or_machine_is_no():
    assert not allows_whatever_the_arguments(program((0x07, 0, 0, 0), ALLOW), WRITE, X86_64)  # BPF_MISC|TAX
    assert not allows_whatever_the_arguments(program(ALLOW), -1, 0)


needs_libseccomp = pytest.mark.skipif(
    not seccomp.supported()["enabled"] or os.uname().machine not in seccomp._AFTER_LOAD,
    reason="no libseccomp, or a machine without write(2)'s numbers here",
)


def prepared(profile):
    return seccomp.PreparedSeccomp.from_record(seccomp.compile_filter(profile))


@needs_libseccomp
@pytest.mark.parametrize(
    "rules, default, expected",
    [
        ([{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}], "SCMP_ACT_ALLOW", True),
        ([{"names": ["write", "execve"], "action": "SCMP_ACT_ALLOW"}], "SCMP_ACT_ERRNO", True),
        ([{"names": ["write"], "action": "SCMP_ACT_LOG"}], "SCMP_ACT_ERRNO", True),
        ([{"names": ["write"], "action": "SCMP_ACT_ERRNO"}], "SCMP_ACT_ALLOW", False),
        ([{"names": ["write"], "action": "SCMP_ACT_KILL"}], "SCMP_ACT_ALLOW", False),
        (
            [{"names": ["write"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]}],
            "SCMP_ACT_ALLOW",
            False,
        ),
    ],
    ids=["allow-default", "write-listed", "write-logged", "write-refused", "write-kills", "write-by-argument"],
)
def test_compiled_profiles(rules, default, expected):
    assert prepared({"defaultAction": default, "syscalls": rules}).allows_write is expected


@needs_libseccomp
def test_a_notified_write_is_no():
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/agent.sock",
        "syscalls": [{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}],
    }
    assert prepared(profile).allows_write is False


@needs_libseccomp
@pytest.mark.skipif(not os.path.isfile("/usr/share/containers/seccomp.json"), reason="no podman profile here")
def test_the_engines_default_profile_allows_write():
    import json

    with open("/usr/share/containers/seccomp.json") as f:
        assert prepared(json.load(f)).allows_write is True
