"""The one namespace and capability tables agree with the kernel's numbers."""

from pyrunc import capabilities, namespaces
from pyrunc.linux import syscalls


def test_namespace_flags_are_the_clone_flags():
    assert namespaces.FLAGS == {
        "pid": syscalls.CLONE_NEWPID,
        "network": syscalls.CLONE_NEWNET,
        "ipc": syscalls.CLONE_NEWIPC,
        "uts": syscalls.CLONE_NEWUTS,
        "mount": syscalls.CLONE_NEWNS,
        "user": syscalls.CLONE_NEWUSER,
        "cgroup": syscalls.CLONE_NEWCGROUP,
        "time": syscalls.CLONE_NEWTIME,
    }
    assert set(namespaces.PROC_NAMES) == set(namespaces.FLAGS)
    assert namespaces.proc_path(1, "network") == "/proc/1/ns/net"


def test_unshare_flags_only_new_namespaces():
    class NS:
        def __init__(self, type, path=""):
            self.type, self.path, self.flag = type, path, namespaces.FLAGS[type]

    nss = [NS("pid"), NS("network", "/proc/1/ns/net"), NS("mount")]
    assert namespaces.unshare_flags(nss) == syscalls.CLONE_NEWPID | syscalls.CLONE_NEWNS


def test_capability_table():
    assert capabilities.CAP_NUMBERS["CAP_SYS_ADMIN"] == 21
    assert capabilities.CAP_NAMES[40] == "CAP_CHECKPOINT_RESTORE"
    assert capabilities.mask_of([0, 5]) == 0x21
    assert capabilities.names_of_mask(0x21 | 1 << 63) == ["CAP_CHOWN", "CAP_KILL", "CAP_63"]
    assert capabilities.known_cap_count() >= 38
