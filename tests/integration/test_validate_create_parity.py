"""`pyrunc validate` gives create's verdict (issue 18): both run one
judgement, config.convert.build (schema, semantic rules, conversion with
the seccomp compilation and the resource checks, the model's rules).

Each bad config here was refused by create alone before (a check in
container.py, rootless.py, rootfs.plan, seccomp, the cgroup managers):
validate must refuse it with the very line create prints, and create must
leave nothing behind.  A good config passes both.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers import assert_one_error_line, new_id


def _proc_as_tmpfs(b):
    for m in b.config["mounts"]:
        if m["destination"] == "/proc":
            m["type"], m["source"] = "tmpfs", "tmpfs"


def _unmapped_user(b):
    b.set_namespace("user")
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 1000}]
    b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 1000}]
    b.config["process"]["user"] = {"uid": 5000, "gid": 0}


def _root_symlink(b):
    os.symlink("rootfs", os.path.join(b.path, "rootlink"))
    b.config["root"]["path"] = "rootlink"


def _notify_sendmsg(b):
    b.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/run/nowhere.sock",
        "syscalls": [{"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}],
    }


def _resources(**res):
    def change(b):
        b.config["linux"].setdefault("resources", {}).update(res)

    return change


def _mount(**m):
    def change(b):
        b.config["mounts"].append(m)

    return change


def _lo_net_device(b):
    b.set_namespace("network")
    b.config["linux"]["netDevices"] = {"eth9": {"name": "lo"}}


BAD = {
    "no-mount-namespace": (lambda b: b.drop_namespace("mount"), "no mount namespace"),
    "empty-args": (lambda b: b.set_args(), "process.args"),
    "unmapped-user": (_unmapped_user, "unmapped user"),
    "root-symlink": (_root_symlink, "symlink"),
    "proc-not-proc": (_proc_as_tmpfs, "/proc"),
    "idmap-not-bind": (_mount(destination="/t", type="tmpfs", source="tmpfs", options=["idmap"]), "idmap"),
    "seccomp-notify-sendmsg": (_notify_sendmsg, "SCMP_ACT_NOTIFY cannot be used for sendmsg"),
    "cpu-burst-over-quota": (_resources(cpu={"quota": 10000, "period": 100000, "burst": 20000}), "burst"),
    "net-device-named-lo": (_lo_net_device, "already exists in every network namespace"),
}


def _validate(rt, bundle):
    bundle.write()
    return subprocess.run([rt.path, "validate", "--bundle", bundle.path], capture_output=True, text=True)


@pytest.mark.parametrize("case", sorted(BAD))
def test_validate_refuses_what_create_refuses(rt, bundle, case):
    change, contains = BAD[case]
    change(bundle)
    v = _validate(rt, bundle)
    assert v.returncode == 1, v.stdout + v.stderr
    line = assert_one_error_line(rt.create(new_id("par"), bundle), contains=contains)
    create_msg = json.loads(line.split("msg=", 1)[1])
    assert create_msg in v.stdout.splitlines(), (create_msg, v.stdout)
    assert os.listdir(rt.root) == []


def test_validate_accepts_what_create_accepts(rt, bundle):
    bundle.config["linux"]["resources"] = {
        "cpu": {"quota": 20000, "period": 100000, "burst": 10000},
        "pids": {"limit": 50},
    }
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO"}],
    }
    v = _validate(rt, bundle)
    assert v.returncode == 0 and v.stdout.endswith(": valid\n"), v.stdout
    cid = new_id("par")
    p = rt.create(cid, bundle)
    assert p.returncode == 0, p.stderr
    rt.delete(cid, force=True)
