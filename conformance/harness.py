"""Runtime-agnostic test harness: drives any runc-compatible CLI, builds bundles,
and resolves clause citations against clauses.json.

Only the spec's operations are used (create, start, state, kill, delete) plus
the de-facto runc CLI flags every caller relies on (--root, --bundle, --pid-file,
delete --force); see /work/shared/notes/cli-contract.md.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLAUSES_FILE = HERE / "clauses.json"
SPEC_DIR = Path(os.environ.get("OCI_SPEC_DIR", "/work/shared/reference/runtime-spec-v1.3.0"))
OUT_MOUNT = "/oc-out"  # where each container sees its bundle's out/ directory
CHECKER = "/checker"  # the static checker inside every rootfs

_ids = itertools.count(1)

# The cgroup driver the suite drives the runtime with: "cgroupfs" (absolute
# cgroupsPaths, /oc-conformance/<id>) or "systemd" (the global flag
# --systemd-cgroup and slice:prefix:name paths, SYSTEMD_SLICE:oc-conformance:<id>,
# on a host booted with systemd).  CONFORMANCE_RUNTIME_FLAGS: global flags
# given to every runtime command (default: --systemd-cgroup for systemd).
CGROUP_DRIVER = os.environ.get("CONFORMANCE_CGROUP_DRIVER", "cgroupfs")
if CGROUP_DRIVER not in ("cgroupfs", "systemd"):
    raise RuntimeError(f"CONFORMANCE_CGROUP_DRIVER={CGROUP_DRIVER!r}: cgroupfs or systemd")
SYSTEMD = CGROUP_DRIVER == "systemd"
SYSTEMD_SLICE = "system.slice"
RUNTIME_FLAGS = shlex.split(os.environ.get("CONFORMANCE_RUNTIME_FLAGS", "--systemd-cgroup" if SYSTEMD else ""))


# ---------------------------------------------------------------- clauses


@dataclass(frozen=True)
class Citation:
    file: str
    heading: str
    quote: str
    context: str | None = None


def load_clauses() -> list[dict]:
    return json.loads(CLAUSES_FILE.read_text())["clauses"]


def resolve(citation: Citation, clauses: list[dict]) -> dict:
    """The one clause a citation names; ValueError if it names none or several."""
    hits = [
        c
        for c in clauses
        if c["file"] == citation.file
        and c["heading"] == citation.heading
        and citation.quote in c["sentence"]
        and (citation.context is None or c["context"] == citation.context)
    ]
    if len(hits) != 1:
        raise ValueError(f"citation {citation} matches {len(hits)} clauses (contexts: {[h['context'] for h in hits]})")
    return hits[0]


def schema_validator(name: str):
    """A Draft-4 validator for one of the spec's schema files, resolving the
    relative file references ("defs.json#/...") among its siblings."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    schema_dir = SPEC_DIR / "schema"
    registry = Registry().with_resources(
        (p.name, Resource.from_contents(json.loads(p.read_text()), default_specification=DRAFT4))
        for p in schema_dir.glob("*.json")
    )
    return jsonschema.Draft4Validator(json.loads((schema_dir / name).read_text()), registry=registry)


# ---------------------------------------------------------------- runtime CLI


@dataclass
class Result:
    argv: list[str]
    rc: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def __str__(self) -> str:
        return f"{' '.join(self.argv)} -> rc={self.rc}\nstdout: {self.out[-2000:]}\nstderr: {self.err[-2000:]}"


