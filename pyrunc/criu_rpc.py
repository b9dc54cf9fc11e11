"""The messages of criu's RPC (criu_req / criu_resp / criu_opts of criu's
rpc.proto) and a minimal protocol-buffers (proto2) codec for exactly them.

Why our own codec: criu's Python bindings (``pycriu``) are not on PyPI and
Debian's python3-criu lives outside the venv (and pulls in the generated
protobuf modules and the protobuf runtime, ~50 ms of imports); the RPC
needs a few dozen fields of four wire types.  The field numbers below are
criu's (rpc.proto is part of criu's stable RPC interface).

Wire format used: a key is a varint ``(field_number << 3) | wire_type``;
wire type 0 is a varint (int32, uint32, bool, enum; a negative int32 is
sign-extended to 64 bits: ten bytes), 2 is length-delimited (string,
bytes, a nested message, each repeated element on its own).  The decoder
skips fields it does not know (types 0, 1, 2, 5) so that newer criu
versions' answers still decode.
"""

TYPE_CHECKING = False  # typing is for the checker only: not imported at run time
if TYPE_CHECKING:
    from typing import Any

VARINT, I64, LEN, I32 = 0, 1, 2, 5

# a schema maps field name -> (number, kind[, nested schema]); kind is
# "int32" "uint32" "bool" "enum" "string" "msg", with a "*" suffix for repeated
EXT_MOUNT_MAP = {"key": (1, "string"), "val": (2, "string")}
JOIN_NAMESPACE = {"ns": (1, "string"), "ns_file": (2, "string"), "extra_opt": (3, "string")}
INHERIT_FD = {"key": (1, "string"), "fd": (2, "int32")}
CGROUP_ROOT = {"ctrl": (1, "string"), "path": (2, "string")}
FEATURES = {"mem_track": (1, "bool"), "lazy_pages": (2, "bool"), "pidfd_store": (3, "bool")}

OPTS = {
    "images_dir_fd": (1, "int32"),
    "pid": (2, "int32"),
    "leave_running": (3, "bool"),
    "ext_unix_sk": (4, "bool"),
    "tcp_established": (5, "bool"),
    "evasive_devices": (6, "bool"),
    "shell_job": (7, "bool"),
    "file_locks": (8, "bool"),
    "log_level": (9, "int32"),
    "log_file": (10, "string"),
    "notify_scripts": (12, "bool"),
    "root": (13, "string"),
    "parent_img": (14, "string"),
    "track_mem": (15, "bool"),
    "auto_dedup": (16, "bool"),
    "work_dir_fd": (17, "int32"),
    "link_remap": (18, "bool"),
    "ext_mnt": (23, "msg*", EXT_MOUNT_MAP),
    "manage_cgroups": (24, "bool"),
    "cg_root": (25, "msg*", CGROUP_ROOT),
    "rst_sibling": (26, "bool"),
    "inherit_fd": (27, "msg*", INHERIT_FD),
    "manage_cgroups_mode": (34, "enum"),
    "external": (37, "string*"),
    "empty_ns": (38, "uint32"),
    "join_ns": (39, "msg*", JOIN_NAMESPACE),
    "freeze_cgroup": (44, "string"),
    "tcp_skip_in_flight": (46, "bool"),
    "lazy_pages": (48, "bool"),
    "status_fd": (49, "int32"),
    "orphan_pts_master": (50, "bool"),
    "config_file": (51, "string"),
}
DUMP_RESP = {"restored": (1, "bool")}
RESTORE_RESP = {"pid": (1, "int32")}
NOTIFY = {"script": (1, "string"), "pid": (2, "int32")}
VERSION = {
    "major_number": (1, "int32"),
    "minor_number": (2, "int32"),
    "gitid": (3, "string"),
    "sublevel": (4, "int32"),
    "extra": (5, "int32"),
    "name": (6, "string"),
}
REQ = {
    "type": (1, "enum"),
    "opts": (2, "msg", OPTS),
    "notify_success": (3, "bool"),
    "keep_open": (4, "bool"),
    "features": (5, "msg", FEATURES),
    "pid": (6, "uint32"),
}
RESP = {
    "type": (1, "enum"),
    "success": (2, "bool"),
    "dump": (3, "msg", DUMP_RESP),
    "restore": (4, "msg", RESTORE_RESP),
    "notify": (5, "msg", NOTIFY),
    "cr_errno": (7, "int32"),
    "features": (8, "msg", FEATURES),
    "cr_errmsg": (9, "string"),
    "version": (10, "msg", VERSION),
    "status": (11, "int32"),
}

