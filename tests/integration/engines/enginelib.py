"""Shared machinery of the engine tests: packages, images, daemons, cleanup.

Every engine keeps all of its state under one temporary directory (an
``EngineDir``); daemons are started and stopped here by pid; images are
built locally from /bin/busybox because no registry is reachable.

Public API:

* ``RUNTIMES``: {"pyrunc": path, "runc": path} -- the runtimes compared.
* ``ensure_packages(pkgs)``: apt-get install the Debian packages missing.
* ``ensure_python_module(module, pip_name)``: pip install into this venv.
* ``build_rootfs_tar(dir) -> path``: a busybox rootfs as a plain tar.
* ``build_oci_archive(dir, name, layer_tar, cmd) -> path``: an OCI image
  layout tar (for ``ctr images import``).
* ``Daemon(argv, log_path, ready)``: a daemon run in its own session;
  ``stop()`` ends it (SIGTERM, then SIGKILL) by pid.
* ``argv_logging_wrapper(dir, runtime, log) -> path``: a script named after
  the runtime that appends its argv to ``log`` and execs the runtime (set
  PYRUNC_ENGINE_ARGV_LOG=1 to route the engines through it).
* ``kill_processes_mentioning(text)``: end leftover helper processes
  (shims, conmon) whose command line names our temporary directory.
* ``cgroup_dirs_snapshot()``, ``remove_new_cgroups(before) -> list``.
* ``run(argv, ...)``: subprocess.run with text output and a timeout.
* ``SYSTEMD``: the engines use the systemd cgroup driver
  (PYRUNC_ENGINE_CGROUP_DRIVER=systemd, ``make test-systemd-vm``: a VM with
  systemd as PID 1); ``cgroup_value(pid, v1, v2)`` reads a limit on v1 or v2;
  ``unit_of(pid)``, ``show_unit(unit, *props)``, ``units_named(text)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(os.path.dirname(HERE))  # tests/, where helpers.py lives
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
import helpers  # noqa: E402  (tests/helpers.py: busybox rootfs)

PYRUNC = os.environ.get("PYRUNC", helpers.RUNTIME)
RUNC = "/usr/sbin/runc"
RUNTIMES = {"pyrunc": PYRUNC, "runc": RUNC}
ARGV_LOG = bool(os.environ.get("PYRUNC_ENGINE_ARGV_LOG"))
# The cgroup driver the engines are configured with: cgroupfs (default, this
# host) or systemd (a host booted with systemd: the engines pass the runtime
# --systemd-cgroup and slice:prefix:name cgroupsPaths).
CGROUP_DRIVER = os.environ.get("PYRUNC_ENGINE_CGROUP_DRIVER", "cgroupfs")
if CGROUP_DRIVER not in ("cgroupfs", "systemd"):
    raise RuntimeError(f"PYRUNC_ENGINE_CGROUP_DRIVER={CGROUP_DRIVER!r}: cgroupfs or systemd")
SYSTEMD = CGROUP_DRIVER == "systemd"
CGROUP_V2 = os.path.exists("/sys/fs/cgroup/cgroup.controllers")  # a pure v2 hierarchy
CMD_TIMEOUT = 120
_apt_updated = False


_scratch = None


def scratch_cwd():
    """The working directory of every engine command and daemon: conmon
    writes a file named ``oom`` into its working directory when a container
    is OOM-killed, so none of them may inherit the repository's.  Removed at
    exit."""
    global _scratch
    if _scratch is None:
        import atexit
        import shutil
        import tempfile

        _scratch = tempfile.mkdtemp(prefix="pyrunc-engines-cwd-")
        atexit.register(shutil.rmtree, _scratch, True)
    return _scratch


def run(argv, *, timeout=CMD_TIMEOUT, check=False, env=None, input=None, stdin=subprocess.DEVNULL):
    """Run a command; text output captured.  Never inherits our stdio."""
    p = subprocess.run(
        argv,
        input=input,
        stdin=None if input is not None else stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=timeout,
        env=env,
        cwd=scratch_cwd(),
    )
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} -> {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def ensure_packages(pkgs):
    """Install the Debian packages of ``pkgs`` that are missing (apt-get update first)."""
    global _apt_updated
    missing = [
        p
        for p in pkgs
        if subprocess.run(["dpkg", "-s", p], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0
    ]
    if not missing:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        run(["apt-get", "update", "-qq"], timeout=600, env=env, check=True)
        _apt_updated = True
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], timeout=1200, env=env, check=True)


def ensure_python_module(module, pip_name):
    try:
        __import__(module)
    except ImportError:
        run(
            [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", pip_name],
            timeout=600,
            check=True,
        )


# ---------------------------------------------------------------- images


def build_rootfs_tar(workdir):
    """A busybox rootfs (tests/helpers.make_rootfs) packed as an uncompressed tar."""
    rootfs = os.path.join(workdir, "rootfs")
    if not os.path.isdir(rootfs):
        helpers.make_rootfs(rootfs)
        shutil.rmtree(os.path.join(rootfs, "shared"), ignore_errors=True)
    out = os.path.join(workdir, "busybox-rootfs.tar")
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(os.listdir(rootfs)):
            tar.add(os.path.join(rootfs, name), arcname=name)
    return out


def _blob(blobs_dir, data: bytes):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs_dir, digest), "wb") as f:
        f.write(data)
    return f"sha256:{digest}", len(data)


def oci_arch():
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def build_oci_archive(workdir, name, layer_tar, cmd):
    """Write an OCI image layout for image ``name`` (one layer) and tar it.

    The index carries both ``io.containerd.image.name`` (full name, read by
    ``ctr images import``) and ``org.opencontainers.image.ref.name``.
    """
    layout = tempfile.mkdtemp(dir=workdir, prefix="oci-")
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)
    with open(layer_tar, "rb") as f:
        layer = f.read()
    layer_digest, layer_size = _blob(blobs, layer)
    config = {
        "architecture": oci_arch(),
        "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": list(cmd), "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "pyrunc engine tests: /bin/busybox rootfs"}],
    }
    cfg_digest, cfg_size = _blob(blobs, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": cfg_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
    }
    man_digest, man_size = _blob(blobs, json.dumps(manifest).encode())
    tag = name.rpartition(":")[2] if ":" in name.rpartition("/")[2] else "latest"
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": man_digest,
                "size": man_size,
                "platform": {"architecture": oci_arch(), "os": "linux"},
                "annotations": {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    out = os.path.join(workdir, name.replace("/", "_").replace(":", "_") + ".oci.tar")
    with tarfile.open(out, "w") as tar:
        for entry in ("oci-layout", "index.json", "blobs"):
            tar.add(os.path.join(layout, entry), arcname=entry)
    shutil.rmtree(layout)
    return out


# ---------------------------------------------------------------- daemons


class Daemon:
    """A daemon started in its own session, output to ``log_path``.

    ``ready`` is a unix socket path that must accept connections before
    ``start()`` returns.  ``stop()`` sends SIGTERM, waits, then SIGKILL --
    always by pid, and only to the process started here.
    """

    def __init__(self, name, argv, log_path, ready_socket, env=None):
        self.name, self.argv, self.log_path, self.ready_socket = name, argv, log_path, ready_socket
        self.env = env
        self.proc = None

    def start(self, timeout=60):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=self.env,
            cwd=scratch_cwd(),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log:\n{self.tail()}")
            if os.path.exists(self.ready_socket):
                s = socket.socket(socket.AF_UNIX)
                try:
                    s.connect(self.ready_socket)
                    return self
                except OSError:
                    pass
                finally:
                    s.close()
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout}s; log:\n{self.tail()}")

    def tail(self, n=40):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout=20):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        finally:
            self._log.close()


def kill_processes_mentioning(text):
    """SIGKILL (by pid) processes whose command line contains ``text``:
    helpers the engines forked for us (shims, conmon) that outlived them."""
    killed = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            try:
                os.kill(int(entry), signal.SIGKILL)
                killed.append(f"{entry} {cmd.strip()}")
            except ProcessLookupError:
                pass
    return killed


# ---------------------------------------------------------------- cgroups & mounts


def cgroup_dirs_snapshot():
    return helpers.all_cgroup_dirs()


def remove_new_cgroups(before):
    """rmdir cgroup directories created since ``before`` (deepest first);
    return those that could not be removed (still hold processes)."""
    left = []
    for d in sorted(helpers.all_cgroup_dirs() - before, key=len, reverse=True):
        try:
            os.rmdir(d)
        except FileNotFoundError:
            pass
        except OSError:
            left.append(d)
    return left


def cgroup_of(pid):
    """{controller-or-'': path} of a process, as /proc/PID/cgroup says."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                out[c.replace("name=", "")] = path
    return out


