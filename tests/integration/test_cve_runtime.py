"""The runtime-process hazards of ../shared/notes/cves.md on real containers:
host fds (CVE-2024-21626), a dumpable runtime in container namespaces
(CVE-2016-9962), the host interpreter as an overwrite target through
/proc/<pid>/exe (CVE-2019-5736), late Python imports after entering the
rootfs (cves.md §2) and `exec -u` ids (CVE-2026-30892)."""

import errno
import glob
import hashlib
import os
import sys
import time

import pytest

from helpers import REPO, RUNTIME, exec_done, new_id, runtime_is_pyrunc, started, wait_for

pyrunc_only = pytest.mark.skipif(not runtime_is_pyrunc, reason="about pyrunc's Python process")


def fd_targets(pid):
    out = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            out[int(name)] = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            pass
    return out


# --- CVE-2024-21626: no host fd, no cwd through /proc/self/fd -----------------
def test_no_runtime_fd_reaches_the_container_process_at_start_and_exec(rt, bundle):
    cid, pid = started(rt, bundle, "sleep", "100")
    assert sorted(fd_targets(pid)) == [0, 1, 2], fd_targets(pid)
    # from inside: the shell's own fds at exec (ls adds its directory fd)
    p = rt("exec", cid, "sh", "-c", "ls /proc/$$/fd; true")
    assert p.returncode == 0, p.stderr
    assert sorted(int(x) for x in p.stdout.split()) == [0, 1, 2], p.stdout
    pidfile = os.path.join(bundle.path, "e.pid")
    assert rt("exec", "-d", "--pid-file", pidfile, cid, "sleep", "101").returncode == 0
    epid = int(open(pidfile).read())
    wait_for(lambda: exec_done(epid, "sleep"))
    assert sorted(fd_targets(epid)) == [0, 1, 2], fd_targets(epid)


def test_preserved_fds_and_nothing_else(rt, bundle, tmp_path):
    f = open(tmp_path / "kept", "w")
    try:
        bundle.sh("ls /proc/$$/fd; readlink /proc/$$/fd/3")
        p = rt.run(new_id(), bundle, "--preserve-fds", "1", fds={3: f.fileno()})
    finally:
        f.close()
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split()
    assert sorted(int(x) for x in lines[:-1]) == [0, 1, 2, 3]
    assert lines[-1].endswith("/kept")


@pytest.mark.parametrize("n", list(range(3, 16)))
def test_cwd_through_proc_self_fd_is_refused(rt, bundle, n):
    bundle.config["process"]["cwd"] = f"/proc/self/fd/{n}"
    bundle.sh("pwd; ls /")
    p = rt.run(new_id(), bundle)
    if p.returncode == 0:  # only acceptable if the cwd stayed inside the rootfs
        assert p.stdout.startswith("/") and "shared" in p.stdout, p.stdout
    else:
        assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1, p.stderr


def test_exec_cwd_symlink_to_proc_self_fd_is_refused(rt, bundle):
    os.symlink("/proc/self/fd/7", os.path.join(bundle.rootfs, "lnk"))
    cid, _ = started(rt, bundle, "sleep", "100")
    for n in (3, 4, 5, 6, 7, 8):
        for cwd in (f"/proc/self/fd/{n}", "/lnk"):
            p = rt("exec", "--cwd", cwd, cid, "pwd")
            if p.returncode == 0:
                assert p.stdout.startswith("/"), p.stdout
            else:
                assert "Traceback" not in p.stderr


# --- CVE-2016-9962: non-dumpable while in container namespaces ----------------
SCANNER = r"""
while [ ! -e /shared/stop ]; do
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = 1 ] && continue
    [ "$p" = "$$" ] && continue
    cmd=$(cat $d/cmdline 2>/dev/null | tr '\0' ' ')
    case "$cmd" in *pyrunc*|*python*)
      echo "seen $p $cmd" >> /shared/seen
      got=""
      for f in $d/fd/*; do readlink $f >/dev/null 2>&1 && got="$got fd:$f"; done
      readlink $d/exe >/dev/null 2>&1 && got="$got exe"
      cat $d/environ >/dev/null 2>&1 && got="$got environ"
      # only a leak if it was still the runtime afterwards (not the exec'd binary)
      after=$(cat $d/cmdline 2>/dev/null | tr '\0' ' ')
      case "$after" in *pyrunc*|*python*) [ -n "$got" ] && echo "$p$got" >> /shared/leak;; esac
      ;;
    esac
  done
done
"""


