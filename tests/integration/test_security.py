"""Security fields of the spec applied to real containers, observed from the
host through /proc/<pid>/... (capabilities, no_new_privs, oomScoreAdj,
sysctl, personality, scheduler, ioPriority, execCPUAffinity, memoryPolicy,
seccomp through create/start/exec, LSM fields on a host without LSMs).

Every test drives the CLI (fixtures ``rt``/``bundle`` of tests/helpers.py).
"""

import json
import os
import subprocess

import pytest

from helpers import RUNTIME, assert_one_error_line, exec_done, new_id, runtime_is_pyrunc, started, wait_for

CAP = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_TIME": 25,
    "CAP_AUDIT_WRITE": 29,
}


def mask(*names):
    m = 0
    for n in names:
        m |= 1 << CAP[n]
    return m


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def caps_of(pid):
    st = status(pid)
    return {k: int(st[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def exec_detached(rt, cid, *args, extra=()):
    """``exec -d`` ``args``; return the host pid of the new process."""
    pidfile = os.path.join(rt.root, f"exec-{new_id()}.pid")
    p = rt("exec", "-d", "--pid-file", pidfile, *extra, cid, *args)
    assert p.returncode == 0, p.stderr
    with open(pidfile) as f:
        pid = int(f.read())
    os.unlink(pidfile)
    wait_for(lambda: exec_done(pid, args[0]))
    return pid


def run_out(rt, bundle, script):
    bundle.sh(script)
    p = rt.run(new_id(), bundle)
    assert p.returncode == 0, f"rc={p.returncode} stderr={p.stderr!r}"
    return p.stdout


# --- capabilities -----------------------------------------------------------
SETS = {
    "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_SETGID"],
    "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
    "effective": ["CAP_CHOWN", "CAP_KILL"],
    "inheritable": ["CAP_KILL", "CAP_CHOWN"],
    # NET_BIND_SERVICE is not inheritable: the kernel cannot raise it
    "ambient": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
}


def test_five_capability_sets_as_configured_for_a_non_root_user(rt, bundle):
    """uid 1000 and no file capabilities: execve keeps bounding, inheritable
    and ambient, and permitted = effective = ambient (capabilities(7))."""
    bundle.config["process"]["capabilities"] = SETS
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    _, pid = started(rt, bundle, "sleep", "100")
    c = caps_of(pid)
    assert c["CapBnd"] == mask(*SETS["bounding"])
    assert c["CapInh"] == mask("CAP_KILL", "CAP_CHOWN")
    assert c["CapAmb"] == mask("CAP_KILL")
    assert c["CapPrm"] == c["CapEff"] == mask("CAP_KILL")


def test_five_capability_sets_for_root(rt, bundle):
    """uid 0 under no_new_privs: execve would give root bounding|inheritable,
    but no_new_privs clamps what it gains to the permitted set the runtime
    configured, and root's effective set becomes that permitted set."""
    bundle.config["process"]["capabilities"] = SETS
    cid, pid = started(rt, bundle, "sleep", "100")
    c = caps_of(pid)
    assert c["CapBnd"] == mask(*SETS["bounding"])
    assert c["CapPrm"] == c["CapEff"] == mask(*SETS["permitted"])
    assert c["CapInh"] == mask("CAP_KILL", "CAP_CHOWN")
    assert c["CapAmb"] == mask("CAP_KILL")


def test_no_inheritable_capabilities_by_default_at_run_and_exec(rt, bundle):
    """CVE-2022-29162: the default config and `exec --cap` give CapInh 0."""
    cid, pid = started(rt, bundle, "sleep", "100")
    assert caps_of(pid)["CapInh"] == 0
    plain = exec_detached(rt, cid, "sleep", "101")
    assert caps_of(plain)["CapInh"] == 0
    added = exec_detached(rt, cid, "sleep", "102", extra=("--cap", "CAP_NET_ADMIN"))
    c = caps_of(added)
    assert c["CapInh"] == 0 and c["CapAmb"] == 0
    for k in ("CapBnd", "CapPrm", "CapEff"):
        assert c[k] & mask("CAP_NET_ADMIN"), k
    assert not caps_of(plain)["CapBnd"] & mask("CAP_NET_ADMIN")


def test_unknown_capability_is_warned_about_and_skipped(rt, bundle):
    caps = bundle.config["process"]["capabilities"]
    for k in caps:
        caps[k] = caps[k] + ["CAP_FROM_THE_FUTURE"]
    bundle.sh("grep CapBnd /proc/self/status")
    p = rt.run(new_id(), bundle)
    assert p.returncode == 0, p.stderr
    assert "CAP_FROM_THE_FUTURE" in p.stderr and "warn" in p.stderr
    assert int(p.stdout.split()[1], 16) == mask("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")


def test_ungrantable_capability_is_warned_about_and_skipped(rt, bundle):
    """A runtime whose own bounding set lacks CAP_SYS_TIME cannot grant it."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def drop_sys_time():
        libc.prctl(24, CAP["CAP_SYS_TIME"], 0, 0, 0)  # PR_CAPBSET_DROP

    caps = bundle.config["process"]["capabilities"]
    for k in ("bounding", "effective", "permitted"):
        caps[k] = caps[k] + ["CAP_SYS_TIME"]
    bundle.sh("grep -e CapBnd -e CapEff /proc/self/status")
    bundle.write()
    cid = new_id()
    rt._track(cid)
    p = subprocess.run(
        [RUNTIME, "--root", rt.root, "run", "--bundle", bundle.path, cid],
        preexec_fn=drop_sys_time,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert p.returncode == 0, p.stderr
    assert "CAP_SYS_TIME" in p.stderr
    for line in p.stdout.splitlines():
        assert not int(line.split()[1], 16) & mask("CAP_SYS_TIME"), line


# --- no_new_privs, oomScoreAdj, sysctl ----------------------------------------
@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(rt, bundle, nnp):
    bundle.config["process"]["noNewPrivileges"] = nnp
    cid, pid = started(rt, bundle, "sleep", "100")
    assert status(pid)["NoNewPrivs"] == ("1" if nnp else "0")
    assert status(exec_detached(rt, cid, "sleep", "101"))["NoNewPrivs"] == ("1" if nnp else "0")


def test_oom_score_adj_for_init_and_exec(rt, bundle):
    bundle.config["process"]["oomScoreAdj"] = 423
    cid, pid = started(rt, bundle, "sleep", "100")
    for p in (pid, exec_detached(rt, cid, "sleep", "101")):
        with open(f"/proc/{p}/oom_score_adj") as f:
            assert f.read().strip() == "423"


def test_sysctl(rt, bundle):
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}
    out = run_out(rt, bundle, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced")
    assert out.split() == ["1", "1"]


# --- personality (before seccomp) ---------------------------------------------
BLOCK_PERSONALITY = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
}


@pytest.mark.parametrize("nnp", [True, False])
def test_personality_linux32_is_set_before_seccomp(rt, bundle, nnp):
    """personality(2) happens before the filter loads: a filter denying it
    (Docker's does for most personas) does not stop the configured one."""
    bundle.config["linux"]["personality"] = {"domain": "LINUX32"}
    bundle.config["linux"]["seccomp"] = BLOCK_PERSONALITY
    bundle.config["process"]["noNewPrivileges"] = nnp
    cid, pid = started(rt, bundle, "sleep", "100")
    with open(f"/proc/{pid}/personality") as f:
        assert int(f.read(), 16) == 0x0008  # PER_LINUX32
    assert status(pid)["Seccomp"] == "2"
    p = rt("exec", cid, "uname", "-m")
    assert p.returncode == 0 and p.stdout.strip() in ("i686", "armv8l", "armv7l"), p


# --- scheduler, ioPriority, execCPUAffinity, memoryPolicy ---------------------
def sched_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the comm: state is field 3, nice is 19, policy is 41 (1-based)
    return {"nice": int(fields[16]), "policy": int(fields[38])}


@pytest.mark.parametrize(
    "sched, expect",
    [
        ({"policy": "SCHED_BATCH", "nice": 7}, {"policy": 3, "nice": 7}),
        ({"policy": "SCHED_IDLE"}, {"policy": 5, "nice": 0}),
        ({"policy": "SCHED_OTHER", "nice": -3}, {"policy": 0, "nice": -3}),
    ],
)
def test_scheduler(rt, bundle, sched, expect):
    bundle.config["process"]["scheduler"] = sched
    cid, pid = started(rt, bundle, "sleep", "100")
    assert sched_of(pid) == expect
    assert sched_of(exec_detached(rt, cid, "sleep", "101")) == expect


def ioprio_of(pid):
    return subprocess.run(["ionice", "-p", str(pid)], capture_output=True, text=True).stdout.strip()


@pytest.mark.parametrize(
    "io, expect",
    [
        ({"class": "IOPRIO_CLASS_BE", "priority": 6}, "best-effort: prio 6"),
        ({"class": "IOPRIO_CLASS_IDLE"}, "idle"),
        ({"class": "IOPRIO_CLASS_RT", "priority": 2}, "realtime: prio 2"),
    ],
)
def test_io_priority(rt, bundle, io, expect):
    bundle.config["process"]["ioPriority"] = io
    cid, pid = started(rt, bundle, "sleep", "100")
    assert ioprio_of(pid) == expect
    assert ioprio_of(exec_detached(rt, cid, "sleep", "101")) == expect


def test_exec_cpu_affinity_final(rt, bundle):
    if os.cpu_count() < 2:
        pytest.skip("needs 2 CPUs")
    cid, pid = started(rt, bundle, "sleep", "100")
    proc = dict(bundle.config["process"], args=["sleep", "101"], execCPUAffinity={"initial": "0", "final": "1"})
    path = os.path.join(bundle.path, "exec-process.json")
    with open(path, "w") as f:
        json.dump(proc, f)
    pidfile = os.path.join(bundle.path, "exec.pid")
    p = rt("exec", "-d", "--pid-file", pidfile, "--process", path, cid)
    assert p.returncode == 0, p.stderr
    epid = int(open(pidfile).read())
    wait_for(lambda: exec_done(epid, "sleep"))
    assert status(epid)["Cpus_allowed_list"] == "1"
    # not applicable to the init (spec): its affinity is the kernel's
    assert status(pid)["Cpus_allowed_list"] != "1" or os.cpu_count() == 1


@pytest.mark.skipif(not runtime_is_pyrunc, reason="traces pyrunc's own setup process")
def test_exec_cpu_affinity_initial_before_cgroup_and_final_before_exec(rt, bundle, tmp_path):
    """strace of the exec: the setup process gets the initial CPUs before it
    is written to cgroup.procs, and the final CPUs only after that."""
    if os.cpu_count() < 2:
        pytest.skip("needs 2 CPUs")
    cid, _ = started(rt, bundle, "sleep", "100")
    proc = dict(bundle.config["process"], args=["true"], execCPUAffinity={"initial": "1", "final": "0"})
    path = tmp_path / "p.json"
    path.write_text(json.dumps(proc))
    trace = tmp_path / "trace"
    p = subprocess.run(
        [
            "strace",
            "-f",
            "-qq",
            "-y",
            "-o",
            str(trace),
            "-e",
            "trace=sched_setaffinity,write,execve",
            RUNTIME,
            "--root",
            rt.root,
            "exec",
            "--process",
            str(path),
            cid,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert p.returncode == 0, p.stderr
    lines = trace.read_text().splitlines()
    initial = next(i for i, l in enumerate(lines) if "sched_setaffinity(" in l and "[1]" in l)
    # the initial call names the child's pid, from the runtime
    assert "sched_setaffinity(0," not in lines[initial]
    # the stage's join writes "0" (the runtime's own writes of its pid to
    # its own cgroup.procs warm the migration lock: cgroups/join.py)
    joined = next(i for i, l in enumerate(lines) if "cgroup.procs>" in l and "write(" in l and ', "0", 1)' in l)
    final = next(i for i, l in enumerate(lines) if "sched_setaffinity(0," in l and "[0]" in l)
    execve = max(i for i, l in enumerate(lines) if "execve(" in l and "true" in l)
    assert initial < joined < final < execve, "\n".join(lines)


@pytest.mark.parametrize(
    "policy, expect",
    [
        ({"mode": "MPOL_BIND", "nodes": "0"}, "bind:0"),
        ({"mode": "MPOL_INTERLEAVE", "nodes": "0"}, "interleave:0"),
        ({"mode": "MPOL_PREFERRED", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}, "prefer=static:0"),
        ({"mode": "MPOL_LOCAL"}, "local"),
    ],
)
def test_memory_policy(rt, bundle, policy, expect):
    if not os.path.exists("/proc/self/numa_maps"):
        pytest.skip("kernel without NUMA")
    bundle.config["linux"]["memoryPolicy"] = policy
    cid, pid = started(rt, bundle, "sleep", "100")
    with open(f"/proc/{pid}/numa_maps") as f:
        heap = [l for l in f if "heap" in l or "stack" in l]
    assert heap and all(l.split()[1] == expect for l in heap), heap


# --- seccomp through the lifecycle --------------------------------------------
DOCKER_LIKE = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
        {"names": ["unshare", "mount", "umount2", "setns", "pivot_root"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28},
        {"names": ["rmdir"], "action": "SCMP_ACT_KILL_PROCESS"},
        {"names": ["fchmodat", "chmod", "fchmodat2"], "action": "SCMP_ACT_KILL"},
    ],
}


@pytest.mark.parametrize("nnp", [True, False])
def test_seccomp_errno_and_kill_in_a_real_container(rt, bundle, nnp):
    bundle.config["linux"]["seccomp"] = DOCKER_LIKE
    bundle.config["process"]["noNewPrivileges"] = nnp
    bundle.config["process"]["capabilities"] = {
        k: ["CAP_SYS_ADMIN", "CAP_CHOWN"] for k in ("bounding", "effective", "permitted")
    }
    cid, pid = started(rt, bundle, "sleep", "100")
    assert status(pid)["Seccomp"] == "2"
    script = (
        "unshare -m true; echo unshare=$?; mount -t tmpfs t /tmp; echo mount=$?; "
        "mkdir /shared/d 2>&1; echo mkdir=$?; touch /shared/f; echo touch=$?"
    )
    p = rt("exec", cid, "sh", "-c", script)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "unshare=1" in out and "mount=255" in out or "mount=1" in out, out
    assert "No space left on device" in out and "mkdir=1" in out, out
    assert "touch=0" in out
    assert "Operation not permitted" in p.stderr
    # kill actions: the calling process (the forked applet) dies of SIGSYS,
    # the shell reports 128+31 and goes on
    p = rt("exec", cid, "sh", "-c", "rmdir /shared/x; echo rmdir=$?")
    assert p.returncode == 0 and "rmdir=159" in p.stdout and "Bad system call" in p.stderr, p
    p = rt("exec", cid, "sh", "-c", "chmod 600 /shared/f; echo chmod=$?")
    assert p.returncode == 0 and "chmod=159" in p.stdout, p
    # the filter is the exec'd process's own: a killed exec leaves pid 1 alone
    p = rt("exec", cid, "rmdir", "/shared/x")
    assert p.returncode == 159, p
    assert status(pid)["Seccomp"] == "2"


def test_seccomp_default_errno_with_allow_list_runs_a_shell(rt, bundle):
    names = [
        "read",
        "write",
        "openat",
        "open",
        "close",
        "fstat",
        "newfstatat",
        "stat",
        "lstat",
        "statx",
        "mmap",
        "munmap",
        "mprotect",
        "brk",
        "rt_sigaction",
        "rt_sigprocmask",
        "rt_sigreturn",
        "ioctl",
        "access",
        "execve",
        "exit",
        "exit_group",
        "getpid",
        "getppid",
        "getuid",
        "geteuid",
        "getgid",
        "getegid",
        "wait4",
        "clone",
        "clone3",
        "fork",
        "vfork",
        "fcntl",
        "dup2",
        "dup3",
        "getcwd",
        "chdir",
        "arch_prctl",
        "set_tid_address",
        "set_robust_list",
        "prlimit64",
        "getdents64",
        "lseek",
        "readlink",
        "uname",
        "pipe",
        "pipe2",
        "prctl",
        "capget",
        "capset",
        "setgroups",
        "setresuid",
        "setresgid",
        "close_range",
        "sched_setaffinity",
        "umask",
        "openat2",
        "fchdir",
        "getrandom",
        "rseq",
        "futex",
        "sendmsg",
        "pread64",
        "faccessat2",
        "faccessat",
        "sched_getaffinity",
        "getpgrp",
        "setpgid",
        "getpgid",
    ]
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 38,
        "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}],
    }
    bundle.sh("echo hello; hostname x; echo hostname=$?")
    p = rt.run(new_id(), bundle)
    assert p.returncode == 0, p.stderr
    assert "hello" in p.stdout and "hostname=1" in p.stdout
    assert "Function not implemented" in p.stderr


# --- AppArmor / SELinux on a host without them --------------------------------
def _lsm_enabled():
    try:
        aa = open("/sys/module/apparmor/parameters/enabled").read(1) == "Y"
    except OSError:
        aa = False
    return aa or os.path.exists("/sys/fs/selinux/enforce")


@pytest.mark.skipif(_lsm_enabled(), reason="host has AppArmor or SELinux")
@pytest.mark.parametrize(
    "where, field, value",
    [
        ("process", "apparmorProfile", "some-profile"),
        ("process", "selinuxLabel", "system_u:system_r:container_t:s0"),
        ("linux", "mountLabel", "system_u:object_r:container_file_t:s0"),
    ],
)
def test_lsm_fields_fail_cleanly_without_the_lsm(rt, bundle, where, field, value):
    """runc fails too (at the attr write or the mount); pyrunc refuses before
    creating anything, in one line naming the field."""
    bundle.config[where][field] = value
    bundle.set_args("true")
    p = rt.run(new_id(), bundle)
    line = assert_one_error_line(p, contains=field)
    assert "not" in line
    assert os.listdir(rt.root) == []


@pytest.mark.skipif(not runtime_is_pyrunc, reason="pyrunc's features document")
def test_features_report_lsms_truthfully(rt):
    p = rt("features")
    doc = json.loads(p.stdout)
    assert doc["linux"]["apparmor"]["enabled"] == (
        open("/sys/module/apparmor/parameters/enabled").read(1) == "Y"
        if os.path.exists("/sys/module/apparmor/parameters/enabled")
        else False
    )
    assert doc["linux"]["selinux"]["enabled"] == os.path.exists("/sys/fs/selinux/enforce")
