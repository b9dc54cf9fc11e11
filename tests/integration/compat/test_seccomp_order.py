"""A seccomp profile older than the runtime, against runc on the same bundle.

The profile allows what Docker's default profile allowed in 2019 (written
out below from that era's list) and answers everything else with EPERM:
no openat2, close_range, faccessat2, clone3, pidfd_*, rseq, io_uring, the
*_time64 calls.  Once the runtime has loaded the filter it may only make
syscalls that such a profile allows -- the id and capability switches and
execve, as runc does -- otherwise ``start`` fails with EPERM although runc
runs the same bundle.  Without noNewPrivileges the filter is loaded early
(loading it needs CAP_SYS_ADMIN, which the capability step drops), so the
whole tail of the runtime's work runs under it; with noNewPrivileges it is
the last step.  Both, for ``run`` and ``exec``.

The process runs as uid 1000 with HOME unset and a cwd that only root can
reach, so that the user switch, the passwd lookup and the cwd all happen
around the filter.  Inside: the script runs, sees only fds 0-2, is in its
cwd.  On the host: /proc/<pid>/status of the process shows the filter
(Seccomp: 2) and the expected NoNewPrivs.
"""

import os

import pytest

from helpers import exec_done, new_id, wait_for

# Docker (moby) profiles/seccomp/default.json, 2019: the unconditional
# allow list (x86 and 32-bit names included, as there).
ALLOWED_2019 = """
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown
chown32 clock_adjtime clock_getres clock_gettime clock_nanosleep close connect
copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl
epoll_ctl_old epoll_pwait epoll_wait epoll_wait_old eventfd eventfd2 execve
execveat exit exit_group faccessat fadvise64 fadvise64_64 fallocate
fanotify_mark fchdir fchmod fchmodat fchown fchown32 fchownat fcntl fcntl64
fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat fstat64
fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futimesat getcpu
getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32
getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid
getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit
get_robust_list getrusage getsid getsockname getsockopt get_thread_area gettid
gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents
io_pgetevents ioprio_get ioprio_set io_setup io_submit ipc kill lchown lchown32
lgetxattr link linkat listen listxattr llistxattr _llseek lremovexattr lseek
lsetxattr lstat lstat64 madvise memfd_create mincore mkdir mkdirat mknod
mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify
mq_open mq_timedreceive mq_timedsend mq_unlink mremap msgctl msgget msgrcv
msgsnd msync munlock munlockall munmap nanosleep newfstatat _newselect open
openat pause pipe pipe2 poll ppoll prctl pread64 preadv preadv2 prlimit64
pselect6 pwrite64 pwritev pwritev2 read readahead readlink readlinkat readv
recv recvfrom recvmmsg recvmsg remap_file_pages removexattr rename renameat
renameat2 restart_syscall rmdir rt_sigaction rt_sigpending rt_sigprocmask
rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_tgsigqueueinfo
sched_getaffinity sched_getattr sched_getparam sched_get_priority_max
sched_get_priority_min sched_getscheduler sched_rr_get_interval
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield
seccomp select semctl semget semop semtimedop send sendfile sendfile64
sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid
setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid
setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address
setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack
signalfd signalfd4 sigreturn socket socketcall socketpair splice stat stat64
statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo
tee tgkill time timer_create timer_delete timer_getoverrun timer_gettime
timer_settime timerfd_create timerfd_gettime timerfd_settime times tkill
truncate truncate64 ugetrlimit umask uname unlink unlinkat utime utimensat
utimes vfork vmsplice wait4 waitid waitpid write writev
""".split()

# Syscalls younger than the profile: none of them may be allowed.
YOUNGER = (
    "openat2",
    "close_range",
    "faccessat2",
    "clone3",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "rseq",
    "io_uring_setup",
    "mount_setattr",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsmount",
)

# Docker's conditional rules of the time, for a container without
# CAP_SYS_ADMIN: personality only for the usual personas; clone only
# without namespace flags (CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET
# |NEWCGROUP = 0x7E020000); arch_prctl and modify_ldt on amd64.
CONDITIONAL_2019 = [
    {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": v, "op": "SCMP_CMP_EQ"}]}
    for v in (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)
] + [
    {
        "names": ["clone"],
        "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": 0x7E020000, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
    },
    {"names": ["arch_prctl", "modify_ldt"], "action": "SCMP_ACT_ALLOW"},
]


def profile_2019():
    # a typo or a later edit must not let a younger syscall in (the test
    # would then pass for the wrong reason)
    allowed = set(ALLOWED_2019) | {n for r in CONDITIONAL_2019 for n in r["names"]}
    assert not set(YOUNGER) & allowed
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ALLOWED_2019, "action": "SCMP_ACT_ALLOW"}] + CONDITIONAL_2019,
    }