@pyrunc_only
def test_joining_exec_process_cannot_be_inspected_by_container_pid1(rt, bundle):
    """Container root (default capabilities, no CAP_SYS_PTRACE) scans /proc
    while exec processes join: it may see them, but never read their fds,
    exe or environment."""
    bundle.config["process"]["capabilities"] = {
        k: [
            "CAP_AUDIT_WRITE",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_DAC_OVERRIDE",
            "CAP_CHOWN",
            "CAP_FOWNER",
            "CAP_SETUID",
            "CAP_SETGID",
        ]
        for k in ("bounding", "effective", "permitted")
    }
    bundle.sh(SCANNER)
    cid = new_id()
    p = rt.create(cid, bundle)
    assert p.returncode == 0, p.stderr
    assert rt.start(cid).returncode == 0
    seen = os.path.join(bundle.shared, "seen")
    deadline = time.monotonic() + 40
    n = 0
    while time.monotonic() < deadline and not (os.path.exists(seen) and n >= 5):
        # a slow-starting process keeps the runtime in the namespaces longer
        assert rt("exec", cid, "true").returncode == 0
        n += 1
    open(os.path.join(bundle.shared, "stop"), "w").close()
    # pyrunc's exec keeps its Python stage outside the container's pid
    # namespace (only a vfork child that execs at once enters it), so the
    # scanner may see no runtime process at all; whatever it sees must not
    # leak fds, exe or environment.
    leak = os.path.join(bundle.shared, "leak")
    assert not os.path.exists(leak), open(leak).read()


@pyrunc_only
def test_created_init_is_not_inspectable_from_an_exec(rt, bundle):
    """Before start the init is the Python runtime: an exec'd process (root
    in the container, no CAP_SYS_PTRACE) cannot reach its exe or fds."""
    bundle.set_args("true")
    cid = new_id()
    assert rt.create(cid, bundle).returncode == 0
    p = rt(
        "exec",
        cid,
        "sh",
        "-c",
        "readlink /proc/1/exe; echo exe=$?; readlink /proc/1/fd/0; echo fd=$?;"
        "cat /proc/1/exe > /dev/null; echo cat=$?; cat /proc/1/environ; echo env=$?",
    )
    assert p.returncode == 0, p.stderr
    assert "exe=1" in p.stdout and "fd=1" in p.stdout and "cat=1" in p.stdout and "env=1" in p.stdout, p.stdout
    assert "python" not in p.stdout


# --- CVE-2019-5736: the host interpreter as an overwrite target ---------------
def _launcher_interpreter():
    """The interpreter the runtime's launcher names on its #! line (the
    installation's own copy, VENV/sealed/python3), or the tests' own."""
    try:
        with open(RUNTIME, "rb") as f:
            first = f.readline()
    except OSError:
        first = b""
    if first.startswith(b"#!"):
        return os.path.realpath(first[2:].split()[0].decode())
    return os.path.realpath(sys.executable)


def _host_files():
    files = [os.path.realpath(sys.executable), os.path.realpath("/usr/bin/python3"), _launcher_interpreter()]
    if not RUNTIME.endswith("python3"):
        files.append(os.path.realpath(RUNTIME))
    files += glob.glob(os.path.join(REPO, "pyrunc", "**", "*.py"), recursive=True)
    return sorted(set(files))


def _hashes():
    out = {}
    for f in _host_files():
        with open(f, "rb") as fh:
            out[f] = hashlib.sha256(fh.read()).hexdigest()
    return out


