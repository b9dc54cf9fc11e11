"""Shared helpers for tests that drive a runtime's CLI on real busybox bundles.

The runtime under test is the executable named by the environment variable
``RUNTIME`` (an absolute path; default: the venv's ``pyrunc`` launcher).  The
same tests run against Debian's runc (``RUNTIME=/usr/sbin/runc``) as a
differential oracle; the few places where pyrunc deliberately differs from
runc branch on :data:`runtime_is_runc` / :data:`runtime_is_pyrunc`.

Stable API (other test modules import these; keep signatures compatible):

* constants: ``RUNTIME``, ``RUNTIME_NAME``, ``runtime_is_runc``,
  ``runtime_is_pyrunc``, ``BUSYBOX``, ``CGROUP_PREFIX``, ``TIMEOUT``
* ``new_id(prefix="c") -> str``: a unique container id.
* ``runc_lacks(reason)``: xfail marker applied only when the runtime is runc.
* ``make_rootfs(path) -> str``: a busybox rootfs (binary + applet symlinks,
  /etc/passwd, /etc/group, mount points).
* ``default_config(args=("sh",)) -> dict``: a runc-spec-like config.json
  (terminal false, readonly root, unique relative ``linux.cgroupsPath``).
* ``Bundle(path, args=...)``: a bundle directory; edit ``bundle.config``
  (a dict) freely, it is written to config.json before every create/run.
  ``bundle.shared`` is a host directory bind-mounted read-write at
  ``/shared`` inside the container (for files the container writes).
* ``Runtime(root)``: wraps the CLI, always passing ``--root``; every method
  returns a ``subprocess.CompletedProcess`` with text stdout/stderr.
  Container ids passed to create/run are remembered and ``cleanup()``
  ``delete --force``s them (the ``rt`` fixture does this automatically).
* ``wait_for(predicate, timeout=10, interval=0.02) -> value``
* ``cgroup_dirs(cgroups_path) -> list[str]``: existing cgroup directories
  for a config's ``cgroupsPath`` (relative paths resolved against this
  process's own cgroup, as runc does).
* ``processes_rooted_under(path) -> list[int]``: pids whose root directory
  lies under ``path`` (i.e. live container processes of bundles there).
* ``pid_alive(pid) -> bool`` (zombies count as dead).
* ``ns_inode(pid, ns) -> str``: the ``/proc/PID/ns/NS`` link target.
* ``assert_one_error_line(proc)``: exit 1, exactly one stderr line, no
  Python traceback.
"""

from __future__ import annotations

import array
import contextlib
import copy
import errno
import fcntl
import itertools
import json
import os
import select
import socket
import subprocess
import tempfile
import time
import uuid

# the checkout these tests belong to (CI runs a clone in another folder)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNTIME = os.environ.get("RUNTIME", os.path.join(REPO, ".venv", "bin", "pyrunc"))
RUNTIME_NAME = os.path.basename(RUNTIME)
runtime_is_runc = RUNTIME_NAME == "runc"
runtime_is_crun = RUNTIME_NAME == "crun"
runtime_is_pyrunc = not (runtime_is_runc or runtime_is_crun)

BUSYBOX = "/bin/busybox"
CGROUP_PREFIX = "pyrunc-test-"
TIMEOUT = 30  # seconds for any single CLI call

_counter = itertools.count()
_RUN_TAG = uuid.uuid4().hex[:6]


def runc_lacks(reason: str):
    """Mark a test whose expectation Debian's runc (1.1.x) does not meet.

    Under runc the test is an expected failure (not strict: newer runc may
    pass); under pyrunc it is a plain test.
    """
    import pytest

    return pytest.mark.xfail(runtime_is_runc, reason=f"runc lacks: {reason}", strict=False)


def new_id(prefix: str = "c") -> str:
    """Return a container id unique within this machine and test session."""
    return f"{prefix}-{_RUN_TAG}-{os.getpid()}-{next(_counter)}"


# --------------------------------------------------------------------------
# bundles

_APPLETS: list[str] | None = None


def _applets() -> list[str]:
    global _APPLETS
    if _APPLETS is None:
        out = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout
        _APPLETS = [a for a in out.split() if a and a != "busybox"]
    return _APPLETS


