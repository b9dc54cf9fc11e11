"""The ``pyrunc`` command line: runc's global flags, subcommands, outputs
and exit codes (what the engines call and parse: docs/engines.md).

``main()`` parses the global flags, then imports only the module of the
subcommand being run.  Every error becomes one line (on stderr and, with
``--log``, in the log), exit status 1 -- or the status a verb put on the
exception as ``exit_status`` (``exec`` failures: 255, as runc); never a
traceback.
"""

from .. import lightos as os  # os's calls without importing os (lightos.py)
import sys

from ..errors import PyruncError, UsageError
from ..log import log

# --- argument parsing ------------------------------------------------------
# Go-flag / urfave-cli style, as runc's callers use it (here rather than in
# a module of its own: one module less to import on every call).
#
# - ``--flag value``, ``--flag=value``, ``-flag value``, ``-flag=value`` (one
#   or two dashes, for long and short names alike);
# - boolean flags take no value, but accept ``--flag=true|false``;
# - repeated list flags accumulate (``-e A -e B``); repeated scalars: last wins;
# - flags may follow positional arguments (urfave-cli reorders them), except
#   for commands that stop at the first positional (``exec``, ``ps``: what
#   follows the id belongs to the process);
# - ``--`` ends the flags.
#
# argparse is not used: it costs ~10 ms to import, on every call, and does
# not implement these semantics.

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


# --- the command line --------------------------------------------------------

# The subcommands whose processes enter a container's namespaces: they run
# from a read-only view of the interpreter (see pyrunc/exeseal.py).
SEALED_VERBS = frozenset(("create", "run", "exec"))

GLOBAL_FLAGS = (
    # default: /run/pyrunc, or $XDG_RUNTIME_DIR/pyrunc in rootless mode (Globals.store)
    Flag(
        "root",
        STR,
        None,
        "root directory for storage of container state (default /run/pyrunc, rootless: $XDG_RUNTIME_DIR/pyrunc)",
    ),
    Flag("log", STR, None, "log file path (default: stderr)"),
    Flag("log-format", STR, "text", "log format: text or json"),
    Flag("debug", BOOL, False, "enable debug logging"),
    Flag("systemd-cgroup", BOOL, False, "manage the cgroup as a systemd unit (cgroupsPath slice:prefix:name)"),
    Flag("rootless", STR, "auto", "rootless mode: true, false or auto"),
    Flag("cgroup-manager", STR, None, "crun's: cgroupfs, systemd or disabled"),
    Flag("criu", STR, None, "path to criu, for checkpoint and restore (default: criu in PATH)"),
    Flag("help|h", BOOL, False, "show help"),
    Flag("version|v", BOOL, False, "print the version"),
)

# subcommand -> (module in pyrunc.cli, function, one-line help)
COMMANDS = {
    "create": ("lifecycle", "cmd_create", "create a container"),
    "start": ("lifecycle", "cmd_start", "start a created container"),
    "run": ("lifecycle", "cmd_run", "create and run a container"),
    "state": ("lifecycle", "cmd_state", "output the state of a container"),
    "kill": ("lifecycle", "cmd_kill", "send a signal to the container's init process"),
    "delete": ("lifecycle", "cmd_delete", "delete a container and everything it holds"),
    "list": ("lifecycle", "cmd_list", "list containers"),
    "exec": ("exec", "cmd_exec", "execute a new process inside the container"),
    "pause": ("cgroup_cmds", "cmd_pause", "suspend all processes of the container"),
    "resume": ("cgroup_cmds", "cmd_resume", "resume all processes of the container"),
    "ps": ("cgroup_cmds", "cmd_ps", "list the processes running in the container"),
    "update": ("cgroup_cmds", "cmd_update", "update the container's resource limits"),
    "events": ("cgroup_cmds", "cmd_events", "display container events and statistics"),
    "inspect": ("inspect_cmd", "cmd_inspect", "show the isolation a container really has"),
    "spec": ("info", "cmd_spec", "create a new specification file"),
    "features": ("info", "cmd_features", "show the enabled features"),
    "validate": ("info", "cmd_validate", "validate a bundle's config.json"),
    "checkpoint": ("checkpoint", "cmd_checkpoint", "checkpoint a running container (criu)"),
    "restore": ("checkpoint", "cmd_restore", "restore a container from a checkpoint (criu)"),
}

USAGE = """pyrunc - an OCI runtime-spec 1.3.0 container runtime (runc compatible)

usage: pyrunc [global options] command [command options] [arguments...]

commands:
{commands}

global options:
{globals}
"""


def usage():
    cmds = "\n".join(f"   {k:<10} {v[2]}" for k, v in COMMANDS.items())
    glob = "\n".join(f"   --{f.names[0]:<16} {f.help}" for f in GLOBAL_FLAGS)
    return USAGE.format(commands=cmds, globals=glob)