# For every process it can see whose exe is not the image's busybox, the
# hostile opener keeps that exe open (in a background sleep's fd 6), as
# CVE-2019-5736 does before reopening it for writing through /proc/self/fd
# once nothing runs it any more.  Only the host can tell whether such a
# reopen would work: inside, ETXTBSY answers first while the file is busy.
HOSTILE_OPENER = r"""
while [ ! -e /shared/stop ]; do
  for d in /proc/[0-9]*; do
    n=${d#/proc/}
    [ -e /shared/held.$n ] && continue
    (
      exec 6<$d/exe || exit
      t=$(readlink /proc/self/fd/6)
      [ "$t" = /bin/busybox ] && exit
      echo "$t" > /shared/held.$n
      exec 0</dev/null 1>/dev/null
      sleep 3600 &
    ) 2>/dev/null
  done
done
"""


def _held_exes(init_pid, rootfs):
    """{container process: what its fd 6 holds} for the opener's holders,
    seen from the host.  The image's own busybox is not a runtime exe: a
    subshell of the opener holds it for an instant before it checks and
    exits (seen under load)."""
    st = os.stat(os.path.join(rootfs, "bin", "busybox"))
    image = (st.st_dev, st.st_ino)
    pidns = os.readlink(f"/proc/{init_pid}/ns/pid")
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{name}/ns/pid") != pidns:
                continue
            target = os.readlink(f"/proc/{name}/fd/6")
            held = os.stat(f"/proc/{name}/fd/6")
        except OSError:
            continue
        if (held.st_dev, held.st_ino) == image:
            continue
        if not target.startswith(("/dev/", "pipe:", "socket:")):
            out[int(name)] = target
    return out


def _writable_if_not_busy(path):
    """Would an open for writing work once no process runs the file?  It
    would unless the file sits on a read-only mount or is a memfd sealed
    against writes (exeseal's interpreter copy, the waiter)."""
    if os.readlink(path).startswith("/memfd:"):
        return not _write_sealed(path)
    return not os.statvfs(path).f_flag & os.ST_RDONLY