def make_rootfs(path: str) -> str:
    """Create a busybox rootfs at ``path`` and return ``path``."""
    os.makedirs(path, exist_ok=True)
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "shared"):
        os.makedirs(os.path.join(path, d), exist_ok=True)
    os.chmod(os.path.join(path, "tmp"), 0o1777)
    with open(BUSYBOX, "rb") as src, open(os.path.join(path, "bin/busybox"), "wb") as dst:
        dst.write(src.read())
    os.chmod(os.path.join(path, "bin/busybox"), 0o755)
    bindir = os.path.join(path, "bin")
    for applet in _applets():
        os.symlink("busybox", os.path.join(bindir, applet))
    with open(os.path.join(path, "etc/passwd"), "w") as f:
        f.write(
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/:/bin/false\n"
        )
    with open(os.path.join(path, "etc/group"), "w") as f:
        f.write("root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n")
    return path


_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]

_DEFAULT_CONFIG = {
    "ociVersion": "1.0.2",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {k: list(_CAPS) for k in ("bounding", "effective", "permitted", "ambient")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "runc",
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
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        },
    ],
    "linux": {
        "resources": {"devices": [{"allow": False, "access": "rwm"}]},
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": [
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi",
        ],
        "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
}


def default_config(args=("sh",)) -> dict:
    """A fresh copy of the default test config (like ``runc spec``, terminal off)."""
    cfg = copy.deepcopy(_DEFAULT_CONFIG)
    cfg["process"]["args"] = list(args)
    cfg["linux"]["cgroupsPath"] = CGROUP_PREFIX + uuid.uuid4().hex[:12]
    return cfg


class Bundle:
    """A bundle directory with a busybox rootfs; ``config`` is written on ``write()``.

    ``shared`` (host path) is bind-mounted read-write at ``/shared`` in the
    container.  ``cgroups_path`` is the config's relative cgroupsPath.
    """

    def __init__(self, path: str, args=("sh",)):
        self.path = str(path)
        self.rootfs = make_rootfs(os.path.join(self.path, "rootfs"))
        self.shared = os.path.join(self.path, "shared")
        os.makedirs(self.shared, exist_ok=True)
        os.chmod(self.shared, 0o777)
        self.config = default_config(args)
        self.config["mounts"].append(
            {"destination": "/shared", "type": "bind", "source": self.shared, "options": ["rbind", "rw"]}
        )

    @property
    def config_path(self) -> str:
        return os.path.join(self.path, "config.json")

    @property
    def cgroups_path(self) -> str:
        return self.config["linux"].get("cgroupsPath", "")

    def set_args(self, *args: str) -> "Bundle":
        self.config["process"]["args"] = list(args)
        return self

    def sh(self, script: str) -> "Bundle":
        """Make the container run ``sh -c script``."""
        return self.set_args("sh", "-c", script)

    def namespaces(self) -> list[dict]:
        return self.config["linux"]["namespaces"]

    def set_namespace(self, ns_type: str, path: str | None = None) -> None:
        """Add (or replace) a namespace entry, optionally joining ``path``."""
        entry = {"type": ns_type}
        if path:
            entry["path"] = path
        nss = [n for n in self.namespaces() if n["type"] != ns_type]
        nss.append(entry)
        self.config["linux"]["namespaces"] = nss

    def drop_namespace(self, ns_type: str) -> None:
        self.config["linux"]["namespaces"] = [n for n in self.namespaces() if n["type"] != ns_type]

    def write(self) -> str:
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
        return self.path

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path


# --------------------------------------------------------------------------
# the CLI


