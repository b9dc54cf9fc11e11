"""The C types and library handles pyrunc's kernel calls need, made from
``_ctypes``, the C module behind ``ctypes``, without importing ``ctypes``.

Why: ``import ctypes`` runs ``ctypes/__init__.py`` (some forty classes,
``struct``, ``ctypes._endian``, ``os``): about 1.5 ms of every ``create``,
``run`` and ``exec``, measured against building the dozen types below from
``_ctypes`` directly (docs/performance.md, section 14).  The classes are
the ones ``ctypes`` defines in Python, with the same type codes and call
flags, over the same C base classes: ``ctypes``' own objects (libseccomp's
bindings use them) mix with these freely, and :func:`byref`,
:func:`sizeof`, :func:`addressof`, :class:`Structure` and arrays (``c_int *
2``) are ``_ctypes``' own.
"""

import _ctypes
from _ctypes import POINTER, Structure, addressof, byref, get_errno, sizeof  # noqa: F401


def _simple(name, code):
    """A ``_SimpleCData`` type as ctypes defines it: its name and its
    struct-module type code."""
    return type(name, (_ctypes._SimpleCData,), {"_type_": code})


c_int = _simple("c_int", "i")
c_uint = _simple("c_uint", "I")
c_long = _simple("c_long", "l")
c_ulong = _simple("c_ulong", "L")
c_ushort = _simple("c_ushort", "H")
c_uint64 = _simple("c_uint64", "Q")
c_char = _simple("c_char", "c")
c_char_p = _simple("c_char_p", "z")
c_void_p = _simple("c_void_p", "P")
c_int32 = c_int
c_uint32 = c_uint
c_size_t = c_ulong  # Linux is LP64 or ILP32: size_t is an unsigned long


def create_string_buffer(init, size=None):
    """A ``c_char`` array: of ``init`` bytes (and a NUL when ``size`` is not
    given or leaves room), or of ``init`` zero bytes when it is an int."""
    if isinstance(init, int):
        return (c_char * init)()
    buf = (c_char * (len(init) + 1 if size is None else size))()
    buf.value = init  # copies every byte of init, NULs included
    return buf


class _Function(_ctypes.CFuncPtr):
    # as ctypes.CDLL(..., use_errno=True): cdecl, errno saved for get_errno(),
    # int result unless restype says otherwise
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class _GilHeldFunction(_ctypes.CFuncPtr):
    # as ctypes.PyDLL's functions: the GIL stays held during the call (for
    # the interpreter's own C API, and for a fork that must not happen while
    # another thread runs Python code); errno saved as above
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = c_int


class Library:
    """A shared library's functions by attribute, as ``ctypes.CDLL(name,
    use_errno=True)``; ``Library()`` is the C library the interpreter has
    mapped already (``dlopen(NULL)``: no search, no ``ldconfig``).  Raises
    OSError when ``name`` cannot be loaded.  ``hold_gil=True``: as
    ``ctypes.PyDLL``, the calls keep the GIL (``Library(hold_gil=True)``
    also reaches the interpreter's C API, which the executable exports)."""

    def __init__(self, name=None, *, hold_gil=False):
        self._handle = _ctypes.dlopen(name, 0)  # _ctypes adds RTLD_NOW
        self._function_type = _GilHeldFunction if hold_gil else _Function

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        function = self._function_type((name, self))  # type: ignore[arg-type]  # (the stubs want a ctypes.CDLL: any object with _handle)
        setattr(self, name, function)  # one object per name: argtypes set once stay set
        return function
