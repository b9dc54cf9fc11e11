"""Fixtures of the engine tests: podman, dockerd and containerd, each with
all of its state in a temporary directory, driving pyrunc and Debian's runc
side by side.

These tests install Debian packages and start daemons, so they only run
when PYRUNC_ENGINE_TESTS=1 (``make test-engines`` sets it); a plain
``make test`` does not collect them.

Fixtures:

* ``images`` (session): the busybox rootfs tar and OCI archives
  (``busybox`` and ``pause``) built from /bin/busybox.
* ``podman`` (session): a :class:`CliEngine` for podman (no daemon).
* ``containerd`` (session): a running containerd (:class:`Containerd`),
  CRI plugin on, runtime handlers ``pyrunc`` and ``runc``.
* ``docker`` (session): a :class:`CliEngine` for a dockerd that uses the
  ``containerd`` fixture's daemon.

With PYRUNC_ENGINE_CGROUP_DRIVER=systemd (``make test-systemd-vm``, on a
host booted with systemd) every engine is configured with the systemd cgroup
driver, as on a stock systemd host: podman ``cgroup_manager = "systemd"``,
dockerd ``"exec-opts": ["native.cgroupdriver=systemd"]`` in daemon.json,
containerd ``SystemdCgroup = true`` in each runtime's options.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

import enginelib as el

if not os.environ.get("PYRUNC_ENGINE_TESTS"):
    collect_ignore_glob = ["test_*.py"]

BUSYBOX_IMAGE = "localhost/busybox:latest"
PAUSE_IMAGE = "localhost/pause:local"


def unique(prefix="e"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def images():
    d = el.new_workdir("pyeng-img-")
    rootfs_tar = el.build_rootfs_tar(d)
    busybox = el.build_oci_archive(d, BUSYBOX_IMAGE, rootfs_tar, ["sh"])
    pause = el.build_oci_archive(d, PAUSE_IMAGE, rootfs_tar, ["sleep", "2147483647"])
    yield {"rootfs_tar": rootfs_tar, "busybox_oci": busybox, "pause_oci": pause}
    shutil.rmtree(d, ignore_errors=True)


def runtime_path(name, workdir):
    """The runtime's absolute path, or an argv-logging wrapper when
    PYRUNC_ENGINE_ARGV_LOG is set (to a directory to keep the logs)."""
    real = el.RUNTIMES[name]
    if not el.ARGV_LOG:
        return real
    log_dir = os.environ["PYRUNC_ENGINE_ARGV_LOG"]
    if not os.path.isdir(log_dir):  # PYRUNC_ENGINE_ARGV_LOG=1: log next to the engine's state
        log_dir = workdir
    engine = os.path.basename(workdir).split("-")[1]
    return el.argv_logging_wrapper(
        os.path.join(workdir, "wrap-" + name), real, os.path.join(log_dir, f"argv-{engine}-{name}.log")
    )


class CliEngine:
    """A docker-compatible command line (podman or docker) and where its
    runtimes keep their state (to prove nothing is left behind)."""

    def __init__(self, name, base_argv, runtime_args, state_roots, env, workdir):
        self.name = name
        self.base_argv = base_argv
        self._runtime_args = runtime_args  # runtime name -> extra argv for run/create
        self.state_roots = state_roots  # runtime name -> --root the runtime is given
        self.env = env
        self.workdir = workdir

    def __call__(self, *args, timeout=el.CMD_TIMEOUT, input=None):
        return el.run([*self.base_argv, *args], timeout=timeout, env=self.env, input=input)

    def ok(self, *args, **kw):
        p = self(*args, **kw)
        assert p.returncode == 0, f"{self.name} {' '.join(args)}\n{el.text_of(p)}"
        return p

    def runtime_args(self, runtime):
        return list(self._runtime_args[runtime])

    def full_id(self, name):
        return self.ok("inspect", "--format", "{{.Id}}", name).stdout.strip()

    def pid(self, name):
        return int(self.ok("inspect", "--format", "{{.State.Pid}}", name).stdout.strip())

    def status(self, name):
        return self.ok("inspect", "--format", "{{.State.Status}}", name).stdout.strip()

    def leftovers(self, runtime, full_id):
        """State directories and cgroups of container ``full_id`` still present."""
        left = []
        root = self.state_roots.get(runtime)
        if root and os.path.isdir(root):
            left += [os.path.join(root, e) for e in os.listdir(root) if full_id in e]
        left += el.cgroup_dirs_named(full_id)
        if el.SYSTEMD:
            left += el.units_named(full_id)
        return left


def _base_env(workdir):
    return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": workdir, "TMPDIR": workdir}


@pytest.fixture(scope="session")
def podman(images):
    el.ensure_packages(["podman", "conmon", "golang-github-containers-common"])
    d = el.new_workdir("pyeng-podman-")
    cgroups_before = el.cgroup_dirs_snapshot()
    rt_root = os.path.join(d, "runtime-state")
    os.makedirs(rt_root)
    conf = os.path.join(d, "containers.conf")
    with open(conf, "w") as f:
        f.write(f"""# podman for the pyrunc engine tests: everything under {d}