class Runtime:
    """Run the runtime's CLI with ``--root ROOT`` in front of every command."""

    def __init__(self, root: str, path: str = RUNTIME, global_args=()):
        self.root = str(root)
        self.path = path
        self.global_args = list(global_args)
        self.ids: list[str] = []
        self.pids: set[int] = set()

    # -- raw call -----------------------------------------------------------
    def __call__(
        self,
        *args,
        input=None,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=TIMEOUT,
        env=None,
        cwd=None,
        fds=None,
        root=True,
    ) -> subprocess.CompletedProcess:
        """Run ``RUNTIME [--root ROOT] GLOBAL_ARGS... ARGS...``.

        ``fds`` maps target fd numbers (>= 3) to open fds of ours that the
        runtime must receive under those numbers (for --preserve-fds).
        """
        argv = [self.path] + (["--root", self.root] if root else []) + self.global_args + [str(a) for a in args]
        kw = {}
        if fds:
            mapping = dict(fds)

            def _dup():
                # move sources out of the way first so targets don't clobber them
                tmp = {t: fcntl.fcntl(s, fcntl.F_DUPFD, 200) for t, s in mapping.items()}
                for t, s in tmp.items():
                    os.dup2(s, t, inheritable=True)

            kw["preexec_fn"] = _dup
            kw["pass_fds"] = tuple(mapping)
        # Output is captured in files, not pipes: a created container inherits
        # the runtime's stdio and would keep a pipe open long after the
        # runtime exited.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            if input is not None:
                stdin = tempfile.TemporaryFile()
                stdin.write(input.encode())
                stdin.seek(0)
            try:
                proc = subprocess.Popen(
                    argv,
                    stdin=stdin,
                    stdout=out if stdout is subprocess.PIPE else stdout,
                    stderr=err if stderr is subprocess.PIPE else stderr,
                    env=env,
                    cwd=cwd,
                    **kw,
                )
            finally:
                if input is not None:
                    stdin.close()
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(
                argv,
                rc,
                out.read().decode(errors="replace") if stdout is subprocess.PIPE else None,
                err.read().decode(errors="replace") if stderr is subprocess.PIPE else None,
            )

    def spawn(self, *args, stdin=subprocess.DEVNULL, env=None, cwd=None) -> "Spawned":
        """Start ``RUNTIME --root ROOT ARGS...`` without waiting (output to temp files)."""
        argv = [self.path, "--root", self.root] + self.global_args + [str(a) for a in args]
        return Spawned(argv, stdin=stdin, env=env, cwd=cwd)

    def _track(self, cid):
        if cid not in self.ids:
            self.ids.append(cid)

    # -- subcommands ----------------------------------------------------------
    def create(self, cid, bundle, *extra, **kw):
        if isinstance(bundle, Bundle):
            bundle.write()
        self._track(cid)
        p = self("create", "--bundle", str(bundle), *extra, cid, **kw)
        if p.returncode == 0:
            self._remember_pid(cid)
        return p

    def run(self, cid, bundle, *extra, **kw):
        if isinstance(bundle, Bundle):
            bundle.write()
        self._track(cid)
        return self("run", "--bundle", str(bundle), *extra, cid, **kw)

    def start(self, cid, **kw):
        return self("start", cid, **kw)

    def state(self, cid, **kw):
        return self("state", cid, **kw)

    def state_json(self, cid) -> dict:
        p = self.state(cid)
        assert p.returncode == 0, f"state {cid} failed: rc={p.returncode} stderr={p.stderr!r}"
        st = json.loads(p.stdout)
        if st.get("pid"):
            self.pids.add(st["pid"])
        return st

    def status(self, cid) -> str:
        return self.state_json(cid)["status"]

    def kill(self, cid, sig=None, *, all=False, **kw):
        args = ["kill"] + (["--all"] if all else []) + [cid] + ([str(sig)] if sig is not None else [])
        return self(*args, **kw)

    def delete(self, cid, *, force=False, **kw):
        return self("delete", *(["--force"] if force else []), cid, **kw)

    def list(self, *extra, **kw):
        return self("list", *extra, **kw)

    def _remember_pid(self, cid):
        try:
            p = self.state(cid)
            if p.returncode == 0:
                pid = json.loads(p.stdout).get("pid")
                if pid:
                    self.pids.add(pid)
        except Exception:  # best effort: tracking only feeds the leak check
            pass

    def wait_status(self, cid, status, timeout=10) -> dict:
        """Poll ``state`` until the container reaches ``status``; return the state."""
        last = {}

        def reached():
            nonlocal last
            p = self.state(cid)
            if p.returncode != 0:
                return None
            last = json.loads(p.stdout)
            return last if last.get("status") == status else None

        try:
            return wait_for(reached, timeout=timeout)
        except TimeoutError:
            raise AssertionError(f"container {cid} never reached {status!r}; last state {last}") from None

    def cleanup(self) -> list[str]:
        """``delete --force`` every container this object created; return failures."""
        problems = []
        for cid in self.ids:
            try:
                p = self.delete(cid, force=True)
            except subprocess.TimeoutExpired:
                problems.append(f"delete --force {cid}: timeout")
                continue
            if p.returncode != 0:
                problems.append(f"delete --force {cid}: rc={p.returncode} {p.stderr.strip()}")
        return problems