def version_text():
    from .. import SPEC_VERSION, __version__

    lines = [
        f"pyrunc version {__version__}",
        "commit: none",
        f"spec: {SPEC_VERSION}",
        f"python: {sys.version.split()[0]}",
    ]
    try:
        from ..seccomp import libseccomp_version

        v = libseccomp_version()
    except Exception:  # noqa: BLE001 - version output must not fail
        v = None
    if v:
        lines.append(f"libseccomp: {v}")
    try:  # criu check's verdict is cached per boot (pyrunc/checkpoint.py)
        from ..checkpoint import criu_usable

        if criu_usable():
            lines.append("+CRIU")
    except Exception:  # noqa: BLE001 - version output must not fail
        pass
    return "\n".join(lines) + "\n"


class Globals:
    """The parsed global flags, handed to every subcommand; ``runtime()``
    is the library's ``Runtime`` they configure, which the verbs call."""

    def __init__(self, opts):
        self.root = opts["root"]
        self.debug = opts["debug"]
        self.log_path = opts["log"]
        self.log_format = opts["log_format"]
        self.systemd_cgroup = opts["systemd_cgroup"] or opts["cgroup_manager"] == "systemd"
        self.cgroup_manager = opts["cgroup_manager"]
        # True, False or None (auto); the module is imported only when the
        # value needs parsing or the default --root is wanted (engines pass
        # --root and no --rootless: nothing on their hot path)
        self.rootless = None
        if opts["rootless"] != "auto":
            from ..caller import parse_flag

            self.rootless = parse_flag(opts["rootless"])
        self.criu = opts["criu"]
        self._runtime = None

    def runtime(self):
        """The ``pyrunc.runtime.Runtime`` of these flags (made once).  The
        default root (no --root) is decided when it is first needed, so
        that spec and features run without XDG_RUNTIME_DIR."""
        if self._runtime is None:
            from ..runtime import Runtime

            self._runtime = Runtime(
                self.root,
                rootless=self.rootless,
                systemd_cgroup=self.systemd_cgroup,
                debug=self.debug,
                criu=self.criu,
                exits_after_call=True,
            )
        return self._runtime

    def store(self):
        return self.runtime().store


def _split_globals(argv):
    """Global flags are those before the first non-flag word (the verb)."""
    by_name = {n: f for f in GLOBAL_FLAGS for n in f.names}
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("-") or a == "--":
            break
        name, eq, _ = a.lstrip("-").partition("=")
        f = by_name.get(name)
        i += 1
        if f is not None and f.kind != BOOL and not eq:
            i += 1
    return argv[:i], argv[i:]


def _freeze_loaded_objects():
    """Move every object alive now (modules, functions, tables) to the
    collector's permanent generation and make sure collection is on.
    Collections then only walk what the command itself allocates; in the
    forked container init, whose pages are shared copy-on-write with the
    runtime, a collection no longer writes to (and so copies) every page
    holding an object: less memory charged to the container."""
    import gc

    gc.freeze()
    gc.enable()


def exit_now(rc):
    """Exit with main()'s status without the interpreter's teardown (module
    and object destruction, a last collection: milliseconds on every call).
    Nothing in pyrunc registers atexit handlers or starts threads; stdio is
    flushed here.  If flushing fails (e.g. a closed pipe), the ordinary
    sys.exit path reports it exactly as before."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - let the normal exit handle it
        sys.exit(rc)
    os._exit(rc if isinstance(rc, int) else (0 if rc is None else 1))


def main(argv=None):
    whole_process = argv is None
    argv = sys.argv[1:] if argv is None else argv
    try:
        gargv, rest = _split_globals(argv)
        opts, _ = parse(GLOBAL_FLAGS, gargv)
        if opts["log_format"] not in ("text", "json"):
            raise UsageError(f"invalid log format {opts['log_format']!r}: must be text or json")
        log.configure(opts["log"], opts["log_format"], opts["debug"])
        if opts["version"]:
            sys.stdout.write(version_text())
            return 0
        if opts["help"] or not rest or rest[0] in ("help", "h"):
            sys.stdout.write(usage())
            return 0 if (opts["help"] or rest) else 1
        g = Globals(opts)
        verb, args = rest[0], rest[1:]
        entry = COMMANDS.get(verb)
        if entry is None:
            raise UsageError(f"No help topic for '{verb}'")
        if whole_process and verb in SEALED_VERBS:
            # before anything of ours can enter a container (CVE-2019-5736)
            from ..exeseal import reexec_sealed

            reexec_sealed()
        module = __import__(f"pyrunc.cli.{entry[0]}", fromlist=[entry[1]])
        _freeze_loaded_objects()
        return getattr(module, entry[1])(g, args)
    except PyruncError as e:
        log.error(str(e))
        return _status(e)
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        msg = e.strerror or str(e)
        if e.filename:
            msg = f"{e.filename}: {msg}"
        log.error(msg)
        return _status(e)
    except Exception as e:  # noqa: BLE001 - one line, never a traceback
        if os.environ.get("PYRUNC_TRACEBACK"):
            raise
        log.error(f"internal error: {type(e).__name__}: {e}")
        return _status(e)


def _status(exc):
    """The exit status for a failure: 1 (runc's ``fatal``) unless the verb
    chose another one on the exception (``exit_status``)."""
    status = getattr(exc, "exit_status", 1)
    return status if isinstance(status, int) and 0 < status < 256 else 1