def _write_sealed(path):
    import fcntl

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return bool(fcntl.fcntl(fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_WRITE)
    finally:
        os.close(fd)


def _plant_python_traps(rootfs, marker_dir="/shared"):
    """Modules at every location the host interpreter would search, if it
    ever ran (or imported) inside the rootfs."""
    names = sorted(
        set(sys.stdlib_module_names)
        | {"encodings", "pyrunc", "site", "sitecustomize", "usercustomize", "_sitebuiltins"}
    )
    dirs = set(p for p in sys.path if p.startswith("/")) | {
        f"/usr/lib/python{sys.version_info.major}.{sys.version_info.minor}",
        f"/usr/local/lib/python{sys.version_info.major}.{sys.version_info.minor}",
        REPO,
    }
    for d in dirs:
        base = os.path.join(rootfs, d.lstrip("/"))
        if d.endswith(".zip"):
            continue
        os.makedirs(base, exist_ok=True)
        for name in names:
            body = f"open('{marker_dir}/IMPORTED-{name}', 'w').write('pwned')\n"
            pkg = os.path.join(base, name)
            os.makedirs(pkg, exist_ok=True)
            with open(os.path.join(pkg, "__init__.py"), "w") as f:
                f.write(body)
    # ctypes.util.find_library would run these (cves.md §2)
    for tool in ("sbin/ldconfig", "usr/bin/gcc", "usr/bin/cc", "usr/bin/ld", "usr/bin/objdump"):
        path = os.path.join(rootfs, tool)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(f"#!/bin/sh\necho ran > {marker_dir}/RAN-{os.path.basename(tool)}\n")
        os.chmod(path, 0o755)


@pyrunc_only
def test_proc_self_exe_entrypoint_never_runs_the_host_interpreter(rt, bundle):
    """`#!/proc/self/exe` as the entry point: the interpreter the kernel finds
    must not be the host's python (it would run with the image's planted
    stdlib, and could hold /proc/self/exe for an overwrite)."""
    _plant_python_traps(bundle.rootfs)
    script = os.path.join(bundle.rootfs, "evil")
    with open(script, "w") as f:
        f.write("#!/proc/self/exe\nprint('hello from the host interpreter')\n")
    os.chmod(script, 0o755)
    before = _hashes()
    bundle.set_args("/evil")
    p = rt.run(new_id(), bundle)
    assert p.returncode != 0
    assert "hello from the host interpreter" not in p.stdout
    assert not [f for f in os.listdir(bundle.shared) if f.startswith(("IMPORTED", "RAN"))]
    assert _hashes() == before


PRIVILEGED = ["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_KILL"]


@pytest.mark.parametrize("caps", [None, PRIVILEGED], ids=["default-caps", "cap-sys-ptrace"])
def test_proc_exe_of_the_container_process_is_never_the_host_interpreter(rt, bundle, caps):
    """A hostile process in the container (with CAP_SYS_PTRACE it may open
    the exe of every process it sees, non-dumpable or not) watches the
    created init, then 30 execs (some with a terminal, whose stage forks
    into the pid namespace): no exe it reaches is writable."""
    if caps:
        bundle.config["process"]["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted")}
    with open(os.path.join(bundle.rootfs, "opener"), "w") as f:
        f.write(HOSTILE_OPENER)
    bundle.set_args("sh", "/opener")
    host = {(os.stat(f).st_dev, os.stat(f).st_ino) for f in _host_files()}
    before = _hashes()
    cid = new_id()
    assert rt.create(cid, bundle).returncode == 0
    pid = rt.state_json(cid)["pid"]
    # an opener while the init waits for start: the init is pid 1 to it
    assert rt("exec", "-d", cid, "sh", "/opener").returncode == 0
    if caps:
        wait_for(lambda: os.path.exists(os.path.join(bundle.shared, "held.1")), timeout=20)
    else:
        time.sleep(0.5)
    assert rt.start(cid).returncode == 0
    wait_for(lambda: exec_done(pid, "sh"))
    st = os.stat(f"/proc/{pid}/exe")
    assert (st.st_dev, st.st_ino) not in host
    for i in range(30):
        if i % 5 == 0:
            rt("exec", "-t", cid, "true")
        else:
            rt("exec", cid, "true")
    held = _held_exes(pid, bundle.rootfs)
    writable = {p: t for p, t in held.items() if _writable_if_not_busy(f"/proc/{p}/fd/6")}
    open(os.path.join(bundle.shared, "stop"), "w").close()
    rt.wait_status(cid, "stopped", timeout=60)
    assert not writable, writable
    if caps:
        assert held  # the waiting init (pid 1 inside) at least
    else:
        assert not held  # non-dumpable: not even opened
        assert not [f for f in os.listdir(bundle.shared) if f.startswith("held.")]
    assert _hashes() == before


@pyrunc_only
def test_runtime_processes_run_a_read_only_view_of_the_interpreter(rt, bundle, make_bundle):
    """From the host: the created init where Python waits (startContainer
    hooks: waiter.py), a foreground exec's and a foreground run's runtime
    (create, exec, run: the verbs that enter a container) run the launcher's
    interpreter's very inode (the installation's copy: no per-call copy)
    through a read-only mount, so no open of their exe can write it.  The
    waiter, where it waits, runs from a memfd sealed against writes."""
    interpreter = os.stat(_launcher_interpreter())
    bundle.set_args("sleep", "100")
    waiting = make_bundle("waiting", args=("sleep", "100"))
    wid = new_id()
    assert rt.create(wid, waiting).returncode == 0
    waiter_init = rt.state_json(wid)["pid"]
    if os.readlink(f"/proc/{waiter_init}/exe").startswith("/memfd:"):
        assert _write_sealed(f"/proc/{waiter_init}/exe")
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/true"}]}
    cid = new_id()
    assert rt.create(cid, bundle).returncode == 0
    init = rt.state_json(cid)["pid"]
    p = rt.spawn("exec", cid, "sleep", "3")
    wait_for(lambda: any(exec_done(c, "sleep") for c in _descendants(p.pid)))
    other = make_bundle("run", args=("sleep", "100"))
    other.write()
    rid = new_id()
    rt._track(rid)  # delete --force at teardown
    running = rt.spawn("run", "--bundle", str(other), rid)  # a foreground run
    wait_for(lambda: any(exec_done(c, "sleep") for c in _descendants(running.pid)))
    for pid in (init, p.pid, running.pid):
        st = os.stat(f"/proc/{pid}/exe")
        assert (st.st_dev, st.st_ino) == (interpreter.st_dev, interpreter.st_ino)
        assert os.statvfs(f"/proc/{pid}/exe").f_flag & os.ST_RDONLY, pid
        with pytest.raises(OSError) as e:
            os.close(os.open(f"/proc/{pid}/exe", os.O_WRONLY))
        assert e.value.errno in (errno.EROFS, errno.ETXTBSY)
    assert p.result().returncode == 0
    assert rt.kill(rid, "KILL").returncode == 0
    assert running.result().returncode == 137