# The container user (1000) cannot reach its cwd by itself; HOME is unset.
SCRIPT = 'echo ran; pwd; id -u; echo "HOME=$HOME"; cd /proc/self/fd && echo fds: * ; grep ^Seccomp: /proc/self/status'
# fds: the shell's stdio, and 3, the directory its glob is reading
EXPECTED = ["ran", "/secret/sub", "1000", "HOME=/tmp", "fds:", "0", "1", "2", "3", "Seccomp:", "2"]


@pytest.fixture
def old_profile(bundle):
    os.makedirs(os.path.join(bundle.rootfs, "secret/sub"))
    os.chmod(os.path.join(bundle.rootfs, "secret"), 0o700)
    cfg = bundle.config
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["process"]["cwd"] = "/secret/sub"
    cfg["process"]["env"] = [e for e in cfg["process"]["env"] if not e.startswith("HOME=")]
    cfg["linux"]["seccomp"] = profile_2019()
    return bundle


def _status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _check_filtered(pid, nnp):
    st = _status(pid)
    assert st["Seccomp"] == "2"
    assert st["NoNewPrivs"] == ("1" if nnp else "0")
    assert st["Uid"].split() == ["1000"] * 4


@pytest.mark.parametrize("nnp", [False, True], ids=["no-nnp", "nnp"])
def test_run_under_a_2019_profile(any_rt, old_profile, nnp):
    old_profile.config["process"]["noNewPrivileges"] = nnp
    old_profile.sh(SCRIPT)
    p = any_rt.run(new_id(), old_profile)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == EXPECTED, p.stdout
    # and seen from the host: the started process carries the filter
    old_profile.set_args("sleep", "1000")
    cid = new_id()
    p = any_rt.create(cid, old_profile)
    assert p.returncode == 0, p.stderr
    p = any_rt.start(cid)
    assert p.returncode == 0, p.stderr
    pid = any_rt.state_json(cid)["pid"]
    wait_for(lambda: exec_done(pid, "sleep"))
    _check_filtered(pid, nnp)
    any_rt.kill(cid, "KILL")


@pytest.mark.parametrize("nnp", [False, True], ids=["no-nnp", "nnp"])
def test_exec_under_a_2019_profile(any_rt, old_profile, nnp):
    old_profile.config["process"]["noNewPrivileges"] = nnp
    old_profile.set_args("sleep", "1000")
    cid = new_id()
    p = any_rt.create(cid, old_profile)
    assert p.returncode == 0, p.stderr
    assert any_rt.start(cid).returncode == 0
    p = any_rt("exec", cid, "sh", "-c", SCRIPT)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == EXPECTED, p.stdout
    # exec --user 0 into the same profile: HOME from root's entry
    p = any_rt("exec", "--user", "0", cid, "sh", "-c", 'echo "$HOME"; id -u')
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["/root", "0"]
    pid_file = os.path.join(old_profile.path, "exec.pid")
    p = any_rt("exec", "-d", "--pid-file", pid_file, cid, "sleep", "999")
    assert p.returncode == 0, p.stderr
    with open(pid_file) as f:
        pid = int(f.read())
    wait_for(lambda: exec_done(pid, "sleep"))
    _check_filtered(pid, nnp)
    # an execve that fails under the filter is reported, and nothing runs
    bad = os.path.join(old_profile.rootfs, "bad")
    with open(bad, "w") as f:
        f.write("not a program\n")
    os.chmod(bad, 0o755)
    p = any_rt("exec", cid, "/bad")
    assert p.returncode != 0
    assert "exec format error" in p.stderr.lower(), p.stderr
    any_rt.kill(cid, "KILL")


@pytest.fixture
def agent(tmp_path):
    """A seccomp agent at a listenerPath: takes every listener fd it is sent
    and keeps it open (never answering: a notified syscall waits until the
    container is killed; none is made here)."""
    import socket
    import threading

    path = str(tmp_path / "agent.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    got = []

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 1 << 16, 4)
                got.extend(fds)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield path, got
    srv.shutdown(socket.SHUT_RDWR)
    srv.close()
    t.join(5)
    for fd in got:
        os.close(fd)