[containers]
netns = "none"
# root here lacks CAP_SYS_RESOURCE: podman's default 1048576 cannot be set
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
log_driver = "k8s-file"

[engine]
cgroup_manager = "{el.CGROUP_DRIVER}"
events_logger = "file"
# podman passes --log-format=json --log only to runtimes named here
runtime_supports_json = ["pyrunc", "runc", "crun"]
runtime_flags = ["root={rt_root}"]
""")
    storage = os.path.join(d, "storage.conf")
    with open(storage, "w") as f:
        f.write(f'[storage]\ndriver = "vfs"\nrunroot = "{d}/run"\ngraphroot = "{d}/root"\n')
    env = dict(
        _base_env(d), CONTAINERS_CONF=conf, CONTAINERS_STORAGE_CONF=storage, XDG_RUNTIME_DIR=os.path.join(d, "xdg")
    )
    os.makedirs(env["XDG_RUNTIME_DIR"])
    base = [
        "podman",
        "--root",
        f"{d}/root",
        "--runroot",
        f"{d}/run",
        "--tmpdir",
        f"{d}/tmp",
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        el.CGROUP_DRIVER,
        "--events-backend",
        "file",
    ]
    rts = {n: ["--runtime", runtime_path(n, d)] for n in el.RUNTIMES}
    # podman 4.3 applies neither containers.conf's runtime_flags nor (in the
    # cleanup process conmon starts) --runtime-flag: the runtimes keep their
    # state in their default root, /run/<name>, which is where the "nothing
    # left behind" check must look (it looks for this test's ids only)
    eng = CliEngine("podman", base, rts, {n: f"/run/{n}" for n in el.RUNTIMES}, env, d)
    try:
        eng.ok("import", images["rootfs_tar"], BUSYBOX_IMAGE, timeout=300)
        yield eng
    finally:
        eng("rm", "--all", "--force", "--time", "0")
        eng("system", "reset", "--force")  # removes images and storage
        el.kill_processes_mentioning(d)
        el.umount_under(d)
        if el.SYSTEMD:
            el.stop_units("libpod-*.scope")
        el.remove_new_cgroups(cgroups_before)
        shutil.rmtree(d, ignore_errors=True)


class Containerd:
    """A containerd daemon with its own config, root, state and sockets."""

    def __init__(self, workdir, daemon, address):
        self.workdir, self.daemon, self.address = workdir, daemon, address

    def ctr(self, *args, namespace="pyrunc-test", timeout=el.CMD_TIMEOUT, input=None):
        return el.run(["ctr", "--address", self.address, "--namespace", namespace, *args], timeout=timeout, input=input)

    def ctr_ok(self, *args, **kw):
        p = self.ctr(*args, **kw)
        assert p.returncode == 0, f"ctr {' '.join(args)}\n{el.text_of(p)}"
        return p


def containerd_config(d, runtime_paths):
    """config.toml: every path under ``d``; CRI handlers named after the runtimes."""
    handlers = ""
    for name, path in runtime_paths.items():
        handlers += f"""
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{name}.options]
        BinaryName = "{path}"
        Root = "{d}/runtime-state/{name}"
        SystemdCgroup = {"true" if el.SYSTEMD else "false"}
"""
    return f"""version = 2
