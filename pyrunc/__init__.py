"""pyrunc: an OCI runtime-spec v1.3.0 low-level container runtime.

The package is split in two: ``pyrunc.cli`` parses runc-compatible argv and
prints; everything else is the core library, which never exits the process
nor reads argv.  Import cost matters (engines call the runtime several times
per container), so modules import what they need lazily.
"""

__version__ = "0.1.0"
SPEC_VERSION = "1.3.0"