def read_cgroup_file(pid, controller, filename):
    path = cgroup_of(pid)[controller]
    with open(f"/sys/fs/cgroup/{controller}{path}/{filename}") as f:
        return f.read().strip()


def cgroup_value(pid, v1, v2):
    """A cgroup file of ``pid``'s container: ``v1`` = (controller, file) on a
    v1/hybrid host, ``v2`` the file's name in the unified hierarchy."""
    if CGROUP_V2:
        with open(f"/sys/fs/cgroup{cgroup_of(pid)['']}/{v2}") as f:
            return f.read().strip()
    return read_cgroup_file(pid, *v1)


def unit_of(pid):
    """The systemd unit whose cgroup holds ``pid`` (the last path component)."""
    path = cgroup_of(pid)["" if CGROUP_V2 else "pids"]
    return path.rstrip("/").rsplit("/", 1)[-1]


def show_unit(unit, *props):
    """``systemctl show UNIT -p A,B`` as a dict."""
    out = run(["systemctl", "show", unit, "-p", ",".join(props)]).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def units_named(fragment):
    """Units systemd still knows (loaded, active or failed) whose name contains ``fragment``."""
    out = run(["systemctl", "list-units", "--all", "--plain", "--no-legend", f"*{fragment}*"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.split()]


def stop_units(pattern):
    """Stop and reset the units matching ``pattern`` (a test's leftovers) so
    that the next test and the session leak check start clean."""
    run(["systemctl", "stop", pattern])
    run(["systemctl", "reset-failed", pattern])


def cgroup_dirs_named(fragment):
    """Existing cgroup directories whose path contains ``fragment``."""
    return sorted(d for d in helpers.all_cgroup_dirs() if fragment in d)


def umount_under(path):
    """Lazily unmount every mount point under ``path`` (deepest first)."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mnt = line.split()[4]
            if mnt == path or mnt.startswith(path + "/"):
                mounts.append(mnt)
    for m in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", m], stderr=subprocess.DEVNULL)
    return mounts


def argv_logging_wrapper(directory, runtime_path, log_path):
    """A shell script named like the runtime that logs its argv, then execs it."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, os.path.basename(runtime_path))
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\necho "$$ $*" >> {log_path}\nexec {runtime_path} "$@"\n')
    os.chmod(path, 0o755)
    return path


def new_workdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)
    return d


def text_of(p):
    return f"rc={p.returncode}\nstdout: {p.stdout!r}\nstderr: {p.stderr!r}"


def wait_for(predicate, timeout=20, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)
