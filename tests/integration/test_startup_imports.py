"""What the engines' commands read at start-up (issue 18: the module layout
must not make a command slower; pyrunc/modcache.py).

Every command the engines call takes its modules from the launcher's module
cache: traced with strace, the only ``.pyc`` files a command opens are the
interpreter's own start-up ones (``encodings``, before the launcher runs)
and the cache's own module (``pyrunc/modcache``, which the launcher loads
by its path; ``pyrunc/__init__`` when it falls back to the ordinary
import).  A module that a command imports lazily and the cache's
HOT_MODULES misses shows up here by name.
"""

import os
import shutil
import subprocess
import tempfile

import pytest

from helpers import REPO, RUNTIME, run_importtime, runtime_is_pyrunc

pytestmark = pytest.mark.skipif(
    not runtime_is_pyrunc
    or not shutil.which("strace")
    or not os.path.isfile(os.path.join(REPO, ".venv", "bin", "pyrunc")),
    reason="pyrunc's project launcher, traced with strace",
)

# the modules that load before the cache is open
ALLOWED = {"encodings/__init__", "encodings/aliases", "encodings/utf_8", "pyrunc/__init__", "pyrunc/modcache"}


@pytest.fixture(scope="module", autouse=True)
def fresh_cache():
    """The cache as `make venv` leaves it, rebuilt from the tree as it is now
    (an edit since the last build would otherwise show as a miss)."""
    from pyrunc import launcher

    venv = os.path.join(REPO, ".venv")
    copy = launcher.sealed_copy_path(venv)
    purelib = launcher._purelib(venv)
    launcher.build_module_cache(copy, purelib, launcher._source_root(purelib))


def _opened_pycs(rt, *args, stdin=subprocess.DEVNULL):
    """The .pyc files the runtime's own process opens for ``args`` (not its
    children: they import nothing)."""
    # output to a file: a created init keeps its stdio, so a pipe's EOF never comes
    with tempfile.NamedTemporaryFile("r") as trace, tempfile.TemporaryFile("w+") as err:
        p = subprocess.run(
            ["strace", "-qq", "-e", "trace=openat", "-o", trace.name, RUNTIME, "--root", rt.root, *args],
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=err,
            timeout=60,
        )
        opened = [ln.split('"')[1] for ln in trace.read().splitlines() if ".pyc" in ln and '"' in ln]
        err.seek(0)
        assert p.returncode == 0, f"{args}: {err.read()}"
    names = set()
    for path in opened:
        head, _, tail = path.rpartition("/__pycache__/")
        names.add(os.path.basename(head) + "/" + tail.split(".")[0])
    return names - ALLOWED


def test_engine_commands_import_only_from_the_cache(rt, bundle):
    bundle.set_args("sleep", "60").write()
    cid = "imp-" + os.urandom(3).hex()
    rt._track(cid)
    extra = {}
    extra["create"] = _opened_pycs(rt, "create", "--bundle", bundle.path, cid)
    for args in (
        ["start", cid],
        ["state", cid],
        ["exec", cid, "true"],
        ["pause", cid],
        ["resume", cid],
        ["update", "--pids-limit", "99", cid],
        ["events", "--stats", cid],
        ["kill", cid, "KILL"],
    ):
        extra[args[0]] = _opened_pycs(rt, *args)
    extra["list"] = _opened_pycs(rt, "list")
    rt.wait_status(cid, "stopped")
    extra["delete"] = _opened_pycs(rt, "delete", cid)
    bundle.set_args("true").write()
    run_id = "imp-" + os.urandom(3).hex()
    rt._track(run_id)
    extra["run"] = _opened_pycs(rt, "run", "--bundle", bundle.path, run_id)
    assert {verb: names for verb, names in extra.items() if names} == {}


