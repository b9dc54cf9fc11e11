"""Go-flag / urfave-cli style argument parsing, as runc's callers use it.

- ``--flag value``, ``--flag=value``, ``-flag value``, ``-flag=value`` (one
  or two dashes, for long and short names alike);
- boolean flags take no value, but accept ``--flag=true|false``;
- repeated list flags accumulate (``-e A -e B``); repeated scalars: last wins;
- flags may follow positional arguments (urfave-cli reorders them), except
  for commands that stop at the first positional (``exec``, ``ps``: what
  follows the id belongs to the process);
- ``--`` ends the flags.

argparse is not used: it costs ~10 ms to import, on every call, and does
not implement these semantics.
"""

from ..errors import UsageError

BOOL, STR, INT, LIST = "bool", "str", "int", "list"


class Flag:
    __slots__ = ("names", "kind", "default", "help")

    def __init__(self, names, kind=BOOL, default=None, help=""):
        self.names = tuple(names.split("|"))
        self.kind = kind
        self.default = default
        self.help = help

    @property
    def key(self):
        return self.names[0].replace("-", "_")


def parse(flags, argv, *, stop_at_positional=False):
    """Return (options dict keyed by Flag.key, positional list)."""
    by_name = {}
    for f in flags:
        for n in f.names:
            by_name[n] = f
    opts = {f.key: ([] if f.kind == LIST else f.default) for f in flags}
    args = []
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            args.extend(argv[i:])
            break
        if not a.startswith("-") or a == "-":
            args.append(a)
            if stop_at_positional:
                args.extend(argv[i:])
                break
            continue
        name, eq, value = a.lstrip("-").partition("=")
        f = by_name.get(name)
        if f is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        if f.kind == BOOL:
            if eq:
                if value.lower() in ("true", "1", "t"):
                    opts[f.key] = True
                elif value.lower() in ("false", "0", "f"):
                    opts[f.key] = False
                else:
                    raise UsageError(f'invalid boolean value "{value}" for -{name}')
            else:
                opts[f.key] = True
            continue
        if not eq:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        if f.kind == INT:
            try:
                value = int(value, 0)
            except ValueError:
                raise UsageError(f'invalid value "{value}" for flag -{name}: parse error') from None
        if f.kind == LIST:
            opts[f.key].append(value)
        else:
            opts[f.key] = value
    return opts, args
