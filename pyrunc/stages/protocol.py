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

import os
import struct

from .. import fastjson  # json's C accelerator without importing json (and re)

TYPE_CHECKING = False  # typing is for the checker only: not imported at run time
if TYPE_CHECKING:
    from typing import Any

    Payload = dict[str, Any]  # a message's JSON object

MAGIC = b"PR"
HEADER = struct.Struct(">2sHI")
MAX_PAYLOAD = 64 * 1024

# runtime -> stage
CONTINUE = 1  # the stage is in its cgroups; go on
MAPS_WRITTEN = 2  # uid_map/gid_map (and setgroups) of the stage are written
RUNTIME_SETUP_DONE = 3  # createRuntime/prestart hooks ran, net devices moved
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
        data = os.read(self.fd, HEADER.size + MAX_PAYLOAD + 1)
        if not data:
            raise PeerGone("channel closed")
        return decode(data)

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
