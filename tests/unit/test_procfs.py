"""pyrunc.linux.procfs: one parser per kernel file (no root, no containers)."""

import os

import pytest

from pyrunc.linux import procfs

MOUNTINFO = (
    "22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    "86 64 254:0 /tmp/my\\040root /mnt/a\\011b\\012c\\134d ro,relatime shared:5 master:2 "
    "- ext4 /dev/v\\040da rw,discard\n"
    "70 87 0:41 /null /proc/keys rw,nosuid - tmpfs tmpfs rw,size=65536k\n"
    "71 87 0:42 / /weird\\040-\\040dir rw - tmpfs none\n"
    "garbage line without a separator\n"
)


def test_mountinfo_fields_optional_and_separator():
    proc, escaped, keys, weird = procfs.parse_mountinfo(MOUNTINFO)
    assert (proc["id"], proc["parent"], proc["dev"]) == (22, 1, "0:21")
    assert proc["optional"] == ["shared:12"] and proc["fstype"] == "proc"
    assert escaped["optional"] == ["shared:5", "master:2"]
    assert escaped["options"] == ["ro", "relatime"]
    assert (escaped["fstype"], escaped["super_options"]) == ("ext4", ["rw", "discard"])
    assert keys["optional"] == [] and keys["source"] == "tmpfs"
    # no super options at all is still a mount
    assert weird["mountpoint"] == "/weird - dir" and weird["super_options"] == []


def test_mountinfo_where_keeps_what_a_full_parse_would():
    everything = procfs.parse_mountinfo(MOUNTINFO)
    for keep in (lambda p: p.startswith("/proc"), lambda p: p == "/mnt/a\tb\nc\\d", lambda p: " - " in p):
        # the filter sees the unescaped mount point
        assert procfs.parse_mountinfo(MOUNTINFO, keep) == [m for m in everything if keep(m["mountpoint"])]
    assert [m["id"] for m in procfs.parse_mountinfo(MOUNTINFO, lambda p: True)] == [22, 86, 70, 71]


def test_mountinfo_unescapes_space_tab_newline_backslash():
    escaped = procfs.parse_mountinfo(MOUNTINFO)[1]
    assert escaped["root"] == "/tmp/my root"
    assert escaped["mountpoint"] == "/mnt/a\tb\nc\\d"
    assert escaped["source"] == "/dev/v da"


@pytest.mark.parametrize(
    "raw, plain",
    [
        ("plain", "plain"),
        ("a\\040b", "a b"),
        ("\\134", "\\"),
        ("end\\04", "end\\04"),
        ("\\999", "\\999"),
        ("\\", "\\"),
        ("x\\0401", "x 1"),
    ],
)
def test_unescape(raw, plain):
    assert procfs.unescape(raw) == plain


def test_own_mountinfo_has_root():
    assert any(m["mountpoint"] == "/" for m in procfs.mounts())


def test_cgroup_lines():
    text = "12:cpu,cpuacct:/user.slice\n1:name=systemd:/a:b\n0::/init.scope\n"
    assert procfs.parse_cgroup(text) == [
        ("12", "cpu,cpuacct", "/user.slice"),
        ("1", "name=systemd", "/a:b"),
        ("0", "", "/init.scope"),
    ]
    assert procfs.cgroups()  # this process is in some cgroup


def test_status_fields_and_cap_mask():
    fields = procfs.parse_status("Name:\tsh\nCapBnd:\t0000000000000005\nSeccomp:\t2\n")
    assert fields["Name"] == "sh" and fields["Seccomp"] == "2"
    assert procfs.cap_mask(fields["CapBnd"]) == {0, 2}
    assert procfs.status()["Pid"] == str(os.getpid())


@pytest.mark.parametrize(
    "text, cpus",
    [
        ("0-3,5", [0, 1, 2, 3, 5]),
        ("", []),
        ("7\n", [7]),
        ("0-3,8,10-11\n", [0, 1, 2, 3, 8, 10, 11]),
        (" 1 , 2-3 ", [1, 2, 3]),
    ],
)
def test_cpu_list(text, cpus):
    assert procfs.parse_cpu_list(text) == cpus


@pytest.mark.parametrize("text", ["3-1", "a", "0-", "-1", "0-99999999", "1,,x"])
def test_cpu_list_malformed(text):
    with pytest.raises(ValueError):
        procfs.parse_cpu_list(text)


def test_sysctl_and_cap_last_cap():
    assert procfs.sysctl_path("net.ipv4.ip_forward") == "/proc/sys/net/ipv4/ip_forward"
    last = procfs.cap_last_cap()
    assert last is None or last >= 30


def test_imports_only_what_every_command_has_loaded():
    import ast

    tree = ast.parse(open(procfs.__file__).read())
    imported = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            imported.update(a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom):
            imported.add(n.module)
    # lightos is loaded first by every command
    assert imported == {"pyrunc.lightos"}


def test_read_text_decodes_as_a_path_is(tmp_path):
    raw = b"/mnt/caf\xc3\xa9 /mnt/\xff\xfe\n"
    (tmp_path / "f").write_bytes(raw)
    text = procfs.read_text(str(tmp_path / "f"))
    assert text == os.fsdecode(raw)
    assert os.fsencode(text) == raw  # bytes that are not UTF-8 survive
