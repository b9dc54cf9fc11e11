"""spec, features, validate."""

import os
import sys

from ..errors import PyruncError, UsageError
from . import BOOL, STR, Flag, parse


def cmd_spec(g, argv):
    opts, args = parse(
        (
            Flag("bundle|b", STR, "", "where to write config.json"),
            Flag("rootless", BOOL, False, "a spec for a rootless container"),
        ),
        argv,
    )
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
    """``validate [--bundle DIR | FILE] [--host-specific]``: check a bundle's
    config.json (or a config file); print every problem, one per line; exit 1
    if there is any.  ``--host-specific`` also checks that this host can run
    it (namespaces, cgroup controllers, seccomp, capabilities, devices, ...)."""
    opts, args = parse(
        (
            Flag("bundle|b", STR, None, "bundle directory (default: .)"),
            Flag("config|f", STR, None, "config file (default: <bundle>/config.json)"),
            Flag("host-specific", BOOL, False, "also check that this host can run it"),
        ),
        argv,
    )
    if len(args) > 1:
        raise UsageError('"validate" takes at most one argument: a bundle directory or a config file')
    if args and (opts["bundle"] is not None or opts["config"] is not None):
        raise UsageError('"validate": give either a path argument or --bundle/--config, not both')
    from ..config.validate import check_bundle, check_file, load_config

    path = args[0] if args else None
    if path is not None and not os.path.isdir(path):
        config, bundle = path, os.path.dirname(os.path.abspath(path))
        problems = check_file(config)
    else:
        bundle = path or opts["bundle"] or "."
        if opts["config"] is None:
            config = os.path.join(bundle, "config.json")
            problems = check_bundle(bundle)
        else:
            config = opts["config"]
            problems = check_file(config, bundle_dir=bundle)
    if opts["host_specific"] and os.path.isdir(bundle):
        from ..config.host import host_problems
        from ..errors import ConfigError

        try:
            doc = load_config(config)
        except ConfigError:
            doc = None  # already reported by the check above
        if doc is not None:
            problems.extend(host_problems(doc, bundle))
    for p in problems:
        sys.stdout.write(p + "\n")
    if problems:
        return 1
    sys.stdout.write(f"{config}: valid\n")
    return 0
