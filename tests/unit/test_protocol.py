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


def test_fds_travel_with_their_message_and_are_counted():
    """CGROUPS_CREATED carries the late-join fds (SCM_RIGHTS); the payload
    says how many, and a mismatch is refused with every fd closed."""
    a, b = sc.socketpair()
    ca, cb = proto.Channel(a), proto.Channel(b)
    r, w = os.pipe()
    try:
        ca.send_fds(proto.CGROUPS_CREATED, [w, w])
        mtype, payload, fds = cb.recv_fds(proto.CGROUPS_CREATED, max_fds=4)
        assert (mtype, payload, len(fds)) == (proto.CGROUPS_CREATED, {"fds": 2}, 2)
        os.write(fds[0], b"x")
        assert os.read(r, 1) == b"x"  # the same pipe, received as new fds
        for fd in fds:
            os.close(fd)
        # an ERROR passes (the caller exits), without fds
        ca.send(proto.ERROR, {"msg": "boom"})
        assert cb.recv_fds(proto.CGROUPS_CREATED, max_fds=4) == (proto.ERROR, {"msg": "boom"}, [])
        # a count that does not match what arrived: refused, nothing left open
        before = set(os.listdir("/proc/self/fd"))
        raw = proto.encode(proto.CGROUPS_CREATED, {"fds": 1})
        s = __import__("_socket").socket(fileno=a)
        try:
            s.sendmsg([raw], [(1, 1, struct.pack("2i", w, w))])  # SOL_SOCKET, SCM_RIGHTS
        finally:
            s.detach()
        with pytest.raises(proto.ProtocolError, match="2 fds received, 1 announced"):
            cb.recv_fds(proto.CGROUPS_CREATED, max_fds=4)
        assert set(os.listdir("/proc/self/fd")) == before
        # more fds than the receiver takes: cut off by the kernel, refused
        ca.send_fds(proto.CGROUPS_CREATED, [w] * 3)
        with pytest.raises(proto.ProtocolError, match="announced"):
            cb.recv_fds(proto.CGROUPS_CREATED, max_fds=1)
        assert set(os.listdir("/proc/self/fd")) == before
        # another message where fds were expected
        ca.send(proto.READY)
        with pytest.raises(proto.ProtocolError, match="unexpected READY"):
            cb.recv_fds(proto.CGROUPS_CREATED, max_fds=4)
        ca.close()
        with pytest.raises(proto.PeerGone):
            cb.recv_fds(proto.CGROUPS_CREATED, max_fds=4)
    finally:
        for fd in (r, w, b):
            os.close(fd)


def test_a_peer_gone_with_our_message_unread_still_gives_its_error():
    """A stage that failed before it read CGROUPS_CREATED exits with it
    unread: the kernel then reports ECONNRESET once before the stage's
    ERROR; recv reads past it."""
    a, b = sc.socketpair()
    ca, cb = proto.Channel(a), proto.Channel(b)
    try:
        ca.send(proto.CONTINUE)  # never read by b
        cb.send(proto.ERROR, {"msg": "mount failed"})
        cb.close()
        assert ca.recv() == (proto.ERROR, {"msg": "mount failed"})
        with pytest.raises(proto.PeerGone):
            ca.recv()
    finally:
        ca.close()
