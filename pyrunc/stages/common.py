"""What every stage shares: the one error line it reports before it exits,
and the seal on imports once paths resolve inside the container's root.
Small on purpose: the exec stage imports this, not create's init stage and
its mount code."""

from .. import lightos as os  # os's calls without importing os (lightos.py)
import sys

from ..errors import PyruncError
from . import protocol as proto


def fail_stage(chan, exc):
    """Report ``exc`` to the runtime as the stage's one error line, and exit."""
    msg = describe(exc)
    try:
        chan.send(proto.ERROR, {"msg": msg[:16000]})
    except OSError:
        pass
    os._exit(1)


def describe(exc):
    if isinstance(exc, PyruncError):
        return str(exc)
    if isinstance(exc, OSError):
        # OSError from linux/syscalls.py: strerror already names the call
        where = f" {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{':' if where else ''}{where}" if exc.strerror else str(exc)
    return f"{type(exc).__name__}: {exc}"


def _refuse_import(event, args):
    if event == "import":
        raise ImportError(
            f"pyrunc: refusing to import {args[0]!r} inside the container's "
            "root (Python files there belong to the image)"
        )


def seal_imports():
    """From here on, any module load fails instead of reading Python files
    that now resolve inside the container's image (docs/security.md).  Modules
    already in sys.modules are unaffected: the stages only use those."""
    sys.addaudithook(_refuse_import)
