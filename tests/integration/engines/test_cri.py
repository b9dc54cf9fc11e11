"""Kubernetes' path: containerd's CRI plugin with a runtime handler named
``pyrunc`` (runc v2 shim, options ``BinaryName`` = pyrunc), driven over its
gRPC socket the way the kubelet does for a pod whose RuntimeClass names
that handler: a pod sandbox (the locally built pause image) and a container
in it, started, exec'd into (ExecSync), stopped and removed.  The handler
``runc`` (Debian's runc) runs the same steps side by side.

With the systemd cgroup driver (PYRUNC_ENGINE_CGROUP_DRIVER=systemd: the
handlers' options have ``SystemdCgroup = true``) the pod gets a kubelet-style
parent ``/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<UID>.slice``
(the kubelet's systemd cgroup driver), containerd gives the runtime
``kubepods-burstable-pod<UID>.slice:cri-containerd:ID``, and the container's
limits are checked as unit properties, updated through
UpdateContainerResources (the kubelet's in-place resize) and kept across a
daemon-reload; no unit is left after the pod is removed.
"""

from __future__ import annotations

import os
import uuid

import pytest

import enginelib as el
from conftest import BUSYBOX_IMAGE, unique

el.ensure_python_module("grpc", "grpcio")
import cri  # noqa: E402


@pytest.fixture
def client(containerd):
    c = cri.CriClient(containerd.address)
    yield c
    c.close()


def test_version(client):
    v = client.version()
    assert v["runtime_name"] == "containerd" and v["runtime_api_version"] == "v1", v


MiB = 1 << 20


def check_systemd_unit(cid, pod_slice, memory):
    """The container's scope in the pod's slice, its limits as unit properties
    and in the files, kept across a daemon-reload."""
    unit = f"cri-containerd-{cid}.scope"
    cgroup = "/kubepods.slice/kubepods-burstable.slice/" + pod_slice + "/" + unit
    s = el.show_unit(unit, "Slice", "ControlGroup", "Delegate", "MemoryMax", "CPUQuotaPerSecUSec")
    assert s == {
        "Slice": pod_slice,
        "ControlGroup": cgroup,
        "Delegate": "yes",
        "MemoryMax": str(memory),
        "CPUQuotaPerSecUSec": "500ms",
    }, s
    el.run(["systemctl", "daemon-reload"], check=True)
    with open(f"/sys/fs/cgroup{cgroup}/memory.max") as f:
        assert f.read().strip() == str(memory), "daemon-reload undid the memory limit"
    return unit


@pytest.mark.parametrize("handler", list(el.RUNTIMES))
def test_pod_and_container_lifecycle(client, containerd, handler):
    uid = uuid.uuid4().hex
    parent = ""
    resources = b""
    if el.SYSTEMD:
        # the kubelet's systemd driver: a burstable pod's slice, expanded
        pod_slice = f"kubepods-burstable-pod{uid}.slice"
        parent = f"/kubepods.slice/kubepods-burstable.slice/{pod_slice}"
        resources = cri.linux_resources(cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit=64 * MiB)
    # hostNetwork pod: no CNI network here (see conftest.containerd_config)
    sandbox = cri.pod_sandbox_config(unique("pod"), uid, network=cri.NS_NODE, cgroup_parent=parent)
    pod = client.run_pod_sandbox(sandbox, handler)
    cid = None
    try:
        assert client.pod_sandbox_state(pod) == cri.SANDBOX_READY
        config = cri.container_config(
            "c1",
            BUSYBOX_IMAGE,
            command=["sleep", "1000"],
            envs={"GREETING": "hello-cri"},
            working_dir="/tmp",
            resources=resources,
        )
        cid = client.create_container(pod, config, sandbox)
        assert client.container_status(cid)["state"] == cri.CONTAINER_CREATED
        client.start_container(cid)
        assert client.container_status(cid)["state"] == cri.CONTAINER_RUNNING
        if el.SYSTEMD:
            unit = check_systemd_unit(cid, pod_slice, 64 * MiB)
            assert el.show_unit(f"cri-containerd-{pod}.scope", "Slice")["Slice"] == pod_slice
            client.update_container_resources(
                cid, cri.linux_resources(cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit=96 * MiB)
            )
            check_systemd_unit(cid, pod_slice, 96 * MiB)
        code, out, err = client.exec_sync(cid, ["sh", "-c", 'echo "$GREETING $(pwd) $$"; exit 3'])
        assert code == 3 and out.startswith(b"hello-cri /tmp ") and out != b"hello-cri /tmp 1\n", (code, out, err)
        code, out, _ = client.exec_sync(cid, ["sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"])
        # the pod's shared pid namespace (the CRI default): PID 1 is the pause process
        assert (code, out) == (0, b"sleep 2147483647 "), out
        # sleep is not PID 1 in the pod's pid namespace: SIGTERM ends it (128+15)
        client.stop_container(cid, timeout_s=5)
        st = client.container_status(cid)
        assert (st["state"], st["exit_code"]) == (cri.CONTAINER_EXITED, 143), st
        client.remove_container(cid)
        cid = None
        client.stop_pod_sandbox(pod)
        client.remove_pod_sandbox(pod)
        pod = None
        root = os.path.join(containerd.workdir, "runtime-state", handler, "k8s.io")
        assert not (os.path.isdir(root) and os.listdir(root)), os.listdir(root)
        if el.SYSTEMD:
            assert el.wait_for(lambda: not el.units_named(cid) and not el.units_named(pod), timeout=10), el.units_named(
                cid
            ) + el.units_named(pod)
            assert el.show_unit(unit, "LoadState")["LoadState"] == "not-found"
    finally:
        if cid:
            client.remove_container(cid)
        if pod:
            client.stop_pod_sandbox(pod)
            client.remove_pod_sandbox(pod)