class Spawned:
    """A runtime command running in the background; ``result()`` waits for it.

    stdout/stderr go to temporary files so that a container inheriting them
    cannot block the reader.
    """

    def __init__(self, argv, stdin=subprocess.DEVNULL, env=None, cwd=None):
        self._out = tempfile.TemporaryFile()
        self._err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=stdin, stdout=self._out, stderr=self._err, env=env, cwd=cwd)
        self.args = argv

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send_signal(self, sig) -> None:
        self.proc.send_signal(sig)

    def result(self, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        out = err = ""
        for f in (self._out, self._err):
            f.seek(0)
        out = self._out.read().decode(errors="replace")
        err = self._err.read().decode(errors="replace")
        self._out.close()
        self._err.close()
        return subprocess.CompletedProcess(self.args, rc, out, err)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------
# observing the host


def run_importtime(rt, *args, stdin=subprocess.DEVNULL) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the runtime's command ``args`` under ``-X importtime`` (on the
    launcher's own interpreter); (the completed process, the names of the
    modules its own process imported)."""
    with open(rt.path) as f:
        interpreter = f.readline()[2:].split()[0]
    p = subprocess.run(
        [interpreter, "-X", "importtime", "-IS", rt.path, "--root", rt.root, *args],
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    names = {
        ln.rsplit("|", 1)[1].strip() for ln in p.stderr.splitlines() if ln.startswith("import time:") and "|" in ln
    }
    return p, names


def run_traced(rt, strace_args, *args, env=None) -> tuple[str, list[str]]:
    """Run ``RUNTIME --root ROOT ARGS...`` under ``strace -qq STRACE_ARGS``;
    returns (its stdout, the trace's lines), asserting it succeeded.
    Output goes to files: a created init or a container's process keeps
    the runtime's stdio, so a pipe's EOF would wait for it.  Without -f in
    ``strace_args`` only the runtime's own thread is traced, and strace ends
    with the command."""
    with (
        tempfile.NamedTemporaryFile("r") as trace,
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
    ):
        p = subprocess.run(
            ["strace", "-qq", *strace_args, "-o", trace.name, rt.path, "--root", rt.root, *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            timeout=60,
        )
        err.seek(0)
        assert p.returncode == 0, err.read()
        out.seek(0)
        return out.read(), trace.read().splitlines()


def wait_for(predicate, timeout: float = 10, interval: float = 0.02):
    """Call ``predicate`` until it returns a truthy value; return it or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


def exec_done(pid, name) -> bool:
    """True once ``pid`` runs ``name`` (the process has passed its execve)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[0].endswith(name.encode())
    except OSError:
        return False


def started(rt, bundle, *args):
    """create + start ``args``; return (id, host pid) once the process has exec'd."""
    bundle.set_args(*args)
    cid = new_id()
    p = rt.create(cid, bundle)
    assert p.returncode == 0, p.stderr
    assert rt.start(cid).returncode == 0
    pid = rt.state_json(cid)["pid"]
    wait_for(lambda: exec_done(pid, args[0]))
    return cid, pid


def pid_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def ns_inode(pid, ns: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{ns}")


def _root_mount_source(pid: str) -> str | None:
    """Path (within its filesystem) of the mount that is ``pid``'s "/"."""
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[4] == "/":
                    root = fields[3]
            return root  # the last "/" mount is the visible one
    except (OSError, UnboundLocalError):
        return None


def processes_rooted_under(path: str) -> list[int]:
    """Pids (not zombies) whose root directory or cwd is ``path`` or below it.

    After pivot_root, /proc/PID/root of a container process reads as "/", so
    for processes in another mount namespace the root mount's source path
    in /proc/PID/mountinfo is checked too (valid while ``path`` lives on the
    filesystem mounted at our "/", as pytest's /tmp does here).
    """
    path = os.path.realpath(path)
    own_mnt = os.readlink("/proc/self/ns/mnt")

    def under(target):
        return target == path or target.startswith(path + "/")

    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        hit = False
        for link in ("root", "cwd"):
            try:
                if under(os.readlink(f"/proc/{entry}/{link}")):
                    hit = True
                    break
            except OSError:
                continue
        if not hit:
            try:
                other_ns = os.readlink(f"/proc/{entry}/ns/mnt") != own_mnt
            except OSError:
                other_ns = False
            if other_ns:
                src = _root_mount_source(entry)
                hit = bool(src) and under(src)
        if hit and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def _cgroup_mounts() -> list[tuple[str, str]]:
    """(mountpoint, fstype) of every cgroup hierarchy mounted on this host view."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fstype = right.split()[0]
            if fstype in ("cgroup", "cgroup2"):
                out.append((left.split()[4], fstype))
    return out


def _own_cgroup(mountpoint: str, fstype: str) -> str:
    """Our cgroup path inside the hierarchy mounted at ``mountpoint``."""
    sopts: list[str] = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            if left.split()[4] == mountpoint:
                sopts = right.split()[-1].split(",")
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, ctrls, path = line.rstrip("\n").split(":", 2)
            if fstype == "cgroup2":
                if hid == "0":
                    return path
            elif ctrls and all(c in sopts for c in ctrls.split(",")):
                return path
    return "/"


def cgroup_hierarchies() -> list[str]:
    """Mountpoints of cgroup hierarchies (v1 controllers and the v2 tree)."""
    return [m for m, _ in _cgroup_mounts()]


def cgroup_dirs(cgroups_path: str) -> list[str]:
    """Existing directories for ``cgroups_path`` in every mounted hierarchy."""
    found = []
    for mnt, fstype in _cgroup_mounts():
        if os.path.isabs(cgroups_path):
            d = os.path.join(mnt, cgroups_path.lstrip("/"))
        else:
            d = os.path.join(mnt, _own_cgroup(mnt, fstype).lstrip("/"), cgroups_path)
        if os.path.isdir(d):
            found.append(d)
    return found


@contextlib.contextmanager
def frozen_parent_cgroup():
    """A fresh cgroupsPath parent frozen in the v1 freezer hierarchy, as a
    pod's parent frozen by someone else (the test is skipped without one);
    thawed and removed, with what was made below it, afterwards.  Yields
    the parent's relative path: a container's cgroupsPath is
    ``parent + "/ctr"``."""
    import pytest

    own_freezer = [d for d in cgroup_dirs("") if "/freezer" in d]
    if not own_freezer:
        pytest.skip("no cgroup v1 freezer hierarchy")
    parent = CGROUP_PREFIX + uuid.uuid4().hex[:12]
    frozen = os.path.join(own_freezer[0], parent)
    os.mkdir(frozen)
    try:
        with open(os.path.join(frozen, "freezer.state"), "w") as f:
            f.write("FROZEN")
        yield parent
    finally:
        with open(os.path.join(frozen, "freezer.state"), "w") as f:
            f.write("THAWED")
        for d in cgroup_dirs(parent + "/ctr") + cgroup_dirs(parent):  # the levels above a container's stay, as runc's
            os.rmdir(d)


def all_cgroup_dirs() -> set[str]:
    """Every cgroup directory visible below the hierarchies' roots."""
    dirs = set()
    for mnt in cgroup_hierarchies():
        for dirpath, dirnames, _ in os.walk(mnt):
            for d in dirnames:
                dirs.add(os.path.join(dirpath, d))
    return dirs


def in_cgroup_sandbox() -> bool:
    """True when every hierarchy places us at its root (cgroup-sandbox's cgroup namespace)."""
    with open("/proc/self/cgroup") as f:
        return all(line.rstrip("\n").split(":", 2)[2] == "/" for line in f if line.strip())


def assert_one_error_line(proc: subprocess.CompletedProcess, *, contains: str | None = None) -> str:
    """Assert the CLI failed cleanly: exit 1, one stderr line, no traceback. Return the line."""
    err = proc.stderr
    assert proc.returncode == 1, f"expected exit 1, got {proc.returncode}; stderr={err!r}"
    assert "Traceback" not in err, f"traceback on stderr: {err}"
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected exactly one stderr line, got {len(lines)}: {err!r}"
    if contains is not None:
        assert contains.lower() in lines[0].lower(), f"{contains!r} not in {lines[0]!r}"
    return lines[0]


# --- console sockets (terminal: true) ---


def receive_master(srv, timeout=10.0):
    """Accept one connection and return (fds, payload, number of control messages)."""
    srv.settimeout(timeout)
    conn, _ = srv.accept()
    with conn:
        conn.settimeout(timeout)
        fds = array.array("i")
        msg, ancdata, flags, _ = conn.recvmsg(4096, socket.CMSG_SPACE(16 * fds.itemsize))
        cmsgs = 0
        for level, typ, data in ancdata:
            cmsgs += 1
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
        assert not flags & socket.MSG_CTRUNC
        return list(fds), msg, cmsgs


def read_until_eof(fd, timeout=10.0):
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError as e:
            if e.errno == errno.EIO:  # slave side closed
                break
            raise
        if not chunk:
            break
        out += chunk
    return out
