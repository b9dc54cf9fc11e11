"""A small CRI v1 client (the kubelet's side of ``runtime.v1.RuntimeService``)
over containerd's gRPC socket, for the engine tests.

crictl is not packaged in Debian 12, so this speaks the protocol itself:
grpcio carries the calls, and the few messages used are encoded here by
hand with the field numbers of the published CRI v1 API definition
(k8s.io/cri-api, ``pkg/apis/runtime/v1/api.proto``).  Only what the tests
need: pod sandbox run/stop/remove/status, container create/start/stop/
remove/status, UpdateContainerResources, ExecSync, Version.
"""

from __future__ import annotations

SERVICE = "/runtime.v1.RuntimeService/"

# NamespaceMode (api.proto): POD=0, CONTAINER=1, NODE=2, TARGET=3
NS_POD, NS_CONTAINER, NS_NODE = 0, 1, 2
# ContainerState
CONTAINER_CREATED, CONTAINER_RUNNING, CONTAINER_EXITED, CONTAINER_UNKNOWN = 0, 1, 2, 3
# PodSandboxState
SANDBOX_READY, SANDBOX_NOTREADY = 0, 1


# ------------------------------------------------------------ protobuf wire format


def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(num, value):
    return _varint(num << 3) + _varint(int(value)) if value else b""


def f_bytes(num, value):
    if isinstance(value, str):
        value = value.encode()
    return _varint((num << 3) | 2) + _varint(len(value)) + value if value else b""


def f_msg(num, encoded: bytes, always=False):
    if not encoded and not always:
        return b""
    return _varint((num << 3) | 2) + _varint(len(encoded)) + encoded


def f_strings(num, values):
    return b"".join(f_bytes(num, v) for v in values)


def f_map(num, mapping):
    return b"".join(f_msg(num, f_bytes(1, k) + f_bytes(2, v), always=True) for k, v in mapping.items())


def decode(data: bytes) -> dict:
    """{field number: [values]}; varints as int, length-delimited as bytes."""
    out: dict[int, list] = {}
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = _read_varint(data, i)
        elif wt == 2:
            n, i = _read_varint(data, i)
            val, i = data[i : i + n], i + n
        elif wt == 1:
            val, i = data[i : i + 8], i + 8
        elif wt == 5:
            val, i = data[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        out.setdefault(num, []).append(val)
    return out


def _read_varint(data, i):
    shift = n = 0
    while True:
        b = data[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def _first(d, num, default=None):
    return d.get(num, [default])[0]


def _int32(v):
    v = v or 0
    return v - (1 << 64) if v >= 1 << 63 else v


# ------------------------------------------------------------ messages


def pod_sandbox_config(name, uid, namespace="default", hostname="", network=NS_POD, cgroup_parent="", log_directory=""):
    metadata = f_bytes(1, name) + f_bytes(2, uid) + f_bytes(3, namespace)
    ns_options = f_varint(1, network) + f_varint(2, NS_CONTAINER)  # pid: per container
    security = f_msg(1, ns_options, always=True)
    linux = f_bytes(1, cgroup_parent) + f_msg(2, security, always=True)
    return f_msg(1, metadata) + f_bytes(2, hostname) + f_bytes(3, log_directory) + f_msg(8, linux, always=True)


def linux_resources(cpu_period=0, cpu_quota=0, cpu_shares=0, memory_limit=0):
    """LinuxContainerResources (what the kubelet sends for a container's requests/limits)."""
    return f_varint(1, cpu_period) + f_varint(2, cpu_quota) + f_varint(3, cpu_shares) + f_varint(4, memory_limit)


def container_config(
    name, image, command=(), args=(), working_dir="", envs=None, tty=False, log_path="", resources=b""
):
    metadata = f_bytes(1, name)
    body = (
        f_msg(1, metadata)
        + f_msg(2, f_bytes(1, image))
        + f_strings(3, command)
        + f_strings(4, args)
        + f_bytes(5, working_dir)
    )
    for k, v in (envs or {}).items():
        body += f_msg(6, f_bytes(1, k) + f_bytes(2, v), always=True)
    body += f_bytes(11, log_path) + f_varint(14, tty)
    body += f_msg(15, f_msg(1, resources))  # linux: LinuxContainerConfig.resources
    return body


class CriClient:
    def __init__(self, socket_path, timeout=60):
        import grpc  # lazily: only the CRI tests need grpcio

        self._grpc = grpc
        self.channel = grpc.insecure_channel("unix://" + socket_path)
        self.timeout = timeout

    def close(self):
        self.channel.close()

    def call(self, method, request: bytes, timeout=None) -> dict:
        fn = self.channel.unary_unary(SERVICE + method)
        return decode(fn(request, timeout=timeout or self.timeout))

    # RuntimeService
    def version(self):
        d = self.call("Version", f_bytes(1, "v1"))
        return {
            "runtime_name": _first(d, 2, b"").decode(),
            "runtime_version": _first(d, 3, b"").decode(),
            "runtime_api_version": _first(d, 4, b"").decode(),
        }

    def run_pod_sandbox(self, config: bytes, runtime_handler: str) -> str:
        d = self.call("RunPodSandbox", f_msg(1, config, always=True) + f_bytes(2, runtime_handler))
        return _first(d, 1).decode()

    def stop_pod_sandbox(self, pod_id):
        self.call("StopPodSandbox", f_bytes(1, pod_id))

    def remove_pod_sandbox(self, pod_id):
        self.call("RemovePodSandbox", f_bytes(1, pod_id))

    def pod_sandbox_state(self, pod_id) -> int:
        d = self.call("PodSandboxStatus", f_bytes(1, pod_id))
        return _first(decode(_first(d, 1, b"")), 3, 0)

    def create_container(self, pod_id, config: bytes, sandbox_config: bytes) -> str:
        d = self.call(
            "CreateContainer",
            f_bytes(1, pod_id) + f_msg(2, config, always=True) + f_msg(3, sandbox_config, always=True),
        )
        return _first(d, 1).decode()

    def start_container(self, cid):
        self.call("StartContainer", f_bytes(1, cid))

    def stop_container(self, cid, timeout_s=0):
        self.call("StopContainer", f_bytes(1, cid) + f_varint(2, timeout_s), timeout=self.timeout + timeout_s)

    def update_container_resources(self, cid, resources: bytes):
        self.call("UpdateContainerResources", f_bytes(1, cid) + f_msg(2, resources, always=True))

    def remove_container(self, cid):
        self.call("RemoveContainer", f_bytes(1, cid))

    def container_status(self, cid) -> dict:
        d = self.call("ContainerStatus", f_bytes(1, cid))
        s = decode(_first(d, 1, b""))
        return {
            "id": _first(s, 1, b"").decode(),
            "state": _first(s, 3, 0),
            "exit_code": _int32(_first(s, 7, 0)),
            "reason": _first(s, 10, b"").decode(),
            "message": _first(s, 11, b"").decode(),
        }

    def exec_sync(self, cid, cmd, timeout_s=30) -> tuple[int, bytes, bytes]:
        d = self.call("ExecSync", f_bytes(1, cid) + f_strings(2, cmd) + f_varint(3, timeout_s), timeout=timeout_s + 30)
        return _int32(_first(d, 3, 0)), _first(d, 1, b""), _first(d, 2, b"")
