"""The package's layers, checked from the source: a module may import its
own layer and the layers below it, never one above (lazy imports inside
functions included), and the module-level imports have no cycle.  The map
is docs/design.md's "Layers"."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "pyrunc"

# lowest first; a module belongs to the first prefix that matches it
LAYERS = [
    (
        "kernel and basics",
        [
            "pyrunc.linux",
            "pyrunc.lightos",
            "pyrunc.errors",
            "pyrunc.fastjson",
            "pyrunc.faults",
            "pyrunc.log",
            "pyrunc.defaults",
            "pyrunc.criu_rpc",
            "pyrunc.__init__",
        ],
    ),
    (
        "walls",
        [
            "pyrunc.config",
            "pyrunc.capabilities",
            "pyrunc.namespaces",
            "pyrunc.console",
            "pyrunc.lsm",
            "pyrunc.seccomp",
            "pyrunc.process",
            "pyrunc.rootfs",
            "pyrunc.cgroups",
            "pyrunc.hooks",
            "pyrunc.netdev",
            "pyrunc.state",
            "pyrunc.exeseal",
            "pyrunc.waiter",
            "pyrunc.waiter_build",
            "pyrunc.rootless",
            "pyrunc.caller",
        ],
    ),
    ("stages", ["pyrunc.stages"]),
    (
        "lifecycle",
        [
            "pyrunc.container",
            "pyrunc.creation",
            "pyrunc.execution",
            "pyrunc.checkpoint",
            "pyrunc.inspect",
            "pyrunc.features",
            "pyrunc.runtime",
            "pyrunc.records",
        ],
    ),
    ("cli", ["pyrunc.cli"]),
    ("entry points", ["pyrunc.launcher", "pyrunc.modcache", "pyrunc.__main__"]),
]


def modules():
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(PKG.parent).with_suffix("").parts
        name = ".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts)
        out[name] = p
    return out


def layer_of(name):
    probe = "pyrunc.__init__" if name == "pyrunc" else name
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(probe == p or probe.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"{name} is in no layer: add it to LAYERS and docs/design.md")


def imports(name, path, mods):
    """[(imported module, at module level?)] for the package's own modules."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                full = f"{target}.{alias.name}"
                hit = full if full in mods else target if target in mods else None
                if hit and hit != name:
                    out.append((hit, node.col_offset == 0))
        elif isinstance(node, ast.Import):
            out += [(a.name, node.col_offset == 0) for a in node.names if a.name in mods and a.name != name]
    return out


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)


def test_no_import_goes_up_a_layer():
    mods = modules()
    wrong = []
    for name, path in mods.items():
        for target, _ in imports(name, path, mods):
            if target == "pyrunc" or name == "pyrunc":
                continue
            if layer_of(target) > layer_of(name):
                wrong.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert not wrong, "\n".join(sorted(wrong))


def test_module_level_imports_have_no_cycle():
    mods = modules()
    graph = {n: {t for t, top in imports(n, p, mods) if top} for n, p in mods.items()}
    # a package's __init__ importing its own submodules is how packages re-export
    for n in graph:
        graph[n] = {t for t in graph[n] if not t.startswith(n + ".")}
    state, cycles = {}, []

    def visit(n, stack):
        state[n] = 1
        for t in graph.get(n, ()):
            if state.get(t) == 1:
                cycles.append(" -> ".join(stack[stack.index(t) :] + [t]))
            elif t not in state:
                visit(t, stack + [t])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, "\n".join(cycles)


def test_the_checker_sees_a_violation(tmp_path):
    """The rule is not vacuous: a wall importing the CLI is reported."""
    mods = modules()
    fake = tmp_path / "seccomp.py"
    fake.write_text("from .cli import main\n")
    found = [t for t, _ in imports("pyrunc.seccomp", fake, mods)]
    assert found == ["pyrunc.cli"] and layer_of("pyrunc.cli") > layer_of("pyrunc.seccomp")
