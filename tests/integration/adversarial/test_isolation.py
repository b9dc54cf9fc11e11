"""Isolation failures found from outside (issue 16), each played against
pyrunc and runc on the same bundle (tests/differential.py):

* the device cgroup allows only linux.resources.devices and the default
  list: a node created through linux.devices stays closed under deny-all;
* a root.path that is a symlink is refused, never followed;
* a config far larger than the stage protocol's 64 KiB message limit (big
  annotations) runs, and the state reaches the hooks whole;
* a hook that cannot be started is named, with the cause, in one line.

Every refusal is checked for leftovers: no state directory, no process.
"""

from __future__ import annotations

import json
import os
import sys

import helpers
from helpers import assert_one_error_line, new_id


def _no_leftovers(rt, cid, bundle):
    assert not os.path.exists(os.path.join(rt.root, cid))
    assert helpers.processes_rooted_under(bundle.path) == []


# -- devices --------------------------------------------------------------------


def test_linux_devices_node_is_not_allowed_by_the_device_cgroup(any_rt, bundle):
    """/dev/kmsg (c 1:11) created through linux.devices under the default
    deny-all policy: the node exists, opening it is refused by the device
    cgroup (EPERM), and the cgroup's rules do not mention 1:11."""
    bundle.config["linux"]["devices"] = [{"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o666}]
    bundle.sh(
        "stat -c '%t:%T' /dev/kmsg; (echo pyrunc-adversarial > /dev/kmsg && echo OPENED) 2>&1; "
        "cat /proc/self/cgroup | grep devices; sleep 300"
    )
    cid = new_id()
    assert any_rt.create(cid, bundle).returncode == 0
    assert any_rt.start(cid).returncode == 0
    pid = any_rt.state_json(cid)["pid"]
    for d in helpers.cgroup_dirs(bundle.cgroups_path):
        listing = os.path.join(d, "devices.list")
        if os.path.exists(listing):  # cgroup v1: the kernel's view of the rules
            rules = open(listing).read().split("\n")
            assert not [r for r in rules if r.startswith(("c 1:11", "a "))], rules
    out = helpers.wait_for(lambda: _read_out(pid))
    assert out.splitlines()[0] == "1:b"
    assert "OPENED" not in out
    assert "Operation not permitted" in out


def _read_out(pid):
    """The container's stdout (a file of the Runtime wrapper), once its
    shell reached the final ``sleep`` (which busybox sh execs in place)."""
    try:
        if not open(f"/proc/{pid}/cmdline", "rb").read().startswith(b"sleep"):
            return None
        with open(f"/proc/{pid}/fd/1") as f:
            return f.read() or None
    except OSError:
        return None


# -- root.path ------------------------------------------------------------------


def test_symlinked_root_path_is_refused(any_rt, bundle):
    os.symlink("rootfs", os.path.join(bundle.path, "rootfs-link"))
    bundle.config["root"]["path"] = "rootfs-link"
    bundle.set_args("true")
    cid = new_id()
    p = any_rt.run(cid, bundle)
    assert p.returncode == 1 if any_rt.name == "pyrunc" else p.returncode != 0
    if any_rt.name == "pyrunc":
        assert_one_error_line(p, contains="root.path")
        assert "symlink" in p.stderr
    _no_leftovers(any_rt, cid, bundle)


def test_root_path_symlink_to_host_root_is_refused(any_rt, bundle):
    os.symlink("/", os.path.join(bundle.path, "hostroot"))
    bundle.config["root"]["path"] = "hostroot"
    bundle.config["root"]["readonly"] = True
    bundle.set_args("true")
    cid = new_id()
    p = any_rt.run(cid, bundle)
    assert p.returncode != 0
    if any_rt.name == "pyrunc":
        assert_one_error_line(p, contains="root.path")
        assert "symlink" in p.stderr  # the cause, not a cgroup path
    _no_leftovers(any_rt, cid, bundle)


def test_symlink_inside_the_bundle_path_is_refused(any_rt, bundle):
    """root.path "link/rootfs" where link -> "." goes through a symlink."""
    os.symlink(".", os.path.join(bundle.path, "link"))
    bundle.config["root"]["path"] = "link/rootfs"
    bundle.set_args("true")
    cid = new_id()
    p = any_rt.run(cid, bundle)
    assert p.returncode != 0
    _no_leftovers(any_rt, cid, bundle)


# -- big configs ----------------------------------------------------------------

HOOK_PROBE = r"""
import json, sys
doc = json.load(sys.stdin)
with open(sys.argv[1], "w") as f:
    json.dump({"status": doc["status"], "pid": doc["pid"],
               "sizes": {k: len(v) for k, v in doc.get("annotations", {}).items()}}, f)
"""


def test_annotations_far_beyond_the_message_limit(any_rt, bundle, tmp_path):
    """4 MiB of annotations (the stage protocol carries 64 KiB per message):
    create, start and state work; prestart and the container-namespace
    createContainer hook get the whole state with the init's host pid."""
    big = {f"org.example.big{i}": "x" * (1 << 20) for i in range(4)}
    bundle.config["annotations"] = big
    probe = tmp_path / "probe.py"
    probe.write_text(HOOK_PROBE)
    bundle.config["hooks"] = {
        k: [{"path": sys.executable, "args": ["python3", "-I", "-S", str(probe), str(tmp_path / k)]}]
        for k in ("prestart", "createContainer")
    }
    bundle.set_args("sleep", "300")
    cid = new_id()
    p = any_rt.create(cid, bundle)
    assert p.returncode == 0, p.stderr[-500:]
    st = any_rt.state_json(cid)
    assert {k: len(v) for k, v in st["annotations"].items()} == {k: 1 << 20 for k in big}
    for kind in ("prestart", "createContainer"):
        seen = json.loads((tmp_path / kind).read_text())
        if any_rt.name == "runc" and kind == "createContainer":
            st = dict(st, pid=1)  # runc 1.1.5 gives its pid in the container's pid namespace
        assert seen == {"status": "creating", "pid": st["pid"], "sizes": {k: 1 << 20 for k in big}}, kind
    assert any_rt.start(cid).returncode == 0


def test_many_mounts_and_env_entries(any_rt, bundle):
    """A config of MiBs in other sections than annotations."""
    env = bundle.config["process"]["env"]
    env += [f"VAR{i}={'v' * 1000}" for i in range(1500)]  # execve takes ~2 MiB
    bundle.config["mounts"] += [
        {"destination": f"/tmp/m{i}", "type": "tmpfs", "source": "tmpfs", "options": ["size=4k"]} for i in range(200)
    ]
    bundle.config["root"]["readonly"] = False
    bundle.sh("grep -c ' /tmp/m' /proc/self/mountinfo; echo $VAR1499 | wc -c")
    cid = new_id()
    p = any_rt.run(cid, bundle)
    assert p.returncode == 0, p.stderr[-500:]
    assert p.stdout.split() == ["200", "1001"]


# -- hooks ----------------------------------------------------------------------


def test_hook_that_cannot_start_is_named(any_rt, bundle):
    bundle.config["hooks"] = {"prestart": [{"path": "/nonexistent/pyrunc-hook", "args": ["x"]}]}
    bundle.set_args("true")
    cid = new_id()
    p = any_rt.run(cid, bundle)
    assert p.returncode != 0
    assert "/nonexistent/pyrunc-hook" in p.stderr
    assert "no such file or directory" in p.stderr.lower()
    if any_rt.name == "pyrunc":
        assert_one_error_line(p, contains="prestart hook #0")
    _no_leftovers(any_rt, cid, bundle)
