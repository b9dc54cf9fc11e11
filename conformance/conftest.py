"""pytest wiring for the conformance suite.

  RUNTIME=/abs/path/to/runtime pytest conformance     (run under cgroup-sandbox)

Options / environment:
  RUNTIME                 runtime binary (default: <repo>/.venv/bin/pyrunc)
  --conformance-results F write per-test outcomes and cited clauses as JSON to F
                          (also env CONFORMANCE_RESULTS)
  CONFORMANCE_CGROUP_DRIVER  cgroupfs (default) or systemd: the global flag
                          --systemd-cgroup and slice:prefix:name cgroupsPaths
                          (a host booted with systemd; harness.py)
  CONFORMANCE_RUNTIME_FLAGS  global flags for every runtime command (overrides
                          the driver's default)

Every test cites the clause(s) it checks with @clause(file, heading, quote,
context=None); a citation that does not resolve to exactly one clause of
clauses.json fails collection.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import harness

REPO = harness.HERE.parent
DEFAULT_RUNTIME = str(REPO / ".venv" / "bin" / "pyrunc")


def pytest_addoption(parser):
    parser.addoption(
        "--conformance-results",
        default=os.environ.get("CONFORMANCE_RESULTS"),
        help="write per-test results with cited clauses as JSON here",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "clause(file, heading, quote, context=None): spec clause a test checks")
    config.addinivalue_line("markers", "meta: checks the suite itself, cites no clause")
    config._oc_results = []


def citations_of(item) -> list[harness.Citation]:
    out = []
    for m in item.iter_markers("clause"):
        out.append(harness.Citation(*m.args, **m.kwargs))
    return out


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselection: coverage sees every test
def pytest_collection_modifyitems(session, config, items):
    clauses = harness.load_clauses()
    errors = []
    for item in items:
        ids = []
        for c in citations_of(item):
            try:
                ids.append(harness.resolve(c, clauses)["id"])
            except ValueError as e:
                errors.append(f"{item.nodeid}: {e}")
        item._oc_clause_ids = ids
        if not ids and not item.get_closest_marker("meta"):
            errors.append(f"{item.nodeid}: cites no clause")
    config._oc_all_cited = {i for item in items for i in item._oc_clause_ids}
    config._oc_all_modules = {item.path.name for item in items}
    if errors:
        raise pytest.UsageError("bad clause citations:\n  " + "\n  ".join(errors))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if (
        rep.when == "call"
        or (rep.when == "setup" and rep.outcome != "passed")
        or (rep.when == "teardown" and rep.outcome == "failed")
    ):
        msg = ""
        if rep.outcome == "skipped" and isinstance(rep.longrepr, tuple):
            msg = rep.longrepr[2]
        elif rep.outcome == "failed":
            msg = str(
                rep.longrepr.reprcrash.message
                if hasattr(rep.longrepr, "reprcrash") and rep.longrepr.reprcrash
                else rep.longrepr
            )[:500]
        item.config._oc_results.append(
            {
                "nodeid": item.nodeid,
                "when": rep.when,
                "outcome": rep.outcome,
                "message": msg,
                "duration": round(rep.duration, 3),
                "clauses": getattr(item, "_oc_clause_ids", []),
            }
        )
    return rep


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("conformance_results")
    if not path:
        return
    # one entry per test: a failing teardown overrides a passing call
    by_test: dict[str, dict] = {}
    for r in session.config._oc_results:
        prev = by_test.get(r["nodeid"])
        if prev is None or r["outcome"] == "failed":
            by_test[r["nodeid"]] = r
    data = {
        "runtime": runtime_path(),
        "version": runtime_version(),
        "cgroup_driver": harness.CGROUP_DRIVER,
        "flags": harness.RUNTIME_FLAGS,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tests": list(by_test.values()),
    }
    Path(path).write_text(json.dumps(data, indent=1) + "\n")


def runtime_path() -> str:
    return os.environ.get("RUNTIME") or DEFAULT_RUNTIME


def runtime_version() -> str:
    try:
        p = subprocess.run([runtime_path(), "--version"], capture_output=True, text=True, timeout=20)
        return (p.stdout.strip().splitlines() or [""])[0]
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def session_dir():
    d = Path(tempfile.mkdtemp(prefix="oc-conformance-"))
    d.chmod(0o755)  # user-namespaced containers must traverse to their rootfs
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def runtime(session_dir) -> harness.RuntimeCLI:
    path = runtime_path()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.exit(f"RUNTIME {path!r} is not an executable file", returncode=2)
    if os.geteuid() != 0:
        pytest.exit("the conformance suite needs root", returncode=2)
    root = session_dir / "state"
    root.mkdir(mode=0o700)
    return harness.RuntimeCLI(path, root)


@pytest.fixture(scope="session")
def checker_binary(session_dir) -> Path:
    out = session_dir / "checker"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(out), str(harness.HERE / "checker.c")], check=True)
    return out


@pytest.fixture(scope="session")
def rootfs_template(session_dir, checker_binary) -> Path:
    """busybox-static + the checker; each bundle hard-links a copy."""
    busybox = Path("/bin/busybox")
    if not busybox.exists():
        pytest.exit("busybox-static is required (/bin/busybox)", returncode=2)
    t = session_dir / "rootfs-template"
    for d in (
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        harness.OUT_MOUNT.lstrip("/"),
    ):
        (t / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(busybox, t / "bin" / "busybox")
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True).stdout.split()
    for a in applets:
        if a != "busybox" and not (t / "bin" / a).exists():
            (t / "bin" / a).symlink_to("busybox")
    shutil.copy2(checker_binary, t / "checker")
    (t / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
    (t / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    (t / "tmp").chmod(0o1777)
    return t


@pytest.fixture
def lab(request, runtime, rootfs_template, session_dir):
    work = session_dir / "tests" / request.node.name[:60].replace("/", "_")
    work.mkdir(parents=True, exist_ok=True)
    lab = harness.Lab(runtime, work, rootfs_template, request.node.name)
    try:
        yield lab
    finally:
        lab.cleanup()
