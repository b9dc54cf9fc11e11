"""pyrunc.inspect against real containers and on its parsers.

The containers are run by the runtime named in ``RUNTIME`` (default: this
checkout's pyrunc; with RUNTIME=/usr/sbin/runc the same tests check the
inspector against an independent runtime).  Run under the sandbox:

    /work/shared/tools/cgroup-sandbox .venv/bin/python3 -m pytest -q tests/integration/test_inspect.py
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import tempfile

import pytest

from helpers import BUSYBOX, Bundle, Runtime, in_cgroup_sandbox, new_id, wait_for
from pyrunc import inspect as insp
from pyrunc.capabilities import names_of_mask
from pyrunc.errors import ContainerNotRunning

RUNTIME = os.environ.get(
    "RUNTIME",
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), ".venv", "bin", "pyrunc"
    ),
)
SCHEMA = os.path.join(os.path.dirname(__file__), "..", "..", "schemas", "inspect.schema.json")

needs_containers = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(RUNTIME) or not in_cgroup_sandbox(),
    reason="needs root, the runtime and /work/shared/tools/cgroup-sandbox",
)


# ---------------------------------------------------------------------------
# fixtures


class Running:
    """A container started by RUNTIME; ``report(**overrides)`` inspects it."""

    def __init__(self, rt: Runtime, bundle: Bundle, cid: str, state: dict):
        self.rt, self.bundle, self.id, self.state = rt, bundle, cid, state
        self.pid = state["pid"]

    def report(self, config=None, status=None, cgroup_paths="auto"):
        if cgroup_paths == "auto":
            cgroup_paths = insp.cgroup_paths_of(self.pid)
        return insp.inspect(
            self.pid,
            config if config is not None else self.bundle.config,
            cgroup_paths=cgroup_paths,
            status=status or self.state["status"],
            container_id=self.id,
        )


@pytest.fixture
def container():
    """Factory: container(edit=fn, create_only=False) -> Running; all deleted at teardown."""
    # Not pytest's tmp_path: its parents are 0700, closed to a user-namespaced root.
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="pyrunc-inspect-", dir="/tmp"))
    os.chmod(tmp_path, 0o755)
    rt = Runtime(str(tmp_path / "state"), path=RUNTIME)

    def start(edit=None, create_only=False):
        bundle = Bundle(str(tmp_path / f"b{len(rt.ids)}"), args=("sleep", "1000"))
        if edit:
            edit(bundle)
        cid = new_id("insp")
        errlog = tmp_path / f"{cid}.stderr"
        with open(errlog, "w") as err:
            # The container inherits stdio: no pipes, or the call would wait for it.
            if create_only:
                p = rt.create(cid, bundle, stdout=subprocess.DEVNULL, stderr=err)
            else:
                p = rt.run(cid, bundle, "--detach", stdout=subprocess.DEVNULL, stderr=err)
        assert p.returncode == 0, f"{RUNTIME} failed: {errlog.read_text()}"
        return Running(rt, bundle, cid, rt.state_json(cid))

    try:
        yield start
    finally:
        problems = rt.cleanup()
        shutil.rmtree(tmp_path, ignore_errors=True)
        assert not problems, problems


def line(report, wall, item):
    found = [l for l in report["walls"][wall] if l["item"] == item]
    assert found, f"no line {item!r} in wall {wall}: {[l['item'] for l in report['walls'][wall]]}"
    return found[0]


def fails(report):
    return [(w, l) for w, lines in report["walls"].items() for l in lines if l["verdict"] == "FAIL"]


SECCOMP = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["acct", "kexec_load"], "action": "SCMP_ACT_ERRNO"}],
}


def hardened(bundle):
    """Everything configured: limits, seccomp, oom score, hostname."""
    res = bundle.config["linux"]["resources"]
    res["pids"] = {"limit": 64}
    res["memory"] = {"limit": 64 << 20}
    res["cpu"] = {"quota": 50000, "period": 100000}
    bundle.config["linux"]["seccomp"] = SECCOMP
    bundle.config["process"]["oomScoreAdj"] = 500
    bundle.config["hostname"] = "walls"


# ---------------------------------------------------------------------------
# real containers


@needs_containers
def test_hardened_container_has_no_mismatch(container):
    c = container(hardened)
    r = c.report()
    assert fails(r) == [], insp.render_text(r)
    assert insp.exit_code(r) == 0
    for ns in ("pid", "network", "ipc", "uts", "mount"):
        assert line(r, "namespaces", ns)["verdict"] == "ok"
        assert line(r, "namespaces", ns)["actual"].startswith("isolated")
    assert line(r, "namespaces", "hostname")["actual"] == "walls"
    pids = line(r, "cgroups", "pids limit")
    assert (pids["asked"], pids["actual"], pids["verdict"]) == ("64", "64", "ok")
    mem = line(r, "cgroups", "memory limit")
    assert (mem["actual"], mem["verdict"]) == ("64 MiB", "ok")
    assert line(r, "cgroups", "cpu quota (us)")["actual"] == "50000"
    assert line(r, "cgroups", "membership")["verdict"] == "ok"
    sec = line(r, "privileges", "seccomp")
    assert sec["verdict"] == "ok" and sec["actual"].startswith("filter")
    eff = line(r, "privileges", "caps effective")
    assert eff["verdict"] == "ok"
    assert eff["actual"].split() == ["KILL", "NET_BIND_SERVICE", "AUDIT_WRITE"]
    assert line(r, "privileges", "no_new_privs")["actual"] == "on"
    assert line(r, "process", "oom_score_adj")["actual"] == "500"
    assert line(r, "process", "RLIMIT_NOFILE")["actual"] == "1024/1024"
    assert line(r, "filesystem", "root")["verdict"] == "ok"
    assert line(r, "filesystem", "root switch")["actual"] == "pivot_root"
    sysfs = line(r, "filesystem", "mount /sys")
    assert sysfs["verdict"] == "ok" and "ro" in sysfs["actual"].split()[2].split(",")
    # masked paths: every one verified (masked or absent), a few must be real masks
    masked = [l for l in r["walls"]["filesystem"] if l["item"].startswith("masked ")]
    assert len(masked) == len(c.bundle.config["linux"]["maskedPaths"])
    assert all(l["verdict"] == "ok" for l in masked)
    assert line(r, "filesystem", "masked /sys/firmware")["actual"].startswith("empty read-only")
    ro = [l for l in r["walls"]["filesystem"] if l["item"].startswith("read-only ")]
    assert ro and all(l["verdict"] == "ok" for l in ro)
    assert line(r, "filesystem", "read-only /proc/sys")["actual"] == "ro"
    assert line(r, "filesystem", "mount /shared")["verdict"] == "ok"


@needs_containers
def test_weak_container_warns_without_failing(container):
    def weaken(b):
        b.drop_namespace("network")
        b.drop_namespace("pid")
        for m in b.config["mounts"]:
            if m["destination"] == "/sys":
                m["options"] = [o for o in m["options"] if o != "ro"]
        b.config["process"]["noNewPrivileges"] = False

    c = container(weaken)
    r = c.report()
    assert fails(r) == [], insp.render_text(r)
    for ns in ("network", "pid"):
        l = line(r, "namespaces", ns)
        assert (l["asked"], l["verdict"]) == ("host", "WARN")
        assert l["actual"].startswith("shared with host")
    assert line(r, "namespaces", "ipc")["verdict"] == "ok"
    sysfs = line(r, "filesystem", "mount /sys")
    assert sysfs["verdict"] == "WARN" and "rw" in sysfs["actual"]
    assert line(r, "privileges", "seccomp")["verdict"] == "WARN"
    assert line(r, "privileges", "seccomp")["actual"] == "disabled, 0 filters"
    assert line(r, "privileges", "no_new_privs")["verdict"] == "WARN"
    pids = line(r, "cgroups", "pids limit")
    assert (pids["actual"], pids["verdict"]) == ("unlimited", "WARN")
    assert r["verdict"] == "WARN" and insp.exit_code(r) == 0


@needs_containers
def test_config_kernel_mismatches_fail(container):
    """A config the kernel does not match (as if the runtime had not applied
    it) is flagged line by line and gives exit code 2."""
    c = container()
    cfg = json.loads(json.dumps(c.bundle.config))
    cfg["linux"]["resources"]["pids"] = {"limit": 50}
    cfg["linux"]["namespaces"].append({"type": "cgroup"})
    cfg["process"]["capabilities"]["effective"] = ["CAP_KILL"]
    cfg["process"]["noNewPrivileges"] = False
    cfg["process"]["oomScoreAdj"] = 300
    cfg["linux"]["seccomp"] = SECCOMP
    cfg["linux"]["maskedPaths"].append("/etc/passwd")
    cfg["linux"]["readonlyPaths"].append("/shared")  # the rw bind mount
    r = c.report(config=cfg)
    got = {(w, l["item"]) for w, l in fails(r)}
    assert got == {
        ("cgroups", "pids limit"),
        ("namespaces", "cgroup"),
        ("privileges", "caps effective"),
        ("privileges", "no_new_privs"),
        ("process", "oom_score_adj"),
        ("privileges", "seccomp"),
        ("filesystem", "masked /etc/passwd"),
        ("filesystem", "read-only /shared"),
    }, insp.render_text(r)
    assert line(r, "privileges", "caps effective")["note"].endswith(": NET_BIND_SERVICE AUDIT_WRITE")
    assert line(r, "cgroups", "pids limit")["actual"] == "unlimited"
    assert r["verdict"] == "FAIL" and insp.exit_code(r) == 2


@needs_containers
def test_joined_namespace_and_user_namespace(container):
    first = container()

    def edit(b):
        b.set_namespace("network", f"/proc/{first.pid}/ns/net")
        b.set_namespace("user")
        b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
        b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
        # sysfs cannot be mounted in a user namespace without its own netns
        b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
        b.config["linux"]["maskedPaths"] = [p for p in b.config["linux"]["maskedPaths"] if not p.startswith("/sys")]

    c = container(edit)
    r = c.report()
    net = line(r, "namespaces", "network")
    assert (net["asked"], net["verdict"]) == (f"join /proc/{first.pid}/ns/net", "ok"), insp.render_text(r)
    assert line(r, "namespaces", "user")["verdict"] == "ok"
    assert line(r, "namespaces", "uid map")["actual"] == "0->200000 x65536"
    assert line(r, "namespaces", "uid map")["verdict"] == "ok"
    # ids are shown as the container sees them
    assert line(r, "process", "uid")["actual"].startswith("0/0/0/0")
    assert line(r, "process", "uid")["verdict"] == "ok"
    assert fails(r) == [], insp.render_text(r)


@needs_containers
def test_created_and_paused_containers(container):
    c = container(create_only=True)
    assert c.state["status"] == "created"
    r = c.report()
    assert r["status"] == "created"
    assert line(r, "namespaces", "pid")["verdict"] == "ok"
    # the init stage has not exec'd the process yet: mismatches there only warn
    assert all(w not in ("privileges", "process") for w, _ in fails(r)), insp.render_text(r)
    c.rt.start(c.id)
    c.rt.wait_status(c.id, "running")
    p = c.rt("pause", c.id)
    assert p.returncode == 0, p.stderr
    r = c.report(status="paused")
    assert r["status"] == "paused" and fails(r) == [], insp.render_text(r)
    assert line(r, "cgroups", "pids usage")["actual"] == "1"


@needs_containers
def test_json_report_matches_schema_and_text_lists_every_line(container):
    jsonschema = pytest.importorskip("jsonschema")
    c = container(hardened)
    r = c.report()
    doc = json.loads(insp.render_json(r))
    with open(SCHEMA) as f:
        jsonschema.validate(doc, json.load(f))
    assert doc == r
    text = insp.render_text(r)
    for wall in insp.WALLS:
        assert wall.upper() in text
    n_lines = sum(len(lines) for lines in r["walls"].values())
    table_rows = [t for t in text.splitlines() if t.split()[:1] and t.split()[0] in insp.VERDICTS]
    assert len(table_rows) == n_lines


@needs_containers
def test_paths_resolve_inside_the_container_root(container):
    """A symlink in the rootfs pointing at an absolute path leads to the
    container's file, never the host's."""

    def plant(b):
        os.symlink("/../../../../../../etc/passwd", os.path.join(b.rootfs, "escape"))
        b.config["linux"]["readonlyPaths"].append("/escape")

    c = container(plant)
    fd = insp._open_in_root(c.pid, "/escape")
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    inside = os.stat(os.path.join(c.bundle.rootfs, "etc/passwd"))
    assert (st.st_dev, st.st_ino) == (inside.st_dev, inside.st_ino)
    assert (st.st_dev, st.st_ino) != (os.stat("/etc/passwd").st_dev, os.stat("/etc/passwd").st_ino)
    assert line(c.report(), "filesystem", "read-only /escape")["verdict"] == "ok"


@needs_containers
def test_cgroup_paths_of_matches_the_runtime_cgroup(container):
    c = container()
    paths = insp.cgroup_paths_of(c.pid)
    assert paths
    for d in paths.values():
        assert d.rstrip("/").endswith(c.bundle.cgroups_path), paths
        with open(os.path.join(d, "cgroup.procs")) as f:
            assert str(c.pid) in f.read().split()
    # without cgroup_paths the report derives the same directories
    assert line(c.report(cgroup_paths=None), "cgroups", "membership")["verdict"] == "ok"


@needs_containers
def test_gone_container_is_not_running(container):
    c = container()
    c.report()  # alive: no error
    c.rt.kill(c.id, "KILL")
    wait_for(lambda: c.rt.status(c.id) == "stopped")
    with pytest.raises(ContainerNotRunning):
        c.report(status="stopped", cgroup_paths=None)
    # a stale status does not fool it: the kernel says the pid is gone (or a zombie)
    with pytest.raises(ContainerNotRunning):
        c.report(status="running", cgroup_paths=None)


# ---------------------------------------------------------------------------
# parsers and rendering (no containers)


def test_parse_mountinfo_fields_and_escapes():
    text = (
        "86 64 254:0 /tmp/my\\040root / ro,relatime shared:5 master:2 - ext4 /dev/vda rw,discard\n"
        "70 87 0:41 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k\n"
    )
    root, keys = insp.parse_mountinfo(text)
    assert root["root"] == "/tmp/my root" and root["mountpoint"] == "/"
    assert root["options"] == ["ro", "relatime"] and root["propagation"] == "shared:5 master:2"
    assert (root["fstype"], root["source"], root["super_options"]) == ("ext4", "/dev/vda", ["rw", "discard"])
    assert keys["propagation"] == "private" and keys["parent"] == 87


def test_parse_limits_and_caps():
    with open("/proc/self/limits") as f:
        limits = insp.parse_limits(f.read())
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert limits["RLIMIT_NOFILE"] == (soft, hard)
    assert len(limits) == 16
    assert names_of_mask(0x20000420) == ["CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
    assert names_of_mask(1 << 63) == ["CAP_63"]


def test_render_text_aligns_and_summarises():
    report = {
        "pyruncInspect": 1,
        "id": "x",
        "pid": 7,
        "status": "running",
        "host": "pid 1",
        "walls": {w: [] for w in insp.WALLS},
        "summary": {"ok": 1, "info": 0, "WARN": 0, "FAIL": 1},
        "verdict": "FAIL",
    }
    report["walls"]["cgroups"] = [
        {"item": "pids limit", "asked": "50", "actual": "unlimited", "verdict": "FAIL", "note": "not applied"},
        {"item": "membership", "asked": None, "actual": "ok", "verdict": "ok"},
    ]
    text = insp.render_text(report)
    assert "  FAIL  pids limit  50     unlimited  -- not applied" in text
    assert "  ok    membership  -      ok" in text
    assert text.rstrip().endswith("verdict: FAIL  (1 FAIL, 0 WARN, 1 ok, 0 info)")
    assert insp.exit_code(report) == 2


def test_import_is_cheap():
    out = subprocess.run(
        [os.sys.executable, "-X", "importtime", "-c", "import pyrunc.inspect"],
        capture_output=True,
        text=True,
        cwd=os.path.join(os.path.dirname(__file__), "..", ".."),
    )
    loaded = {l.rsplit("|", 1)[1].strip() for l in out.stderr.splitlines() if "|" in l}
    assert "pyrunc.inspect" in loaded, out.stderr
    heavy = loaded & {"json", "ctypes", "subprocess", "jsonschema"}
    assert heavy == set(), out.stderr


def _runtime_namespaces() -> set[str]:
    try:
        out = subprocess.run([RUNTIME, "features"], capture_output=True, text=True, timeout=10).stdout
        return set(json.loads(out)["linux"]["namespaces"])
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return set()


@needs_containers
def test_time_and_cgroup_namespaces(container):
    if "time" not in _runtime_namespaces():
        pytest.skip(f"{RUNTIME} has no time namespace support")

    def edit(b):
        b.set_namespace("time")
        b.set_namespace("cgroup")
        b.config["linux"]["timeOffsets"] = {
            "monotonic": {"secs": 3600, "nanosecs": 0},
            "boottime": {"secs": 7200, "nanosecs": 5},
        }

    c = container(edit)
    r = c.report()
    assert line(r, "namespaces", "time")["verdict"] == "ok"
    assert line(r, "namespaces", "cgroup")["verdict"] == "ok"
    mono = line(r, "namespaces", "monotonic offset")
    assert (mono["actual"], mono["verdict"]) == ("3600s 0ns", "ok")
    assert line(r, "namespaces", "boottime offset")["actual"] == "7200s 5ns"
    assert fails(r) == [], insp.render_text(r)


@needs_containers
def test_time_namespace_offsets_of_an_unshared_process():
    """Time offsets read back on a process util-linux's unshare(1) put in a
    time namespace (runc 1.1 and crun 1.8 cannot make one)."""
    proc = subprocess.Popen(
        ["unshare", "--time", "--monotonic=3600", "--boottime=7200", "--fork", "--kill-child", BUSYBOX, "sleep", "100"]
    )
    try:

        def child():
            try:
                with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                    kids = f.read().split()
            except OSError:
                return None
            return int(kids[0]) if kids else None

        pid = wait_for(child)
        cfg = {
            "linux": {
                "namespaces": [{"type": "time"}],
                "timeOffsets": {"monotonic": {"secs": 3600}, "boottime": {"secs": 7201}},
            }
        }
        r = insp.inspect(pid, cfg, cgroup_paths={}, status="running", container_id="unshared")
        assert line(r, "namespaces", "time")["verdict"] == "ok"
        assert line(r, "namespaces", "monotonic offset")["verdict"] == "ok"
        boot = line(r, "namespaces", "boottime offset")
        assert (boot["asked"], boot["actual"], boot["verdict"]) == ("7201s 0ns", "7200s 0ns", "FAIL")
        assert line(r, "namespaces", "pid")["verdict"] == "WARN"  # shared, as configured
    finally:
        proc.kill()
        proc.wait()


@needs_containers
def test_svg_diagram_nests_the_walls(container):
    import xml.etree.ElementTree as ET

    c = container(lambda b: b.drop_namespace("network"))
    r = c.report()
    svg = insp.render_svg(r)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    rects = root.findall(f"{ns}rect")
    assert len(rects) == 6
    # each wall lies inside the one before it
    for outer, inner in zip(rects, rects[1:]):
        ox, oy, ow, oh = (float(outer.get(k)) for k in ("x", "y", "width", "height"))
        ix, iy, iw, ih = (float(inner.get(k)) for k in ("x", "y", "width", "height"))
        assert ox < ix and oy < iy and ix + iw < ox + ow and iy + ih < oy + oh
    texts = ["".join(t.itertext()) for t in root.iter(f"{ns}text")]
    assert [
        t for t in texts if t in ("host kernel", "cgroup", "namespaces", "filesystem", "privileges", "process")
    ] == ["host kernel", "cgroup", "namespaces", "filesystem", "privileges", "process"]
    assert any(t.startswith("WARN network: shared with host") for t in texts), texts
