"""spec, features, validate."""

import os
import sys

from ..errors import PyruncError, UsageError
from .flags import BOOL, STR, Flag, parse


def cmd_spec(g, argv):
    opts, args = parse((Flag("bundle|b", STR, "", "where to write config.json"),
                        Flag("rootless", BOOL, False, "a spec for a rootless container")), argv)
    if args:
        raise UsageError('"spec" takes no arguments')
    from ..defaults import default_spec
    path = os.path.join(opts["bundle"] or ".", "config.json")
    if os.path.exists(path):
        raise PyruncError("File config.json exists. Remove it first")
    from json import dumps
    spec = default_spec(rootless=opts["rootless"], uid=os.geteuid(), gid=os.getegid())
    try:
        with open(path, "x") as f:
            f.write(dumps(spec, indent="\t"))
    except OSError as e:
        raise PyruncError(f"open {path}: {e.strerror}") from None
    return 0


def cmd_features(g, argv):
    parse((), argv)
    from json import dumps

    from ..features import features
    sys.stdout.write(dumps(features(), indent=4) + "\n")
    return 0


def cmd_validate(g, argv):
    """Check a bundle's config.json; print every problem, one per line."""
    opts, args = parse((Flag("bundle|b", STR, ".", "bundle directory"),
                        Flag("config|f", STR, None, "config file (default: config.json)")), argv)
    from ..config.validate import check_bundle
    bundle = args[0] if args else opts["bundle"]
    problems = check_bundle(bundle) if opts["config"] is None else check_bundle(bundle, opts["config"])
    for p in problems:
        sys.stdout.write(p + "\n")
    if problems:
        return 1
    sys.stdout.write(f"{os.path.join(bundle, opts['config'] or 'config.json')}: valid\n")
    return 0
