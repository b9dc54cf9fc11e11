"""podman and Docker running containers on pyrunc, with Debian's runc side
by side: every check runs for (engine, runtime) in {podman, docker} x
{pyrunc, runc}, so a check that passes with runc must pass with pyrunc.

podman reaches the runtime through conmon (``--runtime <path>``); dockerd
through containerd's runc v2 shim (``--add-runtime pyrunc=<path>``).

With the systemd cgroup driver (PYRUNC_ENGINE_CGROUP_DRIVER=systemd, in the
systemd VM) the same checklist runs, and the limits are also checked as the
properties of the container's transient unit (and after a daemon-reload).
"""

from __future__ import annotations

import os
import time

import pytest

import enginelib as el
from conftest import BUSYBOX_IMAGE as IMG, unique

ENGINES = ("podman", "docker")


@pytest.fixture(params=[(e, r) for e in ENGINES for r in el.RUNTIMES], ids=lambda p: f"{p[0]}-{p[1]}")
def eng(request):
    """(engine, runtime name, run-argv prefix incl. --runtime)."""
    engine_name, runtime = request.param
    engine = request.getfixturevalue(engine_name)
    return engine, runtime, ["run", *engine.runtime_args(runtime)]


def run_rm(eng, *args, timeout=el.CMD_TIMEOUT):
    engine, _, run = eng
    return engine(*run, "--rm", *args, timeout=timeout)


@pytest.fixture
def detached(eng):
    """Factory: start a detached container; removed (and checked gone) after the test."""
    engine, runtime, run = eng
    started = []

    def start(*args, cmd=("sleep", "1000")):
        name = unique("d")
        engine.ok(*run, "-d", "--name", name, *args, IMG, *cmd)
        started.append((name, engine.full_id(name)))
        return name

    yield start
    for name, full_id in started:
        engine("rm", "-f", name)
        left = el.wait_for(lambda: not engine.leftovers(runtime, full_id), timeout=10) or engine.leftovers(
            runtime, full_id
        )
        assert left is True or not left, f"left behind after rm: {left}"


def test_echo_output_and_exit_code(eng):
    p = run_rm(eng, IMG, "echo", "hello from the engine")
    assert (p.returncode, p.stdout) == (0, "hello from the engine\n"), el.text_of(p)
    p = run_rm(eng, IMG, "sh", "-c", "echo out; echo err >&2; exit 7")
    assert p.returncode == 7, el.text_of(p)
    assert p.stdout == "out\n" and "err" in p.stderr, el.text_of(p)


def test_env_workdir_user_hostname(eng):
    p = run_rm(
        eng,
        "-e",
        "FOO=bar baz",
        "-w",
        "/tmp",
        "-u",
        "1000",
        "--hostname",
        "engine-host",
        IMG,
        "sh",
        "-c",
        'echo "$FOO|$(pwd)|$(id -u):$(id -g)|$(hostname)"',
    )
    assert p.stdout == "bar baz|/tmp|1000:0|engine-host\n" or p.stdout == "bar baz|/tmp|1000:1000|engine-host\n", (
        el.text_of(p)
    )
    assert p.returncode == 0


def test_read_only_rootfs(eng):
    p = run_rm(eng, "--read-only", IMG, "sh", "-c", "touch /x && echo wrote; echo ro > /tmp/ok && cat /tmp/ok")
    assert "wrote" not in p.stdout and "Read-only file system" in p.stderr, el.text_of(p)


def test_cap_drop_all(eng):
    p = run_rm(eng, "--cap-drop", "ALL", IMG, "grep", "-E", "^Cap(Eff|Bnd|Prm)", "/proc/self/status")
    assert p.returncode == 0, el.text_of(p)
    vals = {line.split(":")[0]: int(line.split(":")[1], 16) for line in p.stdout.splitlines()}
    assert vals == {"CapPrm": 0, "CapEff": 0, "CapBnd": 0}, p.stdout
    p = run_rm(eng, IMG, "grep", "^CapEff", "/proc/self/status")
    assert int(p.stdout.split(":")[1], 16) != 0, el.text_of(p)  # the default set is not empty


def test_default_seccomp_profile(eng):
    engine, _, _ = eng
    p = run_rm(eng, IMG, "grep", "^Seccomp:", "/proc/self/status")
    assert p.stdout.split() == ["Seccomp:", "2"], el.text_of(p)  # filter mode
    p = run_rm(eng, "--security-opt", "seccomp=unconfined", IMG, "grep", "^Seccomp:", "/proc/self/status")
    assert p.stdout.split() == ["Seccomp:", "0"], el.text_of(p)
    if engine.name == "docker":
        # Docker's profile refuses unshare(CLONE_NEWUSER) without CAP_SYS_ADMIN,
        # which the kernel itself allows (podman's profile allows it too).
        p = run_rm(eng, IMG, "unshare", "-U", "true")
        assert p.returncode != 0 and "Operation not permitted" in p.stderr, el.text_of(p)
        p = run_rm(eng, "--security-opt", "seccomp=unconfined", IMG, "unshare", "-U", "true")
        assert p.returncode == 0, el.text_of(p)


# the engines' unit for a container under the systemd driver: (slice, prefix)
SYSTEMD_UNITS = {"podman": ("machine.slice", "libpod"), "docker": ("system.slice", "docker")}


