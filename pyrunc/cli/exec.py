"""exec: run a process in a running container (runc's flags).

Exit status: the process's own in the foreground; 255 for every failure
once the arguments parsed (runc's ``exec failed: ...``), including the
refusals before anything starts; 1 for flag syntax errors (as runc's flag
parser).
"""

import sys

from ..errors import PyruncError, UsageError
from . import BOOL, INT, LIST, STR, Flag, parse

EXEC_FAILED = 255

# The largest uid/gid a process may be given, as runc: a uid_t of 2^32-1 is
# -1 to setresuid/setresgid/setgroups, which means "leave it unchanged", so
# 4294967295 would keep the runtime's root; 2^31 and up are negative in the
# kernel's signed view and refused the same way.
MAX_ID = 2**31 - 1

EXEC_FLAGS = (
    Flag("console-socket", STR, None, "AF_UNIX socket that receives the pty master"),
    Flag("cwd", STR, None, "current working directory in the container"),
    Flag("env|e", LIST, None, "set environment variables"),
    Flag("tty|t", BOOL, False, "allocate a pseudo-TTY"),
    Flag("user|u", STR, None, "UID (format: <uid>[:<gid>])"),
    Flag("additional-gids|g", LIST, None, "additional gids"),
    Flag("process|p", STR, None, "path to the process.json"),
    Flag("detach|d", BOOL, False, "detach from the container's process"),
    Flag("pid-file", STR, None, "file to write the process id to"),
    Flag("process-label", STR, None, "set the asm process label"),
    Flag("apparmor", STR, None, "set the apparmor profile"),
    Flag("no-new-privs", BOOL, False, "set the no new privileges value"),
    Flag("cap|c", LIST, None, "add a capability to the bounding set"),
    Flag("preserve-fds", INT, 0, "pass N additional fds to the process"),
    Flag("cgroup", LIST, None, "run the process in a (sub)cgroup"),
    Flag("ignore-paused", BOOL, False, "allow exec in a paused container"),
)


def cmd_exec(g, argv):
    opts, args = parse(EXEC_FLAGS, argv, stop_at_positional=True)
    if not args:
        raise UsageError('"exec" requires a minimum of 1 argument')
    gids = []
    for text in opts["additional_gids"]:
        if _go_int(text) is None:  # not an integer at all: a flag syntax error (runc: 1)
            raise UsageError(f'invalid value "{text}" for flag -additional-gids: not an integer')
        gids.append(_go_int(text))
    try:
        return _exec(g, opts, args, gids)
    except Exception as e:
        # runc: every failure from here on is "exec failed", exit status 255
        # (a foreground exec otherwise exits with the process's own status)
        e.exit_status = EXEC_FAILED  # type: ignore[attr-defined]  # read by the CLI's error handler
        raise


def _go_int(text):
    """``text`` as Go's strconv reads a decimal integer (an optional sign,
    digits, nothing else), or None."""
    digits = text[1:] if text[:1] in ("-", "+") else text
    return int(text) if digits.isascii() and digits.isdigit() else None


def _check_id(value, flag, what, text=None):
    if not 0 <= value <= MAX_ID:
        raise PyruncError(
            f"exec {flag} {text if text is not None else value}: {what} {value} is outside the range 0-{MAX_ID}"
        )
    return value


def _parse_user(text):
    """``--user UID[:GID]`` -> "UID[:GID]" with both checked: decimal
    numbers (an optional sign, no spaces) within 0..MAX_ID."""
    uid, sep, gid = text.partition(":")
    out = []
    for part, what in ((uid, "uid"), (gid, "gid")) if sep else ((uid, "uid"),):
        value = _go_int(part)
        if value is None:
            raise PyruncError(
                f"exec --user {text}: {what} {part!r} is not a number "
                f"(format: <uid>[:<gid>], each in the range 0-{MAX_ID})"
            )
        out.append(str(_check_id(value, "--user", what, text)))
    return ":".join(out)


def _exec(g, opts, args, gids):
    cid, command = args[0], args[1:]
    rt = g.runtime()
    rt.store.load(cid)  # "container does not exist" before anything else
    user = _parse_user(opts["user"]) if opts["user"] else None  # "" is unset, as runc
    for gid in gids:
        _check_id(gid, "--additional-gids", "gid")
    process_doc = None
    if opts["process"]:
        from ..config.validate import parse_json

        try:
            with open(opts["process"], "rb") if opts["process"] != "-" else sys.stdin.buffer as f:
                process_doc = parse_json(f.read(), label=opts["process"])
        except OSError as e:
            raise UsageError(f"exec --process {opts['process']}: {e.strerror}") from None
    elif not command:
        raise UsageError("exec: no command given (args or --process)")
    p = rt.exec(
        cid,
        command,
        process=process_doc,
        env=opts["env"],
        cwd=opts["cwd"],
        user=user,
        additional_gids=gids,
        caps=opts["cap"],
        no_new_privs=opts["no_new_privs"],
        tty=opts["tty"],
        apparmor=opts["apparmor"],
        process_label=opts["process_label"],
        detach=opts["detach"],
        pid_file=opts["pid_file"],
        console_socket=opts["console_socket"],
        preserve_fds=opts["preserve_fds"],
        ignore_paused=opts["ignore_paused"],
        cgroup=opts["cgroup"] or None,
    )
    return 0 if opts["detach"] else p.exit_status