class RuntimeCLI:
    """A runc-compatible runtime binary with its own state directory (--root)."""

    def __init__(self, path: str, root: Path, flags: list[str] | None = None):
        self.path = path
        self.root = root
        self.flags = list(RUNTIME_FLAGS if flags is None else flags)  # global flags

    def argv(self, *args: str) -> list[str]:
        return [self.path, "--root", str(self.root), *self.flags, *args]

    def run(self, *args: str, timeout: float = 20, stdio_dir: Path | None = None) -> Result:
        """Run one command.  With stdio_dir, the runtime's (and so the container's)
        stdout/stderr go to files there: a created container inherits them and
        would keep a pipe open for its whole life."""
        argv = self.argv(*args)
        if stdio_dir is None:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
            return Result(argv, p.returncode, p.stdout, p.stderr)
        stdio_dir.mkdir(parents=True, exist_ok=True)
        out_path, err_path = stdio_dir / "stdout", stdio_dir / "stderr"
        with open(out_path, "ab") as out, open(err_path, "ab") as err:
            start_out, start_err = out.tell(), err.tell()
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=timeout)
        return Result(
            argv,
            p.returncode,
            out_path.read_bytes()[start_out:].decode(errors="replace"),
            err_path.read_bytes()[start_err:].decode(errors="replace"),
        )

    def state(self, cid: str) -> dict | None:
        r = self.run("state", cid)
        if not r.ok:
            return None
        try:
            return json.loads(r.out)
        except ValueError:
            return None


# ---------------------------------------------------------------- bundles

DEFAULT_CAPS = [
    "CAP_AUDIT_WRITE",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_SETUID",
    "CAP_SETGID",
]


