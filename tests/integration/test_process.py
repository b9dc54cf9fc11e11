"""The container process as seen from inside: stdio, user, umask, rlimits, env, cwd, hostname."""

import os
import stat

import pytest

from helpers import new_id, runc_lacks


def run_sh(rt, bundle, script, **kw):
    cid = new_id()
    bundle.sh(script)
    p = rt.run(cid, bundle, **kw)
    assert p.returncode == 0, f"rc={p.returncode} stderr={p.stderr!r}"
    return p


# -- stdio ----------------------------------------------------------------------


def test_stdin_stdout_stderr_pass_through(rt, bundle):
    p = run_sh(rt, bundle, "cat; echo to-err >&2", input="piped input\n")
    assert p.stdout == "piped input\n"
    assert p.stderr == "to-err\n"


def test_stdio_are_the_callers_pipes(rt, bundle):
    """create hands the caller's very pipes to the container as fds 0/1/2 (no copying)."""
    cid = new_id()
    bundle.sh("for f in 0 1 2; do readlink /proc/self/fd/$f; done; cat")
    r0, w0 = os.pipe()
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    inodes = [os.fstat(fd).st_ino for fd in (r0, w1, w2)]
    try:
        p = rt.create(cid, bundle, stdin=r0, stdout=w1, stderr=w2)
        for fd in (r0, w1, w2):
            os.close(fd)
        assert p.returncode == 0
        assert rt.start(cid).returncode == 0
        os.write(w0, b"through-stdin\n")
        os.close(w0)
        with os.fdopen(r1, "rb") as f:
            out = f.read().decode()
        rt.wait_status(cid, "stopped")
    finally:
        for fd in (r0, w0, r1, w1, w2):
            try:
                os.close(fd)
            except OSError:
                pass
    err = os.read(r2, 65536)
    os.close(r2)
    assert err == b""
    lines = out.split("\n")
    assert lines[:3] == [f"pipe:[{i}]" for i in inodes]
    assert lines[3] == "through-stdin"


def test_stdout_to_file(rt, bundle, tmp_path):
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        cid = new_id()
        bundle.sh("echo into-file")
        p = rt.run(cid, bundle, stdout=f)
    assert p.returncode == 0
    assert out.read_text() == "into-file\n"


def test_dev_null_not_reowned_by_runs_as_uid_1000(rt, bundle):
    before = os.stat("/dev/null")
    with open("/dev/null", "rb") as devnull_in, open("/dev/null", "wb") as devnull_out:
        for terminal_stdio in ((devnull_in, devnull_out),):
            cid = new_id()
            bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
            bundle.sh("id -u > /shared/uid")
            p = rt.run(cid, bundle, stdin=terminal_stdio[0], stdout=terminal_stdio[1], stderr=terminal_stdio[1])
            assert p.returncode == 0
    assert open(os.path.join(bundle.shared, "uid")).read().strip() == "1000"
    after = os.stat("/dev/null")
    assert (after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode)) == (
        before.st_uid,
        before.st_gid,
        stat.S_IMODE(before.st_mode),
    )
    assert stat.S_IMODE(after.st_mode) == 0o666


def test_created_container_keeps_stdio_until_start(rt, bundle, tmp_path):
    """create hands its stdio to the init; output written after start lands there."""
    cid = new_id()
    out = tmp_path / "created-out"
    bundle.sh("echo after-start")
    with open(out, "w") as f:
        assert rt.create(cid, bundle, stdout=f).returncode == 0
    assert out.read_text() == ""
    assert rt.start(cid).returncode == 0
    rt.wait_status(cid, "stopped")
    assert out.read_text() == "after-start\n"


# -- user -------------------------------------------------------------------------


def test_user_uid_gid_additional_gids(rt, bundle):
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [5, 2000, 3000]}
    p = run_sh(rt, bundle, "id -u; id -g; id -G; grep -E '^(Uid|Gid|Groups):' /proc/self/status")
    lines = p.stdout.splitlines()
    assert lines[0] == "1000"
    assert lines[1] == "1001"
    assert sorted(int(g) for g in lines[2].split()) == [5, 1001, 2000, 3000] or sorted(
        int(g) for g in lines[2].split()
    ) == [5, 2000, 3000]
    status = {l.split(":")[0]: l.split(":")[1].split() for l in lines[3:]}
    assert status["Uid"] == ["1000"] * 4
    assert status["Gid"] == ["1001"] * 4
    assert sorted(int(g) for g in status["Groups"]) == [5, 2000, 3000]


def test_root_user_has_no_supplementary_groups_by_default(rt, bundle):
    p = run_sh(rt, bundle, "grep '^Groups:' /proc/self/status")
    assert p.stdout.split()[1:] == []


@pytest.mark.parametrize("umask,expected", [(0o022, "0022"), (0o077, "0077"), (0, "0000")])
def test_umask(rt, bundle, umask, expected):
    bundle.config["process"]["user"]["umask"] = umask
    p = run_sh(rt, bundle, "umask; touch /dev/shm/f && stat -c %a /dev/shm/f")
    out = p.stdout.split()
    assert out[0] == expected
    assert int(out[1], 8) == 0o666 & ~umask


