"""Pure logic of the cgroup managers: path resolution, conversions, device rules, stats shape."""

import os

import pytest

from pyrunc.cgroups import resolve_path
from pyrunc.cgroups import resources as R
from pyrunc.cgroups.stats import prune, skeleton
from pyrunc.linux.procfs import parse_cpu_list
from pyrunc.errors import CgroupError


@pytest.mark.parametrize(
    "given,expected",
    [
        (None, ("cid", True)),
        ("", ("cid", True)),
        ("/a/b", ("/a/b", False)),
        ("//a//b/", ("/a/b", False)),
        ("a/./b", ("a/b", True)),
    ],
)
def test_resolve_path(given, expected):
    assert resolve_path(given, "cid") == expected


@pytest.mark.parametrize("bad", ["/a/../b", "../x", "machine.slice:libpod:abc"])
def test_resolve_path_rejects(bad):
    with pytest.raises(CgroupError, match="linux.cgroupsPath"):
        resolve_path(bad, "cid")


@pytest.mark.parametrize("shares,weight", [(0, 0), (1, 1), (2, 1), (1024, 100), (262144, 10000), (10**9, 10000)])
def test_shares_to_weight_fixed_points(shares, weight):
    assert R.cpu_shares_to_weight(shares) == weight


def test_shares_to_weight_is_monotonic():
    prev = 0
    for s in range(2, 262145, 97):
        w = R.cpu_shares_to_weight(s)
        assert 1 <= w <= 10000 and w >= prev
        prev = w


def test_blkio_weight_conversion():
    assert R.blkio_weight_to_io_weight(0) == 0
    assert R.blkio_weight_to_io_weight(10) == 1
    assert R.blkio_weight_to_io_weight(1000) == 10000
    assert R.blkio_weight_to_io_weight(500) == 1 + 490 * 9999 // 990


def test_swap_conversion():
    assert R.swap_to_v2(-1, 100) == -1
    assert R.swap_to_v2(0, -1) == -1
    assert R.swap_to_v2(0, 100) is None
    assert R.swap_to_v2(300, 100) == 200
    with pytest.raises(CgroupError, match="memory.swap.*>= memory.limit"):
        R.swap_to_v2(50, 100)
    with pytest.raises(CgroupError, match="needs a memory limit"):
        R.swap_to_v2(50, 0)


def test_page_size():
    assert R.check_page_size("2MB", "f") == "2MB"
    for bad in ("2mb", "2M", "", None, "0MB"):
        with pytest.raises(CgroupError, match="pageSize"):
            R.check_page_size(bad, "f")


def test_device_rule_normalization():
    rules = R.normalize_device_rules(
        [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "wr"},
            {"allow": True, "major": 10, "access": "m"},  # type "a" with a number: split
        ]
    )
    assert rules[0].is_everything() and rules[0].v1_line() == "a"
    assert rules[1].v1_line() == "c 1:3 rw"
    assert [r.v1_line() for r in rules[2:]] == ["b 10:* m", "c 10:* m"]


@pytest.mark.parametrize(
    "bad,field",
    [
        ([{"access": "r"}], r"devices\[0\]\.allow"),
        ([{"allow": True, "type": "x"}], r"devices\[0\]\.type"),
        ([{"allow": True, "major": "1"}], r"devices\[0\]\.major"),
        ([{"allow": True, "access": "rwx"}], r"devices\[0\]\.access"),
        ({"allow": True}, r"devices: must be an array"),
    ],
)
def test_device_rule_errors(bad, field):
    with pytest.raises(CgroupError, match=field):
        R.normalize_device_rules(bad)


def test_effective_rules_default_deny_and_allow_list():
    default_allow, rules = R.effective_device_rules([{"allow": False, "access": "rwm"}])
    assert default_allow is False
    allowed = lambda *a: R.device_allowed(default_allow, rules, *a)  # noqa: E731
    assert allowed("c", 1, 3, "rw")  # /dev/null
    assert allowed("c", 136, 7, "rwm")  # a pty
    assert allowed("b", 8, 0, "m")  # mknod of anything
    assert not allowed("b", 8, 0, "r")
    assert not allowed("c", 1, 1, "r")  # /dev/mem
    # an allow-all before the defaults: everything allowed
    default_allow, rules = R.effective_device_rules([{"allow": True, "access": "rwm"}])
    assert default_allow is True and R.device_allowed(True, rules, "c", 1, 1, "rwm")


def test_later_rules_win():
    d, rules = R.effective_device_rules(
        [
            {"allow": True, "type": "c", "major": 4, "minor": 1, "access": "rw"},
            {"allow": False, "type": "c", "major": 4, "minor": 1, "access": "w"},
        ]
    )
    assert R.device_allowed(d, rules, "c", 4, 1, "r")
    assert not R.device_allowed(d, rules, "c", 4, 1, "w")
    assert not R.device_allowed(d, rules, "c", 4, 1, "rw")


