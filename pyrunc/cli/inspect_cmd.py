"""inspect: the walls a container really has, read back from the kernel."""

import sys

from ..errors import UsageError
from . import STR, Flag, parse


def cmd_inspect(g, argv):
    opts, args = parse(
        (
            Flag("format|f", STR, "text", "text or json"),
            Flag("diagram", STR, None, "also write an SVG diagram to FILE"),
        ),
        argv,
    )
    if len(args) != 1:
        raise UsageError('"inspect" requires exactly 1 argument')
    if opts["format"] not in ("text", "json"):
        raise UsageError(f"invalid format option {opts['format']!r}")
    from .. import inspect as insp
    from ..container import Container
    from ..errors import ContainerNotRunning

    store = g.store()
    c = Container.load(store, args[0])
    status = c.status
    if status in ("stopped", "creating"):
        raise ContainerNotRunning()
    mgr = c.cgroup_manager()
    report = insp.inspect(
        c.state.init_pid,
        store.load_spec(c.id),
        cgroup_paths=mgr.paths() if mgr is not None else None,
        status=status,
        container_id=c.id,
    )
    out = insp.render_json(report) if opts["format"] == "json" else insp.render_text(report)
    sys.stdout.write(out if out.endswith("\n") else out + "\n")
    if opts["diagram"]:
        with open(opts["diagram"], "w") as f:
            f.write(insp.render_svg(report))
    return insp.exit_code(report)