def limits(pid):
    return (
        el.cgroup_value(pid, ("memory", "memory.limit_in_bytes"), "memory.max"),
        el.cgroup_value(pid, ("pids", "pids.max"), "pids.max"),
        el.cgroup_value(pid, ("cpu", "cpu.cfs_quota_us"), "cpu.max").split()[0],
    )


def test_limits_applied(eng, detached):
    engine, _, _ = eng
    name = detached("--memory", "64m", "--pids-limit", "57", "--cpu-quota", "50000", "--cpu-period", "100000")
    pid = engine.pid(name)
    assert limits(pid) == (str(64 << 20), "57", "50000")
    if el.SYSTEMD:
        slice_, prefix = SYSTEMD_UNITS[engine.name]
        unit = f"{prefix}-{engine.full_id(name)}.scope"
        assert el.unit_of(pid) == unit
        s = el.show_unit(unit, "Slice", "Delegate", "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec")
        assert s == {
            "Slice": slice_,
            "Delegate": "yes",
            "MemoryMax": str(64 << 20),
            "TasksMax": "57",
            "CPUQuotaPerSecUSec": "500ms",
        }, s
        el.run(["systemctl", "daemon-reload"], check=True)
        assert limits(pid) == (str(64 << 20), "57", "50000"), "daemon-reload undid a limit"
    # the limit binds: a process that needs more memory is OOM-killed (137)
    _, _, run = eng
    p = engine(
        *run,
        "--rm",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        IMG,
        "sh",
        "-c",
        "dd if=/dev/zero of=/dev/null bs=48M count=1 2>/dev/null; echo dd=$?",
    )
    assert p.stdout == "dd=137\n", el.text_of(p)  # dd's 48M buffer: OOM-killed


def test_detached_exec_stop_rm(eng, detached):
    engine, runtime, _ = eng
    name = detached()
    assert engine.status(name) == "running"
    p = engine.ok("exec", "-e", "X=1", "-w", "/etc", name, "sh", "-c", 'echo "in $X $(pwd)"')
    assert p.stdout == "in 1 /etc\n"
    p = engine("exec", name, "sh", "-c", "exit 5")
    assert p.returncode == 5, el.text_of(p)
    p = engine.ok("exec", "-u", "1000", name, "id", "-u")
    assert p.stdout == "1000\n"
    p = engine.ok("top", name)
    assert "sleep 1000" in p.stdout, p.stdout
    # sleep as PID 1 has no SIGTERM handler: stop escalates to SIGKILL
    t0 = time.monotonic()
    engine.ok("stop", "-t", "1", name)
    assert time.monotonic() - t0 < 30
    assert engine.status(name) == "exited"
    p = engine("exec", name, "true")
    assert p.returncode != 0


def test_exec_tty(eng, detached):
    engine, _, _ = eng
    name = detached()
    p = engine.ok("exec", "-t", name, "tty")
    assert p.stdout.strip().startswith("/dev/pts/"), el.text_of(p)
    p = run_rm(eng, "-t", IMG, "sh", "-c", "tty; stty size")
    assert p.returncode == 0 and "/dev/pts/" in p.stdout, el.text_of(p)


def test_sigterm_vs_sigkill(eng, detached):
    engine, _, _ = eng
    name = detached(cmd=("sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.1; done"))
    engine.ok("kill", "--signal", "TERM", name)
    code = engine.ok("wait", name, timeout=30).stdout.strip()
    assert code == "42"
    name = detached(cmd=("sh", "-c", "trap '' TERM; while :; do sleep 0.1; done"))
    engine.ok("kill", "--signal", "KILL", name)
    code = engine.ok("wait", name, timeout=30).stdout.strip()
    assert code == "137"


def test_pause_unpause_stats(eng, detached):
    engine, _, _ = eng
    name = detached()

    def frozen():
        return el.cgroup_value(engine.pid(name), ("freezer", "freezer.state"), "cgroup.freeze")

    engine.ok("pause", name)
    assert engine.status(name) == "paused"
    assert frozen() == ("1" if el.CGROUP_V2 else "FROZEN")
    p = engine("exec", name, "true")
    assert p.returncode != 0, el.text_of(p)  # refused while paused
    engine.ok("unpause", name)
    assert engine.status(name) == "running"
    assert frozen() == ("0" if el.CGROUP_V2 else "THAWED")
    assert engine.ok("exec", name, "echo", "thawed").stdout == "thawed\n"
    p = engine.ok("stats", "--no-stream", "--format", "{{.MemUsage}}", name)
    assert "B" in p.stdout, el.text_of(p)  # e.g. "1.2MiB / 64GiB"


def test_twenty_containers(eng):
    engine, runtime, run = eng
    names = []
    for i in range(20):
        name = unique("loop")
        p = engine(*run, "--name", name, IMG, "sh", "-c", f"echo {i}")
        assert (p.returncode, p.stdout) == (0, f"{i}\n"), el.text_of(p)
        names.append((name, engine.full_id(name)))
        engine.ok("rm", name)
    for _name, full_id in names:
        assert not engine.leftovers(runtime, full_id)
    root = engine.state_roots.get(runtime)
    if root and os.path.isdir(root):
        assert not [e for e in os.listdir(root) if any(f in e for _, f in names)]


def test_docker_daemon_json_runtime(docker):
    """A runtime declared in daemon.json "runtimes" (not --add-runtime)."""
    p = docker("run", "--rm", "--runtime", "pyrunc-json", IMG, "sh", "-c", "echo via daemon.json; exit 4")
    assert (p.returncode, p.stdout) == (4, "via daemon.json\n"), el.text_of(p)