def test_cpu_list():
    assert parse_cpu_list("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert parse_cpu_list("") == []


def test_stats_prune_matches_go_omitempty():
    s = skeleton()
    s["hugetlb"]["2MB"] = {"usage": 0, "max": 0, "failcnt": 0}
    s["blkio"]["ioServiceBytesRecursive"] = [{"major": 8, "minor": 0, "op": "Read", "value": 0}]
    out = prune(s)
    assert out["cpu"]["usage"] == {"kernel": 0, "user": 0}
    assert out["cpu"]["throttling"] == {}
    assert out["memory"]["usage"] == {"limit": 0, "failcnt": 0}
    assert "raw" not in out["memory"] and "cache" not in out["memory"]
    assert out["pids"] == {}
    assert out["hugetlb"] == {"2MB": {"failcnt": 0}}
    assert out["blkio"]["ioServiceBytesRecursive"] == [{"major": 8, "op": "Read"}]
    assert out["network_interfaces"] is None and out["intel_rdt"] == {}
    assert out["cpuset"]["sched_relax_domain_level"] == 0 and "cpus" not in out["cpuset"]


# --- the eBPF device program, run by a tiny interpreter of the opcodes it uses ---


def _run_bpf(code: bytes, type_: int, access: int, major: int, minor: int) -> int:
    import struct

    ctx = struct.pack("<III", (access << 16) | type_, major, minor)
    regs = [0] * 11
    pc = 0
    n = len(code) // 8
    mask = (1 << 64) - 1
    while pc < n:
        op, regs_byte, off, imm = struct.unpack_from("<BBhi", code, pc * 8)
        dst, src = regs_byte & 0xF, regs_byte >> 4
        pc += 1
        if op == 0x61:
            assert src == 1
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif op == 0xBF:
            regs[dst] = regs[src]
        elif op == 0xB7:
            regs[dst] = imm & mask
        elif op == 0x57:
            regs[dst] &= imm & mask
        elif op == 0x77:
            regs[dst] >>= imm
        elif op == 0x55:
            pc += off if regs[dst] != (imm & mask) else 0
        elif op == 0x5D:
            pc += off if regs[dst] != regs[src] else 0
        elif op == 0x15:
            pc += off if regs[dst] == (imm & mask) else 0
        elif op == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")
    raise AssertionError("fell off the end of the program")


def test_bpf_program_matches_reference_semantics():
    import itertools
    import random
    from pyrunc.cgroups import ebpf

    rnd = random.Random(6)
    accesses = ["r", "w", "m", "rw", "rm", "wm", "rwm"]
    for _ in range(150):
        spec = [
            {
                "allow": rnd.random() < 0.5,
                "type": rnd.choice(["a", "b", "c"]),
                "major": rnd.choice([None, 1, 5, 8]),
                "minor": rnd.choice([None, 0, 3, 7]),
                "access": rnd.choice(accesses),
            }
            for _ in range(rnd.randint(0, 5))
        ]
        if rnd.random() < 0.3:
            spec.insert(rnd.randint(0, len(spec)), {"allow": rnd.random() < 0.5, "access": "rwm"})
        default_allow, rules = R.effective_device_rules(spec)
        code = ebpf.build_program(default_allow, rules)
        for t, maj, mnr, acc in itertools.product("bc", (1, 5, 8, 136), (0, 3, 7), accesses):
            want = R.device_allowed(default_allow, rules, t, maj, mnr, acc)
            bits = (2 if "r" in acc else 0) | (4 if "w" in acc else 0) | (1 if "m" in acc else 0)
            got = _run_bpf(code, 1 if t == "b" else 2, bits, maj, mnr)
            assert got == int(want), (spec, t, maj, mnr, acc)


def test_write_each_opens_a_file_once_for_consecutive_writes(tmp_path, monkeypatch):
    from pyrunc import lightos
    from pyrunc.cgroups import fs

    for name in ("devices.allow", "devices.deny"):
        (tmp_path / name).write_bytes(b"")
    opened = []
    real_open = lightos.open
    monkeypatch.setattr(lightos, "open", lambda path, flags: opened.append(path) or real_open(path, flags))
    writes = [
        ("devices.deny", "a"),
        ("devices.allow", "c 1:3 rwm"),
        ("devices.allow", "c 1:5 rwm"),
        ("devices.deny", 7),
    ]
    fs.write_each(str(tmp_path), writes, "linux.resources.devices")
    assert [p.rsplit("/", 1)[1] for p in opened] == ["devices.deny", "devices.allow", "devices.deny"]
    # one write(2) per value: on a regular file they follow each other
    assert (tmp_path / "devices.allow").read_bytes() == b"c 1:3 rwmc 1:5 rwm"
    assert (tmp_path / "devices.deny").read_bytes() == b"7"  # reopened: written from the start again
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(CgroupError, match=r"^linux.resources.devices: .*/nope does not exist"):
        fs.write_each(str(tmp_path), [("devices.allow", "a"), ("nope", "a")], "linux.resources.devices")
    assert set(os.listdir("/proc/self/fd")) == before


def test_mounts_of_call_is_read_once_per_call_and_process(monkeypatch):
    from pyrunc import cgroups
    from pyrunc.linux import procfs

    monkeypatch.setattr(cgroups, "_call_table", None)  # as in a fresh process
    first = cgroups.mounts_of_call()
    under = [
        m
        for m in procfs.mounts()
        if m["mountpoint"] == "/sys/fs/cgroup" or m["mountpoint"].startswith("/sys/fs/cgroup/")
    ]
    assert first == under  # the mounts at and under the cgroup root, nothing else
    assert cgroups.mounts_of_call() is first
    cgroups.forget_mounts()  # a new runtime call
    again = cgroups.mounts_of_call()
    assert again is not first and again == first
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # a forked stage reads its own table
        try:
            os.write(w, b"1" if cgroups.mounts_of_call() is not again else b"0")
        finally:
            os._exit(0)
    os.close(w)
    try:
        assert os.read(r, 1) == b"1"
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    # another root: read afresh, its own mounts only
    assert cgroups.mounts_of_call("/proc") == [m for m in procfs.mounts() if m["mountpoint"].startswith("/proc")]
    assert cgroups.mounts_of_call("/proc") is not cgroups.mounts_of_call("/proc")
