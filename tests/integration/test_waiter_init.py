"""Issue 21: a created container's init waits for `start` as the waiter
(pyrunc/waiter.py), a ~1.4 KiB program from a sealed memfd, not as a ~5 MiB
Python process; where the waiter cannot be used, the Python init waits as
before.  Seen from the host (/proc of the init, its memory) and from the
container (what the program gets)."""

import os

import pytest

from helpers import CGROUP_PREFIX, exec_done, in_cgroup_sandbox, new_id, wait_for
from pyrunc import waiter

pytestmark = [
    pytest.mark.skipif(waiter.program() is None, reason="no waiter for this architecture"),
    pytest.mark.skipif(not in_cgroup_sandbox(), reason="creates containers: run under the cgroup sandbox"),
]

REPORT = (
    "grep -E '^(Uid|Gid|Groups|CapEff|CapBnd|NoNewPrivs|Seccomp|SigIgn):' /proc/self/status; "
    "ls /proc/self/fd; echo cwd=$(pwd) umask=$(umask)"
)


def _init_pid(rt, cid):
    return rt.state_json(cid)["pid"]


def _uss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        fields = dict(line.split(":", 1) for line in f.read().splitlines()[1:])
    return sum(int(fields[k].split()[0]) for k in ("Private_Clean", "Private_Dirty"))


def _waits_as_waiter(pid):
    """Once the init waits for `start` (blocked in accept4, whichever
    waits), whether that is the waiter: the choice is made ~1-2 ms after
    `create` returned."""

    def in_accept():
        with open(f"/proc/{pid}/syscall") as f:
            return f.read().split(" ", 1)[0] == "288"  # accept4, x86_64 (the waiter's only arch)

    wait_for(in_accept)
    return os.readlink(f"/proc/{pid}/exe").startswith("/memfd:pyrunc-init")


def _output(bundle):
    path = os.path.join(bundle.shared, "out")
    wait_for(lambda: os.path.exists(path + ".done"))
    with open(path) as f:
        return f.read()


def _report_to_shared(bundle, script=REPORT):
    bundle.sh(f"({script}) > /shared/out 2>&1; touch /shared/out.done")


def test_the_created_init_is_the_waiter_and_small(rt, bundle):
    _report_to_shared(bundle)
    cid = new_id("wt")
    p = rt.create(cid, bundle)
    assert p.returncode == 0, p.stderr
    pid = _init_pid(rt, cid)
    assert _waits_as_waiter(pid)
    with open(f"/proc/{pid}/comm") as f:
        assert f.read().strip() == "pyrunc:[2:INIT]"
    assert _uss_kib(pid) <= 64, f"the waiting init's USS: {_uss_kib(pid)} KiB"
    # what it holds: stdio and the start socket, nothing of the runtime's
    fds = sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd"))
    assert fds[:3] == [0, 1, 2] and len(fds) == 4, fds
    assert os.readlink(f"/proc/{pid}/fd/{fds[3]}").startswith("socket:")
    assert rt.status(cid) == "created"
    assert rt.start(cid).returncode == 0
    out = _output(bundle)
    assert "NoNewPrivs:\t1" in out  # runc spec's config
    # no standard signal ignored (the Python init's SIGPIPE and SIGXFSZ are
    # not; 32 and up may come ignored from the caller: glibc's posix_spawn)
    sigign = next(line.split()[1] for line in out.splitlines() if line.startswith("SigIgn:"))
    assert int(sigign, 16) & 0x7FFFFFFF == 0, sigign
    assert "cwd=/ umask=0022" in out
    fd_lines = [line for line in out.splitlines() if line.isdigit()]
    assert fd_lines == ["0", "1", "2", "3"], out  # 3: ls's own


def test_thirty_created_containers_cost_little_memory(rt, make_bundle):
    """What issue 21 measures: 30 created containers alive at once, their
    inits' USS (runc's: ~1.8 MiB each)."""
    b = make_bundle("many", args=("true",))
    pids = []
    for _ in range(30):
        b.config["linux"]["cgroupsPath"] = CGROUP_PREFIX + new_id("m")
        cid = new_id("wt")
        p = rt.create(cid, b)
        assert p.returncode == 0, p.stderr
        pids.append(_init_pid(rt, cid))
    uss = sorted(_uss_kib(pid) for pid in pids)
    assert all(_waits_as_waiter(pid) for pid in pids)
    assert uss[-1] <= 64, uss


def test_a_user_and_capabilities_are_applied_before_it_waits(rt, bundle):
    """The waiter already has the process's credentials (as runc's init
    has), and it is not dumpable: its /proc files stay root's."""
    _report_to_shared(bundle)
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5]}
    bundle.config["process"]["cwd"] = "/tmp"
    cid = new_id("wt")
    assert rt.create(cid, bundle).returncode == 0
    pid = _init_pid(rt, cid)
    assert _waits_as_waiter(pid)
    with open(f"/proc/{pid}/status") as f:
        status = f.read()
    assert "Uid:\t1000\t1000\t1000\t1000" in status
    assert "CapEff:\t0000000000000000" in status
    assert os.stat(f"/proc/{pid}/fd").st_uid == 0  # not dumpable: root's, not uid 1000's
    assert rt.start(cid).returncode == 0
    out = _output(bundle)
    assert "Uid:\t1000\t1000\t1000\t1000" in out
    assert "Groups:\t5 \n" in out or "Groups:\t5\n" in out
    assert "cwd=/tmp umask=0022" in out