@pytest.mark.parametrize("nnp", [False, True], ids=["no-nnp", "nnp"])
def test_run_under_a_2019_profile_with_a_notify_rule(any_rt, old_profile, agent, nnp):
    """A notifying filter is loaded during create (the agent gets its fd
    then, as with runc), earlier than a plain one: the passwd lookup, the
    cwd and the fd marking must precede it too."""
    path, got = agent
    sc = old_profile.config["linux"]["seccomp"]
    sc["listenerPath"] = path
    sc["syscalls"].append({"names": ["acct"], "action": "SCMP_ACT_NOTIFY"})
    old_profile.config["process"]["noNewPrivileges"] = nnp
    old_profile.sh(SCRIPT)
    p = any_rt.run(new_id(), old_profile)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == EXPECTED, p.stdout
    assert len(got) == 1


# What runc's init does between loading the filter and execve, and so all
# pyrunc's init may do there; plus the memory calls the interpreter's
# allocator might need (every profile allows them; none was seen), and
# rt_sigaction: SIGPIPE and SIGXFSZ back at their default (CPython ignores
# them; runc's Go runtime sets signal handlers there too); write: the byte
# that releases `start` when the filter allows write(2) whatever its
# arguments (runc writes its exec FIFO under the filter too).  Where the
# waiter waits (pyrunc/waiter.py), the filter without no_new_privs comes
# before the init's READY (write), its close and its execveat of the waiter,
# and then the waiter's own calls: pread64, close, accept4, sendto (all in
# the 2019 list; seccomp._AFTER_LOAD is what create checks).
AFTER_FILTER = {
    "close",
    "execveat",
    "pread64",
    "accept4",
    "sendto",
    "rt_sigaction",
    "write",
    "prctl",
    "setgroups",
    "setresgid",
    "setresuid",
    "capset",
    "capget",
    "sched_setaffinity",
    "execve",
    "mmap",
    "munmap",
    "brk",
}


@pytest.mark.parametrize("nnp", [False, True], ids=["no-nnp", "nnp"])
def test_syscalls_of_the_init_after_the_filter(any_rt, old_profile, nnp):
    """strace of create (-f: the init too) through start: between its
    seccomp(2) and the execve of the program the init makes only
    AFTER_FILTER syscalls.  pyrunc only: runc's Go runtime makes syscalls of
    its own there (futex, signals, ...), which is exactly what the 2019
    profile test shows it may."""
    if any_rt.name == "runc":
        pytest.skip("runc's Go runtime adds its own syscalls; the run tests cover runc")
    import shutil
    import subprocess

    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    old_profile.config["process"]["noNewPrivileges"] = nnp
    old_profile.set_args("true")
    old_profile.write()
    cid = new_id()
    any_rt._track(cid)
    out = os.path.join(old_profile.path, "strace.out")
    argv = [any_rt.path, "--root", any_rt.root, *any_rt.global_args, "create", "--bundle", str(old_profile), cid]
    tracer = subprocess.Popen([strace, "-f", "-qq", "-o", out, *argv], stderr=subprocess.PIPE)
    try:
        # strace follows the init until it exits: it is created once its
        # pid is known and it blocks in accept4
        pid = wait_for(lambda: any_rt.state(cid).returncode == 0 and any_rt.state_json(cid).get("pid"), timeout=20)
        wait_for(lambda: any(line.startswith(f"{pid} ") and "accept4(" in line for line in open(out)), timeout=20)
        wait_for(lambda: any_rt.status(cid) == "created", timeout=20)
        assert any_rt.start(cid).returncode == 0
        tracer.wait(timeout=20)
    finally:
        if tracer.poll() is None:
            tracer.kill()
            tracer.wait()
    with open(out) as f:
        names = [
            line.split(None, 1)[1].split("(", 1)[0].strip() for line in f if line.startswith(f"{pid} ") and "(" in line
        ]
    first = names.index("seccomp")
    last = len(names) - 1 - names[::-1].index("execve")  # the program's
    after = names[first + 1 : last + 1]
    assert set(after) <= AFTER_FILTER, after
    # without no_new_privs the user and capability switches follow the filter
    assert after == ["execve"] if nnp else {"setresuid", "capset"} <= set(after), after