root = "{d}/root"
state = "{d}/state"
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  level = "debug"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # root here lacks CAP_SYS_RESOURCE: a pod's oom_score_adj of -998 cannot be set
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d}/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
{handlers}"""


@pytest.fixture(scope="session")
def containerd(images):
    # the CNI plugins are not needed by the host-network pods of the tests;
    # the systemd VM (offline) has containerd but not them
    el.ensure_packages(["containerd"] + ([] if el.SYSTEMD else ["containernetworking-plugins"]))
    d = el.new_workdir("pyeng-ctrd-")
    cgroups_before = el.cgroup_dirs_snapshot()
    paths = {n: runtime_path(n, d) for n in el.RUNTIMES}
    for n in paths:
        os.makedirs(f"{d}/runtime-state/{n}")
    os.makedirs(f"{d}/cni")
    # No CNI network: containerd 1.6's CRI needs the CNI result to name an
    # eth0 interface (a loopback-only network list fails "failed to find
    # network info for sandbox"), so the test pods use the node's network.
    with open(f"{d}/config.toml", "w") as f:
        f.write(containerd_config(d, paths))
    address = f"{d}/containerd.sock"
    daemon = el.Daemon("containerd", ["containerd", "--config", f"{d}/config.toml"], f"{d}/containerd.log", address)
    daemon.start()
    c = Containerd(d, daemon, address)
    c.runtime_paths = paths
    try:
        for ns in ("pyrunc-test", "k8s.io"):
            c.ctr_ok("images", "import", "--snapshotter", "native", images["busybox_oci"], namespace=ns, timeout=300)
        c.ctr_ok("images", "import", "--snapshotter", "native", images["pause_oci"], namespace="k8s.io", timeout=300)
        yield c
    finally:
        for ns in ("pyrunc-test", "k8s.io", "moby"):
            _remove_all_ctr(c, ns)
        daemon.stop()
        el.kill_processes_mentioning(d)
        el.umount_under(d)
        if el.SYSTEMD:
            for pattern in ("cri-containerd-*.scope", "ctr-*.scope", "kubepods*.slice"):
                el.stop_units(pattern)
        el.remove_new_cgroups(cgroups_before)
        shutil.rmtree(d, ignore_errors=True)


def _remove_all_ctr(c, ns):
    tasks = c.ctr("tasks", "list", "-q", namespace=ns).stdout.split()
    for t in tasks:
        c.ctr("tasks", "kill", "-s", "SIGKILL", t, namespace=ns)
    for t in tasks:
        c.ctr("tasks", "delete", "-f", t, namespace=ns)
    for cid in c.ctr("containers", "list", "-q", namespace=ns).stdout.split():
        c.ctr("containers", "delete", cid, namespace=ns)


@pytest.fixture(scope="session")
def docker(images, containerd):
    el.ensure_packages(["docker.io"])
    d = el.new_workdir("pyeng-docker-")
    cgroups_before = el.cgroup_dirs_snapshot()
    sock = f"{d}/docker.sock"
    pyrunc = runtime_path("pyrunc", d)
    # the same runtime once more, declared the daemon.json way (docs/engines.md)
    daemon_json = {"runtimes": {"pyrunc-json": {"path": pyrunc}}}
    if el.SYSTEMD:
        # exactly README's daemon.json for a systemd host: the driver and the
        # runtime both there (dockerd refuses a setting given both ways)
        daemon_json = {
            "exec-opts": ["native.cgroupdriver=systemd"],
            "runtimes": {"pyrunc": {"path": pyrunc}, "pyrunc-json": {"path": pyrunc}},
        }
    with open(f"{d}/daemon.json", "w") as f:
        json.dump(daemon_json, f)
    argv = [
        "dockerd",
        "--config-file",
        f"{d}/daemon.json",
        "--data-root",
        f"{d}/data",
        "--exec-root",
        f"{d}/exec",
        "--pidfile",
        f"{d}/docker.pid",
        "-H",
        f"unix://{sock}",
        "--containerd",
        containerd.address,
        "--containerd-namespace",
        "moby",
        "--containerd-plugins-namespace",
        "moby-plugins",
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
        "--ip-masq=false",
        "--ip-forward=false",
        "--userland-proxy=false",
        "--storage-driver=vfs",
        "--exec-opt",
        "native.cgroupdriver=cgroupfs",
        "--add-runtime",
        f"pyrunc={pyrunc}",
    ]
    if el.SYSTEMD:
        del argv[-4:]  # both in daemon.json
    env = _base_env(d)
    daemon = el.Daemon("dockerd", argv, f"{d}/dockerd.log", sock, env=env)
    daemon.start()
    cli_env = dict(env, DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=f"{d}/cli")
    # Docker's runtime roots: <exec-root>/runtime-<name>/moby
    roots = {"pyrunc": f"{d}/exec/runtime-pyrunc/moby", "runc": f"{d}/exec/runtime-runc/moby"}
    eng = CliEngine("docker", ["/usr/bin/docker"], {"pyrunc": ["--runtime", "pyrunc"], "runc": []}, roots, cli_env, d)
    eng.daemon = daemon
    try:
        eng.ok("import", images["rootfs_tar"], BUSYBOX_IMAGE, timeout=300)
        yield eng
    finally:
        ids = eng("ps", "-aq").stdout.split()
        if ids:
            eng("rm", "-f", *ids)
        daemon.stop()
        el.kill_processes_mentioning(d)
        el.umount_under(d)
        if el.SYSTEMD:
            el.stop_units("docker-*.scope")
        el.remove_new_cgroups(cgroups_before)
        shutil.rmtree(d, ignore_errors=True)