def test_a_process_in_the_created_container_cannot_change_the_waiter(rt, bundle):
    """CVE-2019-5736 through the created container's pid 1: its exe is a
    sealed memfd.  An exec'd process with every capability tries to write it
    through /proc/1/exe."""
    bundle.set_args("true")
    bundle.config["process"]["capabilities"] = {
        k: ["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE", "CAP_SYS_ADMIN"] for k in ("bounding", "effective", "permitted")
    }
    cid = new_id("wt")
    assert rt.create(cid, bundle).returncode == 0
    pid = _init_pid(rt, cid)
    assert _waits_as_waiter(pid)
    import fcntl

    with open(f"/proc/{pid}/exe", "rb") as f:
        before = f.read()
        seals = fcntl.fcntl(f.fileno(), fcntl.F_GET_SEALS)
    assert seals & fcntl.F_SEAL_WRITE and seals & fcntl.F_SEAL_SHRINK and seals & fcntl.F_SEAL_SEAL, hex(seals)
    p = rt(
        "exec", cid, "sh", "-c", "readlink /proc/1/exe; echo x >> /proc/1/exe; echo rc=$?; : > /proc/1/exe; echo rc=$?"
    )
    assert "/memfd:pyrunc-init" in p.stdout, p.stdout + p.stderr
    assert "rc=0" not in p.stdout, p.stdout + p.stderr
    with open(f"/proc/{pid}/exe", "rb") as f:
        assert f.read() == before
    assert rt.start(cid).returncode == 0


def test_a_failing_execve_after_start_is_reported_as_before(rt, bundle):
    with open(os.path.join(bundle.rootfs, "bad"), "wb") as f:
        f.write(b"\x00\x01 not a program")
    os.chmod(os.path.join(bundle.rootfs, "bad"), 0o755)
    bundle.set_args("/bad")
    cid = new_id("wt")
    p = rt.run(cid, bundle)
    assert p.returncode == 1
    assert p.stderr == "pyrunc: exec /bad: exec format error\n"


def test_with_start_container_hooks_the_python_init_waits(rt, bundle):
    _report_to_shared(bundle)
    bundle.config.setdefault("hooks", {})["startContainer"] = [{"path": "/bin/true"}]
    cid = new_id("wt")
    assert rt.create(cid, bundle).returncode == 0
    pid = _init_pid(rt, cid)
    assert not _waits_as_waiter(pid)
    assert rt.start(cid).returncode == 0
    assert "NoNewPrivs:\t1" in _output(bundle)


def _create_refusing(rt, bundle, names):
    """create under a filter that answers EPERM to ``names``."""
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    cid = new_id("wt")
    p = rt.create(cid, bundle)
    if p.returncode != 0 and "libseccomp" in p.stderr:
        pytest.skip(p.stderr)
    assert p.returncode == 0, p.stderr
    return cid


def test_a_filter_refusing_what_the_waiter_calls_keeps_the_python_init(rt, bundle):
    """Without no_new_privs the filter is loaded before the waiter's execve:
    one that refuses execveat (the init's exec of the waiter) leaves the
    waiting to Python, and the container runs under it."""
    _report_to_shared(bundle)
    bundle.config["process"]["noNewPrivileges"] = False
    cid = _create_refusing(rt, bundle, ["execveat", "mkdir"])
    assert not _waits_as_waiter(_init_pid(rt, cid))
    assert rt.start(cid).returncode == 0
    assert "Seccomp:\t2" in _output(bundle)


def test_a_filter_under_no_new_privs_is_loaded_by_the_waiter(rt, bundle):
    _report_to_shared(bundle, REPORT + "; mkdir /tmp/made; echo mkdir=$?")
    cid = _create_refusing(rt, bundle, ["mkdir", "mkdirat"])
    pid = _init_pid(rt, cid)
    assert _waits_as_waiter(pid)
    with open(f"/proc/{pid}/status") as f:
        assert "Seccomp:\t0" in f.read()  # loaded after `start`, right before the execve
    assert rt.start(cid).returncode == 0
    out = _output(bundle)
    assert "Seccomp:\t2" in out and "mkdir=1" in out, out


def test_when_the_waiter_cannot_be_executed_the_python_init_waits(rt, bundle):
    """The init's execveat of the waiter fails (injected): the Python init,
    with everything but the last filter applied, waits and execs; no fd of
    the waiter reaches the container."""
    _report_to_shared(bundle)
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    cid = new_id("wt")
    p = rt.create(cid, bundle, env={**os.environ, "PYRUNC_TEST_FAIL": "init:waiter-exec"})
    assert p.returncode == 0, p.stderr
    pid = _init_pid(rt, cid)
    assert not _waits_as_waiter(pid)
    assert rt.start(cid).returncode == 0
    out = _output(bundle)
    assert "Uid:\t1000\t1000\t1000\t1000" in out and "NoNewPrivs:\t1" in out
    assert [line for line in out.splitlines() if line.isdigit()] == ["0", "1", "2", "3"], out


def test_start_returns_while_the_waiter_execs(rt, bundle):
    """poststart hooks still wait for the execve (the EOF of the start
    connection, close-on-exec in the waiter)."""
    marker = os.path.join(bundle.shared, "hook")
    bundle.sh("sleep 30")
    read_comm = f"import json, sys; print(open('/proc/%d/comm' % json.load(sys.stdin)['pid']).read(), file=open({marker!r}, 'w'))"
    bundle.config.setdefault("hooks", {})["poststart"] = [
        {"path": "/usr/bin/python3", "args": ["python3", "-c", read_comm]}
    ]
    cid = new_id("wt")
    assert rt.create(cid, bundle).returncode == 0
    pid = _init_pid(rt, cid)
    assert _waits_as_waiter(pid)
    assert rt.start(cid).returncode == 0
    with open(marker) as f:
        assert f.read().strip() == "sleep"  # the hook ran after the execve
    assert exec_done(pid, "sleep")
