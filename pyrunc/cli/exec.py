"""exec: run a process in a running container (runc's flags)."""

import sys

from ..errors import UsageError
from .flags import BOOL, INT, LIST, STR, Flag, parse

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
    cid, command = args[0], args[1:]
    from ..execution import build_process, exec_in
    store = g.store()
    store.load(cid)  # "container does not exist" before anything else
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
    cfg = store.load_config(cid) if process_doc is None else None
    proc = build_process(cfg, process_doc, args=command, env=opts["env"], cwd=opts["cwd"],
                         user=opts["user"], additional_gids=opts["additional_gids"],
                         caps=opts["cap"], no_new_privs=opts["no_new_privs"],
                         terminal=opts["tty"], apparmor=opts["apparmor"],
                         label=opts["process_label"])
    if process_doc is not None and opts["tty"]:
        proc.terminal = True
    return exec_in(store, cid, proc, detach=opts["detach"], pid_file=opts["pid_file"],
                   console_socket=opts["console_socket"], preserve_fds=opts["preserve_fds"],
                   ignore_paused=opts["ignore_paused"],
                   cgroup_sub=opts["cgroup"] or None)
