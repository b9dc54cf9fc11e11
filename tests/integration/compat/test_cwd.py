"""The process's working directory, against runc on the same bundle.

* The cwd is entered while the runtime still has its privileges: a process
  user who could not reach it (uid 1000, cwd below a 0700 root-owned
  directory) still starts in it, as with runc (``run`` and ``exec``).
* A missing cwd is created before the root filesystem becomes read-only,
  so ``root.readonly`` with a missing cwd starts (runc creates it 0755,
  owned by root).

(The CVE-2024-21626 refusal of a cwd through /proc/self/fd is
tests/integration/test_cve_runtime.py's.)

Inside: ``pwd`` and ``id -u`` of the process.  On the host: the started
process's ``/proc/<pid>/cwd`` is the very inode of the directory in the
bundle's rootfs, and the created directory exists there.
"""

import os
import stat

import pytest

from helpers import exec_done, new_id, wait_for


@pytest.fixture
def secret(bundle):
    """/secret (0700, root) /sub (0755): uid 1000 cannot search /secret."""
    sub = os.path.join(bundle.rootfs, "secret/sub")
    os.makedirs(sub)
    os.chmod(os.path.join(bundle.rootfs, "secret"), 0o700)
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    return bundle


def _same_inode(pid, host_path):
    a, b = os.stat(f"/proc/{pid}/cwd"), os.stat(host_path)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def test_user_starts_in_a_cwd_only_root_can_reach(any_rt, secret):
    secret.config["process"]["cwd"] = "/secret/sub"
    # the user really cannot get there by itself (so the test means something)
    secret.sh("pwd; id -u; cd /secret/sub 2>/dev/null && echo reachable || echo unreachable")
    p = any_rt.run(new_id(), secret)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["/secret/sub", "1000", "unreachable"]


def test_created_init_in_unreachable_cwd_seen_from_the_host(any_rt, secret):
    secret.config["process"]["cwd"] = "/secret/sub"
    secret.set_args("sleep", "1000")
    cid = new_id()
    p = any_rt.create(cid, secret)
    assert p.returncode == 0, p.stderr
    assert any_rt.start(cid).returncode == 0
    pid = any_rt.state_json(cid)["pid"]
    wait_for(lambda: exec_done(pid, "sleep"))
    assert _same_inode(pid, os.path.join(secret.rootfs, "secret/sub"))
    with open(f"/proc/{pid}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert uids == ["1000"] * 4
    # exec --cwd and exec --user into the unreachable directory
    for opts in (("--cwd", "/secret/sub"), ("--user", "1000", "--cwd", "/secret")):
        p = any_rt("exec", *opts, cid, "sh", "-c", "pwd; id -u")
        assert p.returncode == 0, (opts, p.stderr)
        assert p.stdout.split() == [opts[-1], "1000"]
    any_rt.kill(cid, "KILL")


@pytest.mark.parametrize("uid", [0, 1000])
def test_missing_cwd_with_readonly_root(any_rt, bundle, uid):
    bundle.config["root"]["readonly"] = True
    bundle.config["process"]["cwd"] = "/new/dir"
    bundle.config["process"]["user"] = {"uid": uid, "gid": uid}
    bundle.sh("pwd; touch /probe 2>/dev/null && echo writable || echo readonly")
    host_dir = os.path.join(bundle.rootfs, "new/dir")
    assert not os.path.exists(os.path.join(bundle.rootfs, "new"))
    p = any_rt.run(new_id(), bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["/new/dir", "readonly"]
    st = os.stat(host_dir)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o755
    assert (st.st_uid, st.st_gid) == (0, 0)
    assert not os.path.exists(os.path.join(bundle.rootfs, "probe"))


def test_cwd_only_the_user_can_reach_in_a_user_namespace(any_rt, userns_bundle):
    """The other way round: root of the container's user namespace cannot
    reach the cwd but the process user can.  ``exec`` tries as root, fails,
    and enters the cwd again after the user switch (runc does the same).

    ``/group-only`` is owned by host uid 5000 (unmapped: root of the user
    namespace has no CAP_DAC_OVERRIDE over it) and by the group of
    container gid 1000, mode 0070."""
    b = userns_bundle
    b.set_namespace("user")
    b.config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    b.config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    # a v1 cgroup mount inside a user namespace is not what is tested here
    b.config["mounts"] = [m for m in b.config["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    d = os.path.join(b.rootfs, "group-only")
    os.makedirs(os.path.join(d, "sub"))
    os.chown(d, 5000, 101000)
    os.chmod(d, 0o070)
    # As the init's cwd it fails in both: the init first makes sure the cwd
    # exists (it creates a missing one), as root, who may not look there.
    b.config["process"]["cwd"] = "/group-only/sub"
    b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    b.sh("pwd")
    p = any_rt.run(new_id(), b)
    assert p.returncode != 0
    assert "permission denied" in p.stderr.lower(), p.stderr
    # exec has no such step: root fails, the user gets there
    b.config["process"]["cwd"] = "/"
    b.set_args("sleep", "1000")
    cid = new_id()
    p = any_rt.create(cid, b)
    assert p.returncode == 0, p.stderr
    assert any_rt.start(cid).returncode == 0
    p = any_rt("exec", "--cwd", "/group-only/sub", cid, "sh", "-c", "pwd; id -u")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["/group-only/sub", "1000"]
    # (root with the configured gid 1000 would get in through the group)
    p = any_rt("exec", "--user", "0:0", "--cwd", "/group-only/sub", cid, "pwd")
    assert p.returncode != 0
    assert "permission denied" in p.stderr.lower(), p.stderr
    any_rt.kill(cid, "KILL")
