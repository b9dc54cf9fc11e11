"""create, start, run, state, kill, delete, list: argv -> Runtime -> output."""

import sys

from ..errors import UsageError
from . import BOOL, INT, STR, Flag, parse

CREATE_FLAGS = (
    Flag("bundle|b", STR, "", "path to the root of the bundle directory"),
    Flag("config|f", STR, None, "crun's: path to the config file (relative to the bundle)"),
    Flag("console-socket", STR, None, "AF_UNIX socket that receives the pty master"),
    Flag("pid-file", STR, None, "file to write the init's pid to"),
    Flag("no-pivot", BOOL, False, "use MS_MOVE + chroot instead of pivot_root"),
    Flag("no-new-keyring", BOOL, False, "do not create a new session keyring"),
    Flag("preserve-fds", INT, 0, "pass N additional fds (3..3+N-1) to the container"),
)
RUN_FLAGS = CREATE_FLAGS + (
    Flag("detach|d", BOOL, False, "detach from the container's process"),
    Flag("keep", BOOL, False, "do not delete the container after it exits"),
)


def _one_id(args, verb):
    if len(args) != 1:
        raise UsageError(f'"{verb}" requires exactly 1 argument')
    return args[0]


def _create_opts(opts):
    return dict(
        config_path=opts["config"],
        pid_file=opts["pid_file"],
        console_socket=opts["console_socket"],
        no_pivot=opts["no_pivot"],
        no_new_keyring=opts["no_new_keyring"],
        preserve_fds=opts["preserve_fds"],
    )


def cmd_create(g, argv):
    opts, args = parse(CREATE_FLAGS, argv)
    cid = _one_id(args, "create")
    g.runtime().create(cid, opts["bundle"], record=False, **_create_opts(opts))
    return 0


def cmd_run(g, argv):
    opts, args = parse(RUN_FLAGS, argv)
    cid = _one_id(args, "run")
    p = g.runtime().run(cid, opts["bundle"], detach=opts["detach"], keep=opts["keep"], **_create_opts(opts))
    return 0 if opts["detach"] else p.exit_status


def cmd_start(g, argv):
    _, args = parse((), argv)
    g.runtime().start(_one_id(args, "start"))
    return 0


def _json(obj, indent=None):
    from ..fastjson import dumps  # json.dumps without importing json (re, enum)

    return dumps(obj, indent=indent)


def _compact_json(obj):
    from ..fastjson import dumps

    return dumps(obj, compact=True)


def cmd_state(g, argv):
    _, args = parse((), argv)
    state = g.runtime().state(_one_id(args, "state"))
    sys.stdout.write(_json(state.to_dict(), indent=2))
    return 0


def parse_signal(text):
    import _signal as signal  # the signal module's constants, without its enum import

    if text.isdigit():
        n = int(text)
        # 0 is no signal, only the existence and permission check (kill(2)),
        # which runc passes through: callers probe a container with it
        if not 0 <= n < 65:
            raise UsageError(f"invalid signal: {text}")
        return n
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    sig = getattr(signal, name, None)
    if not isinstance(sig, int) or name.startswith("SIG_"):
        raise UsageError(f"unknown signal {text!r}")
    return int(sig)


def cmd_kill(g, argv):
    opts, args = parse((Flag("all|a", BOOL, False, "signal all processes"),), argv)
    if len(args) not in (1, 2):
        raise UsageError('"kill" requires a minimum of 1 and a maximum of 2 arguments')
    sig = parse_signal(args[1]) if len(args) == 2 else 15
    g.runtime().kill(args[0], sig, all=opts["all"])
    return 0


def cmd_delete(g, argv):
    opts, args = parse((Flag("force|f", BOOL, False, "kill and delete a running container"),), argv)
    if not args:
        raise UsageError('"delete" requires at least 1 argument')
    rt = g.runtime()
    for cid in args:
        rt.delete(cid, force=opts["force"])
    return 0


def cmd_list(g, argv):
    opts, _ = parse(
        (Flag("format|f", STR, "table", "table or json"), Flag("quiet|q", BOOL, False, "display only container ids")),
        argv,
    )
    # No state root yet (nothing was ever created with this --root): an
    # empty list, as runc 1.1 prints; the root is not created by listing.
    states = g.runtime().list()
    if opts["quiet"]:
        sys.stdout.write("".join(s.id + "\n" for s in states))
        return 0
    if opts["format"] == "json":
        # one compact line, `null` for none: runc marshals a nil slice
        sys.stdout.write((_compact_json([s.to_dict() for s in states]) if states else "null") + "\n")
        return 0
    if opts["format"] != "table":
        raise UsageError(f"invalid format option {opts['format']!r}")
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    for s in states:
        rows.append((s.id, str(s.pid), s.status, s.bundle, s.created, s.owner))
    # runc's tabwriter layout: every column but the last is at least 12
    # wide and 3 more than its longest cell; the last is not padded
    widths = [max(12, max(len(r[i]) for r in rows) + 3) for i in range(5)]
    for r in rows:
        sys.stdout.write("".join(v.ljust(widths[i]) for i, v in enumerate(r[:5])) + r[5] + "\n")
    return 0
