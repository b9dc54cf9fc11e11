"""The minimal protobuf codec of criu's RPC messages (pyrunc/criu_rpc.py),
against byte strings worked out by hand from the protobuf wire format and
criu's rpc.proto field numbers."""

import pytest

from pyrunc import criu_rpc as rpc


def test_version_request():
    assert rpc.encode(rpc.REQ, {"type": rpc.VERSION_TYPE}) == b"\x08\x0a"


def test_dump_request_nested_opts():
    req = {"type": rpc.DUMP, "opts": {"images_dir_fd": 5, "pid": 42, "log_file": "dump.log"}}
    opts = b"\x08\x05" + b"\x10\x2a" + b"\x52\x08dump.log"
    assert rpc.encode(rpc.REQ, req) == b"\x08\x01" + b"\x12" + bytes([len(opts)]) + opts


def test_fields_in_number_order_whatever_the_dict_order():
    a = rpc.encode(rpc.OPTS, {"log_file": "x", "images_dir_fd": 3, "root": "/r"})
    assert a == b"\x08\x03" + b"\x52\x01x" + b"\x6a\x02/r"


def test_negative_int32_is_ten_bytes():
    assert rpc.encode(rpc.OPTS, {"images_dir_fd": -1}) == b"\x08" + b"\xff" * 9 + b"\x01"
    assert rpc.decode(rpc.OPTS, b"\x08" + b"\xff" * 9 + b"\x01") == {"images_dir_fd": -1}


def test_bools_false_are_sent_none_are_not():
    assert rpc.encode(rpc.OPTS, {"leave_running": False, "shell_job": None}) == b"\x18\x00"


def test_repeated_messages_and_two_byte_keys():
    opts = {
        "ext_mnt": [{"key": "/a", "val": "/b"}, {"key": "/c", "val": "/d"}],
        "external": ["net[4026531840]:extRootNetNS"],
    }
    data = rpc.encode(rpc.OPTS, opts)
    one = b"\x0a\x02/a\x12\x02/b"
    two = b"\x0a\x02/c\x12\x02/d"
    ext = b"net[4026531840]:extRootNetNS"
    # field 23 length-delimited: key 23<<3|2 = 186 = varint ba 01; field 37: 298 = aa 02
    assert data == (
        b"\xba\x01"
        + bytes([len(one)])
        + one
        + b"\xba\x01"
        + bytes([len(two)])
        + two
        + b"\xaa\x02"
        + bytes([len(ext)])
        + ext
    )
    assert rpc.decode(rpc.OPTS, data) == opts


def test_long_string_length_varint():
    s = "x" * 300
    data = rpc.encode(rpc.OPTS, {"root": s})
    assert data[:3] == b"\x6a\xac\x02" and data[3:] == s.encode()


def test_restore_response():
    resp = rpc.decode(rpc.RESP, b"\x08\x02\x10\x01\x22\x03\x08\xd2\x09")
    assert resp == {"type": rpc.RESTORE, "success": True, "restore": {"pid": 1234}}


def test_failure_response_with_errno_and_message():
    resp = rpc.decode(rpc.RESP, b"\x08\x01\x10\x00\x38\x26\x4a\x01x")
    assert resp == {"type": rpc.DUMP, "success": False, "cr_errno": 38, "cr_errmsg": "x"}


def test_unknown_fields_of_every_wire_type_are_skipped():
    extra = (
        b"\x98\x06\x01"  # field 99, varint
        + b"\xa5\x06\x00\x00\x00\x00"  # field 100, fixed32
        + b"\xa9\x06"
        + b"\x00" * 8  # field 101, fixed64
        + b"\xb2\x06\x02ab"
    )  # field 102, length-delimited
    assert rpc.decode(rpc.RESP, b"\x08\x0a" + extra + b"\x10\x01") == {"type": 10, "success": True}


def test_version_response_nested():
    body = b"\x08\x03\x10\x11\x20\x01"
    resp = rpc.decode(rpc.RESP, b"\x08\x0a\x10\x01\x52" + bytes([len(body)]) + body)
    assert resp["version"] == {"major_number": 3, "minor_number": 17, "sublevel": 1}


@pytest.mark.parametrize("data", [b"\x08", b"\x08\x80", b"\x4a\x05ab", b"\x0f\x00", b"\xa5\x06\x00", b"\x4a"])
def test_truncated_or_malformed_input_raises(data):
    with pytest.raises(rpc.DecodeError):
        rpc.decode(rpc.RESP, data)


def test_wrong_wire_type_for_known_field():
    with pytest.raises(rpc.DecodeError):
        rpc.decode(rpc.RESP, b"\x48\x01")  # cr_errmsg (field 9, a string) sent as a varint


def test_round_trip_request():
    req = {
        "type": rpc.RESTORE,
        "opts": {
            "images_dir_fd": 7,
            "log_level": 4,
            "root": "/run/x/criu-root",
            "rst_sibling": True,
            "manage_cgroups_mode": rpc.CG_MODES["soft"],
            "empty_ns": 0x40000000,
            "inherit_fd": [{"key": "pipe:[123]", "fd": 1}],
            "cg_root": [{"path": "/a/b"}],
            "join_ns": [{"ns": "uts", "ns_file": "/proc/1/ns/uts"}],
        },
    }
    assert rpc.decode(rpc.REQ, rpc.encode(rpc.REQ, req)) == req