def default_config(cid: str, args: list[str]) -> dict:
    """A minimal, valid Linux config: the container the tests start from."""
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "OC_CONFORMANCE=1"],
            "cwd": "/",
            "capabilities": {k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "oc-" + cid[-20:],
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": OUT_MOUNT, "type": "bind", "source": "out", "options": ["rbind", "rw"]},
        ],
        "linux": {
            "cgroupsPath": cgroups_path(cid),
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


class Bundle:
    """A bundle directory: rootfs (hard-linked from the template), config.json,
    and out/ (bind-mounted at /oc-out, where hooks and probes leave evidence)."""

    def __init__(self, path: Path, cid: str, template: Path, args: list[str]):
        self.path = path
        self.cid = cid
        self.rootfs = path / "rootfs"
        self.out = path / "out"
        self.stdio = path / "stdio"
        path.mkdir(parents=True)
        subprocess.run(["cp", "-al", str(template), str(self.rootfs)], check=True)
        self.out.mkdir()
        self.config = default_config(cid, args)

    @property
    def process(self) -> dict:
        return self.config["process"]

    @property
    def linux(self) -> dict:
        return self.config["linux"]

    def write(self) -> None:
        # a source "out" relative to the bundle is resolved by the runtime against
        # its cwd, which is not the bundle: make every bind source absolute.
        cfg = copy.deepcopy(self.config)
        for m in cfg.get("mounts", []):
            if m.get("source") == "out":
                m["source"] = str(self.out)
        (self.path / "config.json").write_text(json.dumps(cfg, indent=1))

    def stdout(self) -> str:
        p = self.stdio / "stdout"
        return p.read_text(errors="replace") if p.exists() else ""

    def stderr(self) -> str:
        p = self.stdio / "stderr"
        return p.read_text(errors="replace") if p.exists() else ""

    def report(self) -> dict:
        """The checker's JSON object from the container's stdout (last JSON line)."""
        for line in reversed(self.stdout().splitlines()):
            line = line.strip()
            if line.startswith("{"):
                return json.loads(line)
        raise AssertionError(f"no checker output; stdout={self.stdout()!r} stderr={self.stderr()!r}")


class Lab:
    """Per-test workspace: makes bundles with distinct container ids, runs the
    lifecycle, and deletes every container it created (delete --force) and its
    files at teardown, whatever the test's outcome."""

    def __init__(self, rt: RuntimeCLI, workdir: Path, template: Path, test_name: str):
        self.rt = rt
        self.workdir = workdir
        self.template = template
        self.prefix = "oc" + "".join(ch for ch in test_name if ch.isalnum())[-24:].lower()
        self.ids: list[str] = []

    def new_id(self) -> str:
        cid = f"{self.prefix}-{os.getpid()}-{next(_ids)}"
        self.ids.append(cid)
        return cid

    def bundle(self, args: list[str] | None = None) -> Bundle:
        cid = self.new_id()
        return Bundle(self.workdir / cid, cid, self.template, args or [CHECKER, "report"])

    # lifecycle -----------------------------------------------------------
    def create(self, b: Bundle, cid: str | None = None, pid_file: Path | None = None, write: bool = True) -> Result:
        if write:
            b.write()
        extra = ["--pid-file", str(pid_file)] if pid_file else []
        cid = cid or b.cid
        if cid not in self.ids:
            self.ids.append(cid)
        return self.rt.run("create", "--bundle", str(b.path), *extra, cid, stdio_dir=b.stdio)

    def start(self, cid: str) -> Result:
        return self.rt.run("start", cid)

    def kill(self, cid: str, sig: str = "KILL") -> Result:
        return self.rt.run("kill", cid, sig)

    def delete(self, cid: str, force: bool = False) -> Result:
        return self.rt.run("delete", *(["--force"] if force else []), cid)

    def state(self, cid: str) -> dict | None:
        return self.rt.state(cid)

    def status(self, cid: str) -> str | None:
        st = self.state(cid)
        return st.get("status") if st else None

    def wait_status(self, cid: str, want: str, timeout: float = 10) -> str | None:
        deadline = time.monotonic() + timeout
        while True:
            s = self.status(cid)
            if s == want or time.monotonic() > deadline:
                return s
            time.sleep(0.05)

    def run_to_exit(self, b: Bundle, timeout: float = 15) -> dict:
        """create + start + wait for stopped; returns the checker's report."""
        r = self.create(b)
        assert r.ok, f"create failed: {r}"
        r = self.start(b.cid)
        assert r.ok, f"start failed: {r}"
        assert self.wait_status(b.cid, "stopped", timeout) == "stopped", "container did not stop"
        return b.report()

    def cleanup(self) -> None:
        for cid in reversed(self.ids):
            try:
                st = self.state(cid)
                if st and st.get("status") in ("created", "running", "paused"):
                    self.rt.run("kill", cid, "KILL", timeout=10)
                self.rt.run("delete", "--force", cid, timeout=30)
            except (subprocess.TimeoutExpired, OSError):
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


SIGNALS = {s.name: int(s) for s in signal.Signals}


# ---------------------------------------------------------------- cgroups
CGROUP_V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")  # a pure v2 hierarchy


def cgroup_of(pid: int, controller: str) -> str | None:
    """The cgroup of ``pid`` for ``controller`` (v1), or its one cgroup (v2)."""
    for line in open(f"/proc/{pid}/cgroup").read().splitlines():
        hid, ctrls, path = line.split(":", 2)
        if CGROUP_V2 and hid == "0":
            return path
        if controller in ctrls.split(","):
            return path
    return None


def cgroup_dir(controller: str, path: str) -> str:
    """Where the cgroup ``path`` of ``controller`` is on this host."""
    return f"/sys/fs/cgroup{path}" if CGROUP_V2 else f"/sys/fs/cgroup/{controller}{path}"


def cgroups_path(name: str) -> str:
    """The ``linux.cgroupsPath`` of container ``name`` for the suite's cgroup driver."""
    if SYSTEMD:
        return f"{SYSTEMD_SLICE}:oc-conformance:{name}"
    return f"/oc-conformance/{name}"


def cgroup_path(cgroups_path_value: str) -> str:
    """The cgroup (below the mount point) a cgroupsPath names: itself for
    an absolute path; for systemd's slice:prefix:name the scope
    prefix-name.scope in its slice, whose dashes nest (a-b.slice is
    /a.slice/a-b.slice), as systemd places it."""
    if not SYSTEMD:
        return cgroups_path_value
    slice_name, prefix, name = cgroups_path_value.split(":")
    parts, path = slice_name[: -len(".slice")].split("-"), ""
    for i in range(len(parts)):
        path += "/" + "-".join(parts[: i + 1]) + ".slice"
    return f"{path}/{prefix}-{name}.scope" if prefix else f"{path}/{name}.scope"


def systemd_units(fragment: str) -> list[str]:
    """Units systemd still knows (loaded, active or failed) whose name has ``fragment``."""
    if not SYSTEMD:
        return []
    p = subprocess.run(
        ["systemctl", "list-units", "--all", "--plain", "--no-legend", f"*{fragment}*"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return [line.split()[0] for line in p.stdout.splitlines() if line.split()]
