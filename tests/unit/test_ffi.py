"""pyrunc/linux/ffi.py: the C types built from _ctypes behave as ctypes' own
(sizes, layouts, buffers, calls with errno), and mix with ctypes' objects."""

import ctypes
import errno
import os

import pytest

from pyrunc.linux import ffi

NAMES = ["c_int", "c_uint", "c_long", "c_ulong", "c_ushort", "c_uint64", "c_char", "c_char_p", "c_void_p"]
NAMES += ["c_int32", "c_uint32", "c_size_t"]


@pytest.mark.parametrize("name", NAMES)
def test_sizes_and_codes_match_ctypes(name):
    ours, theirs = getattr(ffi, name), getattr(ctypes, name)
    assert ffi.sizeof(ours) == ctypes.sizeof(theirs)
    assert ours._type_ == theirs._type_ or (name == "c_uint64" and ctypes.sizeof(theirs) == 8)


def test_values_round_trip():
    assert ffi.c_int(-5).value == -5
    assert ffi.c_uint(2**32 - 1).value == 2**32 - 1
    assert ffi.c_uint64(2**64 - 1).value == 2**64 - 1
    assert ffi.c_char_p(b"abc").value == b"abc"


def test_a_structure_has_ctypes_layout():
    class Ours(ffi.Structure):
        _fields_ = [("a", ffi.c_ushort), ("b", ffi.c_void_p), ("c", ffi.c_char * 3), ("d", ffi.c_uint64)]

    class Theirs(ctypes.Structure):
        _fields_ = [("a", ctypes.c_ushort), ("b", ctypes.c_void_p), ("c", ctypes.c_char * 3), ("d", ctypes.c_uint64)]

    assert ffi.sizeof(Ours) == ctypes.sizeof(Theirs)
    for name in ("a", "b", "c", "d"):
        assert getattr(Ours, name).offset == getattr(Theirs, name).offset


@pytest.mark.parametrize("init,size", [(b"a\0b\0", None), (b"a\0b\0", 4), (b"xyz", 8), (12, None)])
def test_string_buffers_match_ctypes(init, size):
    ours = ffi.create_string_buffer(init, size) if size else ffi.create_string_buffer(init)
    theirs = ctypes.create_string_buffer(init, size) if size else ctypes.create_string_buffer(init)
    assert ours.raw == theirs.raw and len(ours) == len(theirs)


def test_libc_calls_and_errno():
    libc = ffi.Library()
    assert libc.getpid() == os.getpid()
    assert libc.close(-1) == -1 and ffi.get_errno() == errno.EBADF
    assert libc.getpid is libc.getpid  # one function object per name


def test_a_library_that_does_not_exist_raises_oserror():
    with pytest.raises(OSError):
        ffi.Library("libpyrunc-does-not-exist.so.0")


def test_ctypes_objects_pass_through_ffi_functions():
    libc = ffi.Library()
    fds = (ctypes.c_int * 2)()  # ctypes' own array, by reference
    assert libc.pipe(ffi.byref(fds)) == 0
    try:
        os.write(fds[1], b"x")
        assert os.read(fds[0], 1) == b"x"
    finally:
        os.close(fds[0])
        os.close(fds[1])


def test_the_syscall_module_does_not_load_ctypes():
    """In a fresh interpreter, importing the syscall module (and seccomp's
    loader side) leaves the ctypes package unloaded."""
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (
        f"import sys; sys.path.insert(0, {repo!r})\n"
        "from pyrunc.linux import syscalls\n"
        "from pyrunc import seccomp\n"
        "p = seccomp.PreparedSeccomp(b'\\x06\\x00\\x00\\x00\\x00\\x00\\xff\\x7f')\n"
        "print('ctypes' in sys.modules, syscalls._libc.getpid() > 0)\n"
    )
    out = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]
