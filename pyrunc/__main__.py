"""``python -m pyrunc ARGS``: the pyrunc command, run by whatever interpreter
was named (slower than the installed launcher: see pyrunc/launcher.py)."""

from .cli import exit_now, main

exit_now(main())
