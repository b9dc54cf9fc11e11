"""checkpoint and restore (runc's flags; Runtime.checkpoint/restore, whose
core is pyrunc/checkpoint.py)."""

from .. import checkpoint as core
from ..errors import UsageError
from . import BOOL, INT, LIST, STR, Flag, parse

COMMON_FLAGS = (
    # podman decides that a runtime can checkpoint by `RUNTIME checkpoint --help` exiting 0
    Flag("help|h", BOOL, False, "show this help"),
    Flag("image-path", STR, "", "path for the criu image files (default: ./checkpoint)"),
    Flag("work-path", STR, "", "path for criu's work files and log"),
    Flag("tcp-established", BOOL, False, "allow open tcp connections"),
    Flag("ext-unix-sk", BOOL, False, "allow external unix sockets"),
    Flag("shell-job", BOOL, False, "allow shell jobs"),
    Flag("file-locks", BOOL, False, "handle file locks"),
    Flag("manage-cgroups-mode", STR, "", "cgroups mode: soft|full|strict|ignore (default: soft)"),
    Flag("empty-ns", LIST, None, "create a namespace, but do not restore its properties"),
    Flag("auto-dedup", BOOL, False, "enable auto deduplication of memory images"),
    Flag("lazy-pages", BOOL, False, "use userfaultfd to lazily restore memory pages"),
)
CHECKPOINT_FLAGS = COMMON_FLAGS + (
    Flag("parent-path", STR, "", "path of the previous images (pre-dump), relative to --image-path"),
    Flag("leave-running", BOOL, False, "leave the process running after checkpointing"),
    Flag("pre-dump", BOOL, False, "dump the memory only, leave the container running"),
    Flag("status-fd", INT, -1, "accepted for compatibility (lazy pages)"),
    Flag("page-server", STR, "", "not supported"),
)
RESTORE_FLAGS = COMMON_FLAGS + (
    Flag("bundle|b", STR, "", "path to the root of the bundle directory"),
    Flag("detach|d", BOOL, False, "detach from the container's process"),
    Flag("pid-file", STR, None, "file to write the init's pid to"),
    Flag("no-subreaper", BOOL, False, "do not make this process a subreaper"),
    Flag("no-pivot", BOOL, False, "accepted for compatibility: criu builds the mount namespace"),
    Flag("console-socket", STR, None, "AF_UNIX socket that receives the restored pty master"),
    Flag("lsm-profile", STR, "", "not supported"),
    Flag("lsm-mount-context", STR, "", "not supported"),
)


def _help(verb, flags, usage):
    import sys

    sys.stdout.write(f"usage: pyrunc {verb} [command options] <container-id>\n\n{usage}\n\noptions:\n")
    sys.stdout.write("".join(f"   --{f.names[0]:<22} {f.help}\n" for f in flags))
    return 0


def _one_id(args, verb):
    if len(args) != 1:
        raise UsageError(f'"{verb}" requires exactly 1 argument')
    return args[0]


def _options(g, opts, **extra):
    return core.CriuOptions(
        image_path=opts["image_path"],
        work_path=opts["work_path"],
        tcp_established=opts["tcp_established"],
        ext_unix_sk=opts["ext_unix_sk"],
        shell_job=opts["shell_job"],
        file_locks=opts["file_locks"],
        manage_cgroups_mode=opts["manage_cgroups_mode"],
        empty_ns=opts["empty_ns"],
        auto_dedup=opts["auto_dedup"],
        lazy_pages=opts["lazy_pages"],
        criu_path=g.criu,
        **extra,
    )


def cmd_checkpoint(g, argv):
    opts, args = parse(CHECKPOINT_FLAGS, argv)
    if opts["help"]:
        return _help("checkpoint", CHECKPOINT_FLAGS, "Save the state of a running container with criu.")
    cid = _one_id(args, "checkpoint")
    if opts["page_server"]:
        raise UsageError("--page-server is not supported by pyrunc")
    o = _options(
        g, opts, parent_path=opts["parent_path"], leave_running=opts["leave_running"], pre_dump=opts["pre_dump"]
    )
    g.runtime().checkpoint(cid, o)
    return 0


def cmd_restore(g, argv):
    opts, args = parse(RESTORE_FLAGS, argv)
    if opts["help"]:
        return _help("restore", RESTORE_FLAGS, "Restore a container from a checkpoint made by criu.")
    cid = _one_id(args, "restore")
    for name in ("lsm_profile", "lsm_mount_context"):
        if opts[name]:
            raise UsageError(f"--{name.replace('_', '-')} is not supported by pyrunc restore yet")
    o = _options(g, opts)
    p = g.runtime().restore(
        cid,
        opts["bundle"],
        o,
        pid_file=opts["pid_file"],
        detach=opts["detach"],
        no_subreaper=opts["no_subreaper"],
        no_pivot=opts["no_pivot"],
        console_socket=opts["console_socket"],
    )
    return 0 if opts["detach"] else p.exit_status