def _descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            kids = []
        out += kids
        todo += kids
    return out


# --- no Python import after entering the rootfs -------------------------------
@pyrunc_only
def test_no_import_or_helper_runs_from_the_rootfs(rt, bundle, tmp_path):
    """Booby-trapped modules at every sys.path location and fake ldconfig /
    gcc in the image; run and exec with every feature on: no marker."""
    _plant_python_traps(bundle.rootfs)
    cfg = bundle.config
    cfg["process"].update(
        {
            "oomScoreAdj": 100,
            "scheduler": {"policy": "SCHED_BATCH", "nice": 1},
            "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
            "execCPUAffinity": {"initial": "0", "final": "0"},
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [5], "umask": 18},
            "cwd": "/tmp",
            "noNewPrivileges": True,
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 512}],
        }
    )
    cfg["process"]["capabilities"]["inheritable"] = ["CAP_KILL"]
    cfg["linux"].update(
        {
            "personality": {"domain": "LINUX"},
            "memoryPolicy": {"mode": "MPOL_LOCAL"},
            "sysctl": {"net.ipv4.ip_forward": "1"},
            "seccomp": {
                "defaultAction": "SCMP_ACT_ALLOW",
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [
                    {"names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
                    {"names": ["no_such_syscall_name"], "action": "SCMP_ACT_ERRNO"},
                ],
            },
        }
    )
    cfg["linux"]["namespaces"].append({"type": "cgroup"})
    cfg["hooks"] = {"createContainer": [{"path": "/bin/true"}], "startContainer": [{"path": "/bin/true"}]}
    cfg["process"]["terminal"] = False
    bundle.sh("sleep 100")
    cid = new_id()
    p = rt.create(cid, bundle)
    assert p.returncode == 0, p.stderr
    assert rt.start(cid).returncode == 0
    for extra in ((), ("--cap", "CAP_NET_ADMIN"), ("-u", "1:1"), ("--cwd", "/shared"), ("-t",)):
        rt("exec", *extra, cid, "true", stdin=open("/dev/null"))
    rt.kill(cid, "KILL")
    rt.wait_status(cid, "stopped")
    # create failures after pivot are import-free too
    bundle.set_args("/does-not-exist")
    rt.run(new_id(), bundle)
    bad = [f for f in os.listdir(bundle.shared) if f.startswith(("IMPORTED", "RAN"))]
    assert not bad, bad


# --- CVE-2026-30892: exec -u ids ---------------------------------------------
@pytest.mark.parametrize("spec, uid, gid", [("1", 1, 0), ("1:1", 1, 1), ("1000:0", 1000, 0), ("0:1000", 0, 1000)])
def test_exec_user_ids_are_exactly_the_request(rt, bundle, spec, uid, gid):
    cid, _ = started(rt, bundle, "sleep", "100")
    pidfile = os.path.join(bundle.path, "u.pid")
    p = rt("exec", "-d", "--pid-file", pidfile, "-u", spec, cid, "sleep", "101")
    assert p.returncode == 0, p.stderr
    epid = int(open(pidfile).read())
    wait_for(lambda: exec_done(epid, "sleep"))
    st = {}
    for line in open(f"/proc/{epid}/status"):
        k, _, v = line.partition(":")
        st[k] = v.split()
    assert st["Uid"] == [str(uid)] * 4
    assert st["Gid"] == [str(gid)] * 4
