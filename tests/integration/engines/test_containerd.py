"""containerd (ctr) running containers through its runc v2 shim pointed at
pyrunc (``--runc-binary``), with Debian's runc side by side.

The shim calls the runtime with ``--root <runc-root> --log <bundle>/log.json
--log-format json``; create/start/exec --detach --pid-file/kill/delete, and
reads the pid files; stats come from the cgroups, not from the runtime.

With the systemd cgroup driver (PYRUNC_ENGINE_CGROUP_DRIVER=systemd) every
``ctr run`` gets ``--runc-systemd-cgroup --cgroup system.slice:ctr:ID`` (the
shim's SystemdCgroup option; ctr needs a slice:prefix:name path with it).
"""

from __future__ import annotations

import os
import time

import pytest

import enginelib as el
from conftest import BUSYBOX_IMAGE as IMG, unique


@pytest.fixture(params=list(el.RUNTIMES))
def ctr_rt(request, containerd, tmp_path):
    """(containerd, runtime name, runtime root, ``ctr run`` argv prefix)."""
    name = request.param
    root = os.path.join(containerd.workdir, "ctr-root-" + name)
    os.makedirs(root, exist_ok=True)
    run = [
        "run",
        "--snapshotter",
        "native",
        "--runtime",
        "io.containerd.runc.v2",
        "--runc-binary",
        containerd.runtime_paths[name],
        "--runc-root",
        root,
    ]
    return containerd, name, root, run


def cg(cid):
    """The ``ctr run`` options that choose the cgroup driver for container ``cid``."""
    if el.SYSTEMD:
        return ["--runc-systemd-cgroup", "--cgroup", f"system.slice:ctr:{cid}"]
    return []


def _cleanup(c, cid):
    c.ctr("tasks", "kill", "-s", "SIGKILL", cid)
    c.ctr("tasks", "delete", "-f", cid)
    c.ctr("containers", "delete", cid)


def _assert_gone(c, root, cid):
    assert cid not in c.ctr_ok("containers", "list", "-q").stdout.split()
    assert not os.path.exists(os.path.join(root, "pyrunc-test", cid)), os.listdir(os.path.join(root, "pyrunc-test"))
    assert not el.cgroup_dirs_named(cid)
    if el.SYSTEMD:
        assert el.wait_for(lambda: not el.units_named(cid), timeout=10), el.units_named(cid)


def test_run_output_exit_code_env_cwd(ctr_rt):
    c, _, root, run = ctr_rt
    cid = unique("ctr")
    try:
        p = c.ctr(
            *run,
            *cg(cid),
            "--rm",
            "--env",
            "FOO=bar",
            "--cwd",
            "/tmp",
            IMG,
            cid,
            "sh",
            "-c",
            'echo "$FOO $(pwd) $(id -u)"; exit 7',
        )
        assert (p.returncode, p.stdout) == (7, "bar /tmp 0\n"), el.text_of(p)
        _assert_gone(c, root, cid)
    finally:
        _cleanup(c, cid)


def test_read_only_and_memory_limit(ctr_rt):
    c, _, root, run = ctr_rt
    cid = unique("ctr")
    try:
        p = c.ctr(
            *run,
            *cg(cid),
            "--rm",
            "--read-only",
            "--memory-limit",
            str(32 << 20),
            IMG,
            cid,
            "sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null; touch /x || echo ro",
        )
        assert p.returncode == 0 and p.stdout.split()[-1] == "ro", el.text_of(p)
    finally:
        _cleanup(c, cid)


def test_detached_exec_pause_kill_delete(ctr_rt):
    c, runtime, root, run = ctr_rt
    cid = unique("ctr")
    try:
        c.ctr_ok(*run, *cg(cid), "-d", "--null-io", IMG, cid, "sleep", "1000")
        tasks = c.ctr_ok("tasks", "list").stdout
        assert cid in tasks and "RUNNING" in tasks, tasks
        p = c.ctr("tasks", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo in-exec; exit 3")
        assert (p.returncode, p.stdout) == (3, "in-exec\n"), el.text_of(p)
        # a tty exec: ctr wants a terminal on its own stdin, script(1) gives it one
        p = el.run(
            [
                "script",
                "-qec",
                f"ctr --address {c.address} --namespace pyrunc-test tasks exec -t --exec-id e2 {cid} tty",
                "/dev/null",
            ]
        )
        assert p.returncode == 0 and "/dev/pts/" in p.stdout, el.text_of(p)
        pids = c.ctr_ok("tasks", "ps", cid).stdout
        assert len(pids.split("\n")) >= 2, pids
        c.ctr_ok("tasks", "pause", cid)
        assert "PAUSED" in c.ctr_ok("tasks", "list").stdout
        c.ctr_ok("tasks", "resume", cid)
        metrics = c.ctr_ok("tasks", "metrics", cid).stdout
        assert "memory" in metrics.lower(), metrics
        c.ctr_ok("tasks", "kill", "-s", "SIGKILL", cid)
        deadline = time.monotonic() + 20
        while "STOPPED" not in c.ctr_ok("tasks", "list").stdout and time.monotonic() < deadline:
            time.sleep(0.1)
        c.ctr_ok("tasks", "delete", cid)
        c.ctr_ok("containers", "delete", cid)
        _assert_gone(c, root, cid)
    finally:
        _cleanup(c, cid)


def test_twenty_containers(ctr_rt):
    c, _, root, run = ctr_rt
    for i in range(20):
        cid = unique("loop")
        try:
            p = c.ctr(*run, *cg(cid), "--rm", IMG, cid, "echo", str(i))
            assert (p.returncode, p.stdout) == (0, f"{i}\n"), el.text_of(p)
        finally:
            _cleanup(c, cid)
    assert not os.listdir(os.path.join(root, "pyrunc-test"))