def _listed_directories(rt, *args):
    """The directories the runtime's own process opens to list them."""
    with tempfile.NamedTemporaryFile("r") as trace:
        p = subprocess.run(
            ["strace", "-qq", "-e", "trace=openat", "-o", trace.name, RUNTIME, "--root", rt.root, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=60,
        )
        assert p.returncode == 0, f"{args}: {p.stderr}"
        return {ln.split('"')[1] for ln in trace.read().splitlines() if "O_DIRECTORY" in ln and '"' in ln}


def test_the_launcher_lists_no_directory_of_pyruncs_sys_path(rt, bundle):
    """The launcher loads the cache's module by its path: the path finder
    lists neither the tree nor site-packages nor the package (~0.3 ms of
    every command).  The control: ``features``, a module the cache lacks,
    is found by listing the package directory."""
    from pyrunc import launcher

    package = os.path.join(REPO, "pyrunc")
    ours = {REPO, package, launcher._purelib(os.path.join(REPO, ".venv"))}
    bundle.set_args("sleep", "60").write()
    cid = "imp-" + os.urandom(3).hex()
    rt._track(cid)
    rt.create(cid, bundle)
    listed = {
        args[0]: _listed_directories(rt, *args) & ours for args in (["state", cid], ["start", cid], ["kill", cid])
    }
    assert listed == {"state": set(), "start": set(), "kill": set()}
    assert package in _listed_directories(rt, "features")


def test_the_control_a_module_outside_the_cache_is_seen(rt):
    """The same trace sees a module that the cache lacks: ``features`` imports
    pyrunc.features, which is off the engines' path."""
    assert "pyrunc/features" in _opened_pycs(rt, "features")


# What the commands that only read the state and signal, connect or remove
# must not load: the typed model, the resource logic (cgroups/resources.py:
# only writing limits needs it), ctypes and the syscall module, the API's
# result records (but `state`, which prints one), create's module.  Each costs a fraction of a millisecond on every call
# (docs/performance.md, section 10).  Nor `os` (~1.2 ms: pyrunc/lightos.py),
# nor what makes rootless containers (the caller's side is pyrunc/caller.py).
HEAVY = {
    "pyrunc.rootless",
    "os",
    "_collections_abc",
    "posixpath",
    "pyrunc.config.model",
    "pyrunc.cgroups.resources",
    "ctypes",
    "pyrunc.records",
    "pyrunc.creation",
    "pyrunc.linux.syscalls",
}


def _imported(rt, *args):
    """The modules the runtime's process imports for ``args``."""
    p, names = run_importtime(rt, *args)
    assert p.returncode == 0, f"{args}: {p.stderr[-2000:]}"
    return names


def test_light_commands_do_not_load_the_heavy_modules(rt, bundle):
    bundle.set_args("sleep", "60").write()
    cid = "imp-" + os.urandom(3).hex()
    rt._track(cid)
    rt.create(cid, bundle)
    loaded = {}
    for args in (["state", cid], ["start", cid], ["pause", cid], ["resume", cid], ["kill", cid, "KILL"]):
        loaded[args[0]] = _imported(rt, *args) & (HEAVY - {"pyrunc.records"} if args[0] == "state" else HEAVY)
    rt.wait_status(cid, "stopped")
    loaded["delete"] = _imported(rt, "delete", cid) & HEAVY
    assert {verb: names for verb, names in loaded.items() if names} == {}


def test_the_control_update_loads_the_resource_logic(rt, bundle):
    """The same check sees a heavy module where a command needs it."""
    bundle.set_args("sleep", "60").write()
    cid = "imp-" + os.urandom(3).hex()
    rt._track(cid)
    rt.create(cid, bundle)
    assert "pyrunc.cgroups.resources" in _imported(rt, "update", "--pids-limit", "99", cid)


def _last_process_imports(stderr):
    """The modules the command's final process imported: an interpreter
    started outside the installation's read-only view re-executes itself
    from it first (exeseal.py, which loads os for the exec), and
    ``-X importtime`` then prints a table per process."""
    lines = stderr.splitlines()
    heads = [i for i, ln in enumerate(lines) if ln.startswith("import time: self")]
    last = lines[heads[-1] :] if heads else lines
    return {ln.rsplit("|", 1)[1].strip() for ln in last if ln.startswith("import time:") and "|" in ln}


def _create_importtime(rt, bundle, cid):
    """The modules ``create``'s final process imports (the interpreter
    started with ``-X importtime``; stderr to a file: the created init keeps
    its stdio, a pipe's EOF never comes)."""
    with open(rt.path) as f:
        interpreter = f.readline()[2:].split()[0]
    with tempfile.TemporaryFile("w+") as err:
        argv = [
            interpreter,
            "-X",
            "importtime",
            "-IS",
            rt.path,
            "--root",
            rt.root,
            "create",
            "--bundle",
            bundle.path,
            cid,
        ]
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, timeout=60)
        err.seek(0)
        out = err.read()
    assert p.returncode == 0, out[-2000:]
    return _last_process_imports(out)