# criu_req_type
EMPTY, DUMP, RESTORE, CHECK, PRE_DUMP, PAGE_SERVER, NOTIFY_TYPE = 0, 1, 2, 3, 4, 5, 6
FEATURE_CHECK, VERSION_TYPE = 9, 10
TYPE_NAMES = {
    0: "EMPTY",
    1: "DUMP",
    2: "RESTORE",
    3: "CHECK",
    4: "PRE_DUMP",
    5: "PAGE_SERVER",
    6: "NOTIFY",
    7: "CPUINFO_DUMP",
    8: "CPUINFO_CHECK",
    9: "FEATURE_CHECK",
    10: "VERSION",
    11: "WAIT_PID",
    12: "PAGE_SERVER_CHLD",
    13: "SINGLE_PRE_DUMP",
}
# criu_cg_mode, by runc's --manage-cgroups-mode names ("" is criu's default)
CG_MODES = {"ignore": 0, "soft": 3, "full": 4, "strict": 5, "": 6}


class DecodeError(ValueError):
    pass


def _varint(n):
    if n < 0:
        n += 1 << 64  # int32/int64 negatives: two's complement over 64 bits
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _read_varint(buf, i):
    shift = n = 0
    while True:
        if i >= len(buf):
            raise DecodeError("truncated varint")
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            return n, i
        shift += 7
        if shift >= 70:
            raise DecodeError("varint too long")


def encode(schema, values):
    """Serialise ``values`` (a dict; None or absent fields are left out) in
    field-number order, as protobuf encoders do."""
    out = bytearray()
    for name, spec in sorted(schema.items(), key=lambda kv: kv[1][0]):
        v = values.get(name)
        if v is None:
            continue
        number, kind = spec[0], spec[1]
        repeated = kind.endswith("*")
        kind = kind.rstrip("*")
        for item in v if repeated else (v,):
            if kind in ("int32", "uint32", "enum", "bool"):
                out += _varint(number << 3 | VARINT) + _varint(int(item))
            else:
                if kind == "string":
                    data = item.encode() if isinstance(item, str) else bytes(item)
                else:
                    data = encode(spec[2], item)
                out += _varint(number << 3 | LEN) + _varint(len(data)) + data
    return bytes(out)


def decode(schema, buf):
    """Parse ``buf`` into a dict of the schema's fields that are present."""
    by_number = {spec[0]: (name, spec) for name, spec in schema.items()}
    out: dict[str, Any] = {}
    i = 0
    buf = bytes(buf)
    while i < len(buf):
        key, i = _read_varint(buf, i)
        number, wtype = key >> 3, key & 7
        if wtype == VARINT:
            value, i = _read_varint(buf, i)
        elif wtype == LEN:
            n, i = _read_varint(buf, i)
            if i + n > len(buf):
                raise DecodeError("truncated length-delimited field")
            value, i = buf[i : i + n], i + n
        elif wtype in (I64, I32):
            i += 8 if wtype == I64 else 4
            if i > len(buf):
                raise DecodeError("truncated fixed-size field")
            continue
        else:
            raise DecodeError(f"unsupported wire type {wtype}")
        entry = by_number.get(number)
        if entry is None:
            continue  # a field of a newer criu
        name, spec = entry
        kind = spec[1].rstrip("*")
        if (wtype == LEN) != (kind in ("string", "msg")):
            raise DecodeError(f"field {name}: wrong wire type {wtype}")
        if kind == "int32":
            value = value - (1 << 64) if value >= 1 << 63 else value
            value = value - (1 << 32) if 1 << 31 <= value < 1 << 32 else value
        elif kind == "bool":
            value = bool(value)
        elif kind == "string":
            value = value.decode(errors="replace")
        elif kind == "msg":
            value = decode(spec[2], value)
        if spec[1].endswith("*"):
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    return out
