"""The stage protocol's framing: typed, length-checked, bounded messages."""

import os
import struct

import pytest

from pyrunc.stages import protocol as proto
from pyrunc.linux import syscalls as sc


def test_round_trip_every_type():
    for mtype in proto.NAMES:
        payload = {"pid": 42} if mtype in (proto.WRITE_MAPS, proto.INIT_PID) else None
        assert proto.decode(proto.encode(mtype, payload)) == (mtype, payload or {})


@pytest.mark.parametrize(
    "data,why",
    [
        (b"", "short message"),
        (b"XX" + struct.pack(">HI", proto.READY, 0), "bad magic"),
        (b"PR" + struct.pack(">HI", 999, 0), "unknown message type"),
        (b"PR" + struct.pack(">HI", proto.ERROR, 10) + b"{}", "does not match"),
        (b"PR" + struct.pack(">HI", proto.ERROR, 2) + b"[]", "not an object"),
    ],
)
def test_malformed_messages_are_refused(data, why):
    with pytest.raises(proto.ProtocolError, match=why):
        proto.decode(data)


def test_oversized_payload_is_refused_when_sending():
    with pytest.raises(proto.ProtocolError, match="too large"):
        proto.encode(proto.ERROR, {"msg": "x" * (proto.MAX_PAYLOAD + 1)})


def test_length_field_above_the_maximum_is_refused():
    body = b"{}"
    data = b"PR" + struct.pack(">HI", proto.ERROR, proto.MAX_PAYLOAD + 1) + body
    with pytest.raises(proto.ProtocolError):
        proto.decode(data)


def test_channel_over_a_real_seqpacket_pair_keeps_boundaries():
    a, b = sc.socketpair()
    ca, cb = proto.Channel(a), proto.Channel(b)
    try:
        ca.send(proto.WRITE_MAPS, {"pid": 7})
        ca.send(proto.READY)
        assert cb.recv() == (proto.WRITE_MAPS, {"pid": 7})
        assert cb.expect(proto.READY) == (proto.READY, {})
        with pytest.raises(proto.ProtocolError, match="unexpected"):
            ca.send(proto.CONTINUE)
            cb.expect(proto.READY)
        # an oversized raw datagram (bypassing encode) is detected, not truncated silently
        os.write(a, b"PR" + struct.pack(">HI", proto.ERROR, proto.MAX_PAYLOAD + 10) + b" " * (proto.MAX_PAYLOAD + 10))
        with pytest.raises(proto.ProtocolError):
            cb.recv()
        ca.close()
        with pytest.raises(proto.PeerGone):
            cb.recv()
    finally:
        ca.close()
        cb.close()