def test_create_run_and_exec_do_not_load_os(rt, bundle):
    """create, run and exec take os's calls from pyrunc/lightos.py too: `os`
    and its `_collections_abc` (~0.85 ms of CPU) stay unloaded, with the
    engines' usual extras (a network namespace, a seccomp filter, a hook);
    so does the rootless module for root."""
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    bundle.config["hooks"] = {"poststop": [{"path": "/bin/true"}]}
    bundle.set_namespace("network")
    bundle.set_args("sleep", "60").write()
    first = "imp-" + os.urandom(3).hex()
    rt._track(first)
    p = rt.run(first, bundle, "--detach")  # compiles the filter once (the bindings may load os)
    assert p.returncode == 0, p.stderr
    unwanted = {"os", "_collections_abc", "posixpath"}
    if os.geteuid() == 0:
        unwanted.add("pyrunc.rootless")  # what an unprivileged caller's checks need
    loaded = {}
    cid = "imp-" + os.urandom(3).hex()
    rt._track(cid)
    names = _create_importtime(rt, bundle, cid)
    assert "pyrunc.creation" in names  # the control: create's own modules were seen
    # the library's returned record, built after the init's fork: the CLI asks for none
    loaded["create"] = names & (unwanted | {"pyrunc.records"})
    p, _ = run_importtime(rt, "exec", first, "true")
    assert p.returncode == 0, p.stderr[-2000:]
    loaded["exec"] = _last_process_imports(p.stderr) & unwanted
    bundle.set_args("true").write()
    cid = "imp-" + os.urandom(3).hex()
    rt._track(cid)
    p, _ = run_importtime(rt, "run", "--bundle", bundle.path, cid)
    assert p.returncode == 0, p.stderr[-2000:]
    loaded["run"] = _last_process_imports(p.stderr) & unwanted
    assert loaded == {"create": set(), "exec": set(), "run": set()}


def test_the_control_a_command_that_needs_os_loads_it(rt, tmp_path):
    """The same check sees `os` where a command loads it (`spec` writes a
    file with os's help)."""
    p, names = run_importtime(rt, "spec", "--bundle", str(tmp_path))
    assert p.returncode == 0, p.stderr[-2000:]
    assert {"os", "_collections_abc"} <= names


def test_create_run_and_exec_do_not_load_the_ctypes_package(rt, bundle):
    """The kernel calls go through pyrunc/linux/ffi.py, on _ctypes: the
    ctypes package (~1.5 ms) stays unloaded, with a network namespace (the
    init brings lo up) and with a seccomp filter (loaded by the init; the
    compiled program comes from the per-host cache after the first create)."""
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    bundle.set_namespace("network")
    bundle.set_args("true").write()
    first = "imp-" + os.urandom(3).hex()
    rt._track(first)
    p = rt.run(first, bundle)  # compiles the filter (the bindings may use ctypes), fills the cache
    assert p.returncode == 0, p.stderr
    cid = "imp-" + os.urandom(3).hex()
    rt._track(cid)
    p, names = run_importtime(rt, "run", "--bundle", bundle.path, cid)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "pyrunc.linux.ffi" in names and "_ctypes" in names  # the control: the kernel calls were loaded
    loaded = {"run": names & {"ctypes", "ctypes._endian"}}
    bundle.config["linux"].pop("seccomp")
    bundle.set_args("sleep", "60").write()
    cid = "imp-" + os.urandom(3).hex()
    rt._track(cid)
    assert rt.run(cid, bundle, "--detach").returncode == 0
    p, names = run_importtime(rt, "exec", cid, "true")
    assert p.returncode == 0, p.stderr[-2000:]
    loaded["exec"] = names & {"ctypes", "ctypes._endian"}
    assert loaded == {"run": set(), "exec": set()}