def test_rlimits(rt, bundle):
    bundle.config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654},
        {"type": "RLIMIT_NPROC", "soft": 1111, "hard": 2222},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
    ]
    p = run_sh(rt, bundle, "cat /proc/self/limits")
    limits = {}
    for line in p.stdout.splitlines()[1:]:
        parts = line.split()
        # "Max open files  321  654  files"
        name = " ".join(x for x in parts if not x.isdigit() and x not in ("unlimited",))
        nums = [x for x in parts if x.isdigit() or x == "unlimited"]
        limits[name] = nums[:2]
    assert limits["Max open files files"] == ["321", "654"]
    assert limits["Max processes processes"] == ["1111", "2222"]
    assert limits["Max core file size bytes"] == ["0", "4096"]


def test_rlimits_unlimited_and_a_refused_one(any_rt, bundle):
    """RLIM_INFINITY as the config writes it (2^64-1), and a hard limit the
    kernel refuses (RLIMIT_NOFILE above fs.nr_open): one error line, in
    runc's words."""
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_CORE", "soft": 2**64 - 1, "hard": 2**64 - 1}]
    p = run_sh(any_rt, bundle, "ulimit -c; ulimit -Hc")
    assert p.stdout.split() == ["unlimited", "unlimited"]
    with open("/proc/sys/fs/nr_open") as f:
        too_many = int(f.read()) + 1
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 64, "hard": too_many}]
    bundle.set_args("true")
    p = any_rt.run(new_id("rlim"), bundle)
    assert p.returncode == 1, p.stderr
    assert "error setting rlimit type 7: operation not permitted" in p.stderr.splitlines()[-1], p.stderr


def test_no_new_privileges(rt, bundle):
    p = run_sh(rt, bundle, "grep NoNewPrivs /proc/self/status")
    assert p.stdout.split() == ["NoNewPrivs:", "1"]


# -- env, cwd, args -------------------------------------------------------------------


def test_env_exact(rt, bundle):
    bundle.config["process"]["env"] = ["PATH=/bin", "FOO=bar baz", "EMPTY=", "HOME=/root"]
    p = run_sh(rt, bundle, "env | sort")
    env = p.stdout.splitlines()
    assert "FOO=bar baz" in env and "EMPTY=" in env and "PATH=/bin" in env and "HOME=/root" in env
    # nothing of the caller's environment leaks in
    assert not any(l.startswith(("PYTEST", "RUNTIME=")) for l in env)


def test_cwd(rt, bundle):
    bundle.config["process"]["cwd"] = "/tmp"
    p = run_sh(rt, bundle, "pwd")
    assert p.stdout == "/tmp\n"


def test_cwd_is_created_if_missing(rt, bundle):
    bundle.config["root"]["readonly"] = False
    bundle.config["process"]["cwd"] = "/does/not/exist/yet"
    p = run_sh(rt, bundle, "pwd")
    assert p.stdout == "/does/not/exist/yet\n"


def test_args_passed_verbatim(rt, bundle):
    cid = new_id()
    bundle.set_args("/bin/echo", "a b", "", "$HOME", "*")
    p = rt.run(cid, bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "a b  $HOME *\n"


def test_args_resolved_via_path(rt, bundle):
    cid = new_id()
    bundle.config["process"]["env"] = ["PATH=/usr/bin:/bin"]
    bundle.set_args("echo", "found")
    p = rt.run(cid, bundle)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "found\n"


def test_hostname(rt, bundle):
    bundle.config["hostname"] = "box-one"
    p = run_sh(rt, bundle, "hostname; cat /proc/sys/kernel/hostname")
    assert p.stdout.split() == ["box-one", "box-one"]
    assert os.uname().nodename != "box-one"  # the host's name is untouched


@runc_lacks("domainname (added in runc 1.2)")
def test_domainname(rt, bundle):
    bundle.config["hostname"] = "box-two"
    bundle.config["domainname"] = "example.test"
    p = run_sh(rt, bundle, "hostname; cat /proc/sys/kernel/domainname")
    assert p.stdout.split() == ["box-two", "example.test"]


def test_pid_one_inside_pid_namespace(rt, bundle):
    p = run_sh(rt, bundle, "echo $$")
    assert p.stdout == "1\n"


def test_readonly_root(rt, bundle):
    p = run_sh(rt, bundle, "touch /newfile 2>/dev/null && echo writable || echo readonly")
    assert p.stdout == "readonly\n"
    bundle.config["root"]["readonly"] = False
    p = run_sh(rt, bundle, "touch /newfile 2>/dev/null && echo writable || echo readonly")
    assert p.stdout == "writable\n"


def test_default_mounts_present(rt, bundle):
    p = run_sh(rt, bundle, "cat /proc/self/mountinfo")
    mounts = {line.split()[4]: line.split(" - ")[1].split()[0] for line in p.stdout.splitlines()}
    assert mounts["/"] != ""
    assert mounts["/proc"] == "proc"
    assert mounts["/dev"] == "tmpfs"
    assert mounts["/dev/pts"] == "devpts"
    assert mounts["/dev/shm"] == "tmpfs"
    assert mounts["/dev/mqueue"] == "mqueue"
    assert mounts["/sys"] == "sysfs"
    assert "/sys/fs/cgroup" in mounts or any(m.startswith("/sys/fs/cgroup/") for m in mounts)


def test_default_devices_usable(rt, bundle):
    p = run_sh(
        rt,
        bundle,
        "echo x > /dev/null && head -c 4 /dev/zero | wc -c && "
        "head -c 4 /dev/urandom | wc -c && ls /dev/full /dev/tty /dev/random >/dev/null && echo ok",
    )
    assert p.stdout.split() == ["4", "4", "ok"]
