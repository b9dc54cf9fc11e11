"""The stage protocol between the runtime and the container's setup stages.

Transport: an AF_UNIX SOCK_SEQPACKET socketpair made before the first fork.
Each message is one datagram:

    offset 0  2 bytes  magic b"PR"
    offset 2  2 bytes  message type (big-endian, one of the constants below)
    offset 4  4 bytes  payload length N (big-endian)
    offset 8  N bytes  payload: a UTF-8 JSON object (may be empty: N = 0)

The receiver checks the magic, that the type is known, that N equals the
number of bytes actually received (a truncated or padded datagram is
refused) and that N <= MAX_PAYLOAD.  Payloads are small by design: the
child stages are forks of the runtime and already hold the whole config in
memory, so only pids, requests and error text cross the channel.  This is
length-checked framing, so a message can never be misread as another
(CVE-2021-43784; docs/stage-protocol.md).

See docs/stage-protocol.md for the sequence.
"""

from __future__ import annotations

from .. import lightos as os  # os's calls without importing os (lightos.py)
import struct

from .. import fastjson  # json's C accelerator without importing json (and re)

TYPE_CHECKING = False  # typing is for the checker only: not imported at run time
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    Payload = dict[str, Any]  # a message's JSON object

MAGIC = b"PR"
HEADER = struct.Struct(">2sHI")
MAX_PAYLOAD = 64 * 1024

# runtime -> stage
CONTINUE = 1  # go on (a stage placed in its cgroups at fork is there now)
MAPS_WRITTEN = 2  # uid_map/gid_map (and setgroups) of the stage are written
RUNTIME_SETUP_DONE = 3  # createRuntime/prestart hooks ran, net devices moved
CGROUPS_CREATED = 4  # {"fds": n, "origin": m} + n fds (SCM_RIGHTS): the cgroups exist, their cgroup.procs
# stage -> runtime
WRITE_MAPS = 10  # {"pid": n}: please write the id maps of this process
INIT_PID = 11  # {"pid": n}: the container init's pid (runtime's pid ns)
RUNTIME_SETUP = 12  # namespaces and mounts exist: run runtime-namespace work
READY = 13  # the init is set up and waits for `start`
ERROR = 14  # {"msg": "..."}: the stage failed; msg is the root cause

NAMES = {
    CONTINUE: "CONTINUE",
    MAPS_WRITTEN: "MAPS_WRITTEN",
    RUNTIME_SETUP_DONE: "RUNTIME_SETUP_DONE",
    CGROUPS_CREATED: "CGROUPS_CREATED",
    WRITE_MAPS: "WRITE_MAPS",
    INIT_PID: "INIT_PID",
    RUNTIME_SETUP: "RUNTIME_SETUP",
    READY: "READY",
    ERROR: "ERROR",
}


class ProtocolError(Exception):
    pass


class PeerGone(ProtocolError):
    """The other side closed the channel (it exited)."""


def encode(mtype: int, payload: Payload | None = None) -> bytes:
    if mtype not in NAMES:
        raise ProtocolError(f"unknown message type {mtype}")
    body = fastjson.dumps(payload, compact=True).encode() if payload else b""
    if len(body) > MAX_PAYLOAD:
        raise ProtocolError(f"{NAMES[mtype]} payload too large ({len(body)} bytes)")
    return HEADER.pack(MAGIC, mtype, len(body)) + body


def decode(data: bytes) -> tuple[int, Payload]:
    if len(data) < HEADER.size:
        raise ProtocolError(f"short message ({len(data)} bytes)")
    magic, mtype, length = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise ProtocolError("bad magic")
    if mtype not in NAMES:
        raise ProtocolError(f"unknown message type {mtype}")
    if length > MAX_PAYLOAD or length != len(data) - HEADER.size:
        raise ProtocolError(
            f"{NAMES[mtype]}: length field {length} does not match {len(data) - HEADER.size} payload bytes"
        )
    try:
        payload = fastjson.loads(data[HEADER.size :]) if length else {}
    except (ValueError, SystemError):
        raise ProtocolError(f"{NAMES[mtype]}: payload is not valid JSON") from None
    if not isinstance(payload, dict):
        raise ProtocolError(f"{NAMES[mtype]}: payload is not an object")
    return mtype, payload


class Channel:
    """One end of the socketpair."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def send(self, mtype: int, payload: Payload | None = None) -> None:
        os.write(self.fd, encode(mtype, payload))

    def recv(self) -> tuple[int, Payload]:
        # One extra byte beyond the maximum lets an oversized datagram be
        # detected (SEQPACKET truncates silently otherwise).
        try:
            data = os.read(self.fd, HEADER.size + MAX_PAYLOAD + 1)
        except ConnectionResetError:
            # The peer exited with messages of ours unread (a stage that
            # failed before it took CGROUPS_CREATED): the kernel reports
            # that once, then gives what the peer sent (its ERROR) and EOF.
            data = os.read(self.fd, HEADER.size + MAX_PAYLOAD + 1)
        if not data:
            raise PeerGone("channel closed")
        return decode(data)

    def send_fds(self, mtype: int, fds: Sequence[int], payload: Payload | None = None) -> None:
        """A message carrying ``fds`` (SCM_RIGHTS); its payload (``payload``
        and "fds") says how many, so that the receiver can tell a cut-off
        control message."""
        import _socket  # built in (socket.py would cost its enum import); loaded by stages/init.py

        s = _socket.socket(fileno=self.fd)
        try:
            s.sendmsg(
                [encode(mtype, {**(payload or {}), "fds": len(fds)})],
                [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] if fds else [],
            )
        finally:
            s.detach()

    def recv_fds(self, mtype: int, max_fds: int) -> tuple[int, Payload, list[int]]:
        """Receive a message that should be ``mtype`` with its fds (ERROR
        passes, with none).  Any fds but the announced ones are closed and
        refused: nothing unexpected stays open in a stage."""
        import _socket  # in the init: already loaded by the runtime (stages/init.py), no import after fork

        s = _socket.socket(fileno=self.fd)
        try:
            data, ancdata, flags, _ = s.recvmsg(HEADER.size + MAX_PAYLOAD + 1, _socket.CMSG_SPACE(max_fds * 4))
        finally:
            s.detach()
        fds: list[int] = []
        for level, ctype, cdata in ancdata:
            if level == _socket.SOL_SOCKET and ctype == _socket.SCM_RIGHTS:
                n = len(cdata) // 4
                fds.extend(struct.unpack(f"{n}i", cdata[: n * 4]))
        try:
            if not data:
                raise PeerGone("channel closed")
            got, payload = decode(data)
            if got == ERROR and not fds:
                return got, payload, []
            if got != mtype:
                raise ProtocolError(f"unexpected {NAMES[got]}, wanted {NAMES[mtype]}")
            if flags & _socket.MSG_CTRUNC or payload.get("fds") != len(fds):
                raise ProtocolError(f"{NAMES[mtype]}: {len(fds)} fds received, {payload.get('fds')} announced")
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return got, payload, fds

    def expect(self, *types: int) -> tuple[int, Payload]:
        mtype, payload = self.recv()
        if mtype == ERROR:
            return mtype, payload
        if mtype not in types:
            raise ProtocolError(f"unexpected {NAMES[mtype]}, wanted " + "/".join(NAMES[t] for t in types))
        return mtype, payload

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
