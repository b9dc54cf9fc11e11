"""checkpoint and restore with CRIU (issue 22; docs/checkpoint.md).

The end-to-end tests need a kernel criu can run on (`criu check` passes):
`make test-checkpoint` runs them in one boot of the engines VM, pyrunc and
Debian's runc side by side on the same bundles.  Where criu is installed
but cannot run (this development host), the error-path tests run instead;
where it is missing, everything but the no-criu test is skipped.

Container stdio is /dev/null or pipes: criu cannot dump a file of the host
that the container's mount namespace cannot see (the test of a failed
checkpoint uses exactly that).
"""

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

import helpers
from helpers import Bundle, Runtime, wait_for

CRIU = shutil.which("criu") or next((p for p in ("/usr/sbin/criu", "/sbin/criu") if os.path.exists(p)), None)


def _criu_works():
    if not CRIU or os.geteuid() != 0:
        return False
    try:
        return (
            subprocess.run(
                [CRIU, "check"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=60,
            ).returncode
            == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


CRIU_WORKS = _criu_works()
needs_criu = pytest.mark.skipif(not CRIU_WORKS, reason="criu cannot run here (`criu check` fails)")
RUNC = "/usr/sbin/runc"
RUNTIMES = [helpers.RUNTIME] + ([RUNC] if os.path.exists(RUNC) and helpers.runtime_is_pyrunc else [])
CR_TIMEOUT = 300  # a dump or restore takes 10-20 s under emulation

# a counter in a shell variable (memory), appended to a file in a
# bind-mounted host directory, and a child process whose pid the container
# records.  The file holds every value: a restored counter must continue the
# sequence, whatever the timing of the checks.
COUNTER = (
    "sleep 100000 & echo $! > /shared/child; i=0; "
    "while :; do i=$((i+1)); echo $i >> /shared/count; echo tick $i; sleep 0.1; done"
)


@pytest.fixture(autouse=True)
def _no_cgroup_left():
    """Each test removes its containers' cgroups (which test leaks, not
    only that the session did)."""
    before = helpers.all_cgroup_dirs()
    yield
    left = {d for d in helpers.all_cgroup_dirs() - before if helpers.CGROUP_PREFIX in d}
    assert not left, f"cgroups left behind: {sorted(left)}"


@pytest.fixture
def bundle(tmp_path):
    """An absolute cgroupsPath: runc and pyrunc put a relative one beside
    their caller's cgroup, helpers.cgroup_dirs looks below it."""
    b = Bundle(tmp_path / "bundle")
    b.config["linux"]["cgroupsPath"] = "/" + b.config["linux"]["cgroupsPath"]
    return b


@pytest.fixture(params=RUNTIMES, ids=lambda p: os.path.basename(p))
def crt(request, root):
    d = os.path.join(root, os.path.basename(request.param))
    r = Runtime(d, path=request.param)
    yield r
    problems = r.cleanup()
    left = os.listdir(d) if os.path.isdir(d) else []
    if os.path.isdir(d) and not left:
        os.rmdir(d)  # the session's leak check wants `root` empty
    assert not problems and not left, (problems, left)


def _values(bundle):
    try:
        with open(os.path.join(bundle.shared, "count")) as f:
            lines = f.read().split("\n")
    except OSError:
        return []
    return [int(x) for x in lines[:-1]]  # the last line may be half written


def _count(bundle):
    v = _values(bundle)
    return v[-1] if v else 0


def _start_counter(rt, bundle, cid, stdout=subprocess.DEVNULL):
    bundle.sh(COUNTER)
    p = rt.run(cid, bundle, "-d", stdout=stdout, stderr=subprocess.DEVNULL)
    assert p.returncode == 0, f"run -d failed (rc {p.returncode})"
    wait_for(lambda: _count(bundle) >= 20, timeout=60)


def _checkpoint(rt, cid, img, *extra, stdout=subprocess.PIPE):
    return rt("checkpoint", "--image-path", img, "--work-path", img, *extra, cid, timeout=CR_TIMEOUT, stdout=stdout)


def _restore(rt, cid, bundle, img, *extra, stdout=subprocess.DEVNULL):
    rt._track(cid)
    return rt(
        "restore",
        "-d",
        "--bundle",
        bundle.path,
        "--image-path",
        img,
        "--work-path",
        img,
        *extra,
        cid,
        timeout=CR_TIMEOUT,
        stdout=stdout,
    )


def _log_tail(img, name):
    try:
        with open(os.path.join(img, name), errors="replace") as f:
            return "".join(f.readlines()[-15:])
    except OSError:
        return "(no log)"


def _assert_continues(bundle, seen_before, low, high):
    """The restored counter goes on from its dumped value: the first of the
    values written after the restore (the file had ``seen_before`` lines)
    lies in [low, high], and the ones after it follow one by one."""
    wait_for(lambda: len(_values(bundle)) >= seen_before + 3, timeout=60)
    new = _values(bundle)[seen_before:]
    assert low <= new[0] <= high, f"counter restarted or jumped: {new[:5]}, expected {low}..{high}"
    assert new == list(range(new[0], new[0] + len(new))), new


def _rmdir_failed(d):
    try:
        os.rmdir(d)
    except FileNotFoundError:
        pass
    except OSError:
        return True
    return False


def _assert_gone(rt, cid, cgroups_path):
    st = rt.state(cid)
    assert st.returncode != 0
    assert cgroups_path.startswith("/") and not helpers.cgroup_dirs(cgroups_path)


# --- end to end, pyrunc and runc ---------------------------------------------------
@needs_criu
def test_checkpoint_then_restore_continues_counter_and_pids(crt, bundle, tmp_path):
    cid = helpers.new_id("ck")
    img = str(tmp_path / "img")
    _start_counter(crt, bundle, cid)
    child = open(os.path.join(bundle.shared, "child")).read().strip()
    p = _checkpoint(crt, cid, img)
    assert p.returncode == 0, f"checkpoint: {p.stderr}\n{_log_tail(img, 'dump.log')}"
    # not --leave-running: the container is gone, its counter stopped
    _assert_gone(crt, cid, bundle.cgroups_path)
    seen = _values(bundle)
    time.sleep(0.5)
    assert _values(bundle) == seen == list(range(1, len(seen) + 1))
    p = _restore(crt, cid, bundle, img)
    assert p.returncode == 0, f"restore: {p.stderr}\n{_log_tail(img, 'restore.log')}"
    assert crt.status(cid) == "running"
    _assert_continues(bundle, len(seen), seen[-1] + 1, seen[-1] + 1)
    # the same pids in the container's pid namespace: the child is still there
    e = crt("exec", cid, "cat", f"/proc/{child}/cmdline")
    assert e.returncode == 0 and e.stdout.startswith("sleep"), e
    e = crt("exec", cid, "sh", "-c", "echo $PPID")  # exec joins the restored namespaces
    assert e.returncode == 0 and e.stdout.strip() == "0"
    assert helpers.cgroup_dirs(bundle.cgroups_path)
    assert crt.kill(cid, "KILL").returncode == 0
    crt.wait_status(cid, "stopped", timeout=30)
    assert crt.delete(cid).returncode == 0
    _assert_gone(crt, cid, bundle.cgroups_path)


@needs_criu
def test_leave_running_then_restore_under_new_id(crt, bundle, tmp_path):
    cid, cid2 = helpers.new_id("ck"), helpers.new_id("ck2")
    img = str(tmp_path / "img")
    _start_counter(crt, bundle, cid)
    before = _count(bundle)
    p = _checkpoint(crt, cid, img, "--leave-running")
    after = _count(bundle) + 1  # a value being written while we looked
    assert p.returncode == 0, f"checkpoint: {p.stderr}\n{_log_tail(img, 'dump.log')}"
    assert crt.status(cid) == "running"
    wait_for(lambda: _count(bundle) > after + 2, timeout=30)  # it still counts
    assert crt.delete(cid, force=True).returncode == 0
    orig_cgroup = bundle.cgroups_path
    _assert_gone(crt, cid, orig_cgroup)
    time.sleep(0.3)
    seen = len(_values(bundle))
    # a new id in its own cgroup
    bundle.config["linux"]["cgroupsPath"] = "/" + helpers.CGROUP_PREFIX + cid2
    bundle.write()
    p = _restore(crt, cid2, bundle, img)
    assert p.returncode == 0, f"restore: {p.stderr}\n{_log_tail(img, 'restore.log')}"
    assert crt.status(cid2) == "running"
    # from the dumped value (between before and after), not from the
    # original's later values nor from 0
    _assert_continues(bundle, seen, before + 1, after + 1)
    pid = crt.state_json(cid2)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        in_cgroup = f.read().strip().split(":", 2)[2]
    if crt.path == RUNC:
        # runc 1.1.5 leaves a cgroup at the original container's path
        # behind once the restored one is deleted (seen in the VM; its cg_root
        # names the v2 hierarchy "", pyrunc gives criu the default root):
        # not ours to keep.  pyrunc's restored init is in the new cgroup.
        assert crt.delete(cid2, force=True).returncode == 0
        for d in helpers.cgroup_dirs(orig_cgroup):
            wait_for(lambda: not _rmdir_failed(d), timeout=10)
    else:
        assert in_cgroup == bundle.cgroups_path, (in_cgroup, bundle.cgroups_path)
        assert crt.delete(cid2, force=True).returncode == 0
    _assert_gone(crt, cid2, bundle.cgroups_path)


@needs_criu
def test_pre_dump_then_dump_then_restore(crt, bundle, tmp_path):
    cid = helpers.new_id("ck")
    parent, img = str(tmp_path / "parent"), str(tmp_path / "img")
    _start_counter(crt, bundle, cid)
    p = _checkpoint(crt, cid, parent, "--pre-dump")
    assert p.returncode == 0, f"pre-dump: {p.stderr}\n{_log_tail(parent, 'dump.log')}"
    assert crt.status(cid) == "running"
    assert any(n.startswith("pages-") for n in os.listdir(parent))
    n0 = _count(bundle)
    wait_for(lambda: _count(bundle) > n0, timeout=30)
    p = _checkpoint(crt, cid, img, "--parent-path", "../parent")
    assert p.returncode == 0, f"dump: {p.stderr}\n{_log_tail(img, 'dump.log')}"
    assert os.path.islink(os.path.join(img, "parent"))  # the dump is incremental
    _assert_gone(crt, cid, bundle.cgroups_path)
    seen = _values(bundle)
    p = _restore(crt, cid, bundle, img)
    assert p.returncode == 0, f"restore: {p.stderr}\n{_log_tail(img, 'restore.log')}"
    _assert_continues(bundle, len(seen), seen[-1] + 1, seen[-1] + 1)
    assert crt.delete(cid, force=True).returncode == 0


@needs_criu
def test_foreground_restore_waits_and_deletes(crt, bundle, tmp_path):
    """restore without --detach: it waits for the container, returns its
    exit status (128+9 for SIGKILL) and deletes it, as run does."""
    cid = helpers.new_id("ck")
    img = str(tmp_path / "img")
    _start_counter(crt, bundle, cid)
    p = _checkpoint(crt, cid, img)
    assert p.returncode == 0, f"checkpoint: {p.stderr}\n{_log_tail(img, 'dump.log')}"
    crt._track(cid)
    sp = crt.spawn("restore", "--bundle", bundle.path, "--image-path", img, "--work-path", img, cid)
    try:
        wait_for(
            lambda: crt.state(cid).returncode == 0 and crt.status(cid) == "running", timeout=CR_TIMEOUT, interval=0.5
        )
        assert sp.proc.poll() is None  # in the foreground
        assert crt.kill(cid, "KILL").returncode == 0
        assert sp.proc.wait(timeout=60) == 137
    finally:
        if sp.proc.poll() is None:
            sp.proc.kill()
            sp.proc.wait()
    _assert_gone(crt, cid, bundle.cgroups_path)


@needs_criu
def test_stdout_pipe_is_reconnected_on_restore(crt, bundle, tmp_path):
    """The init's stdout was a pipe: restore hands criu the caller's new
    pipe in its place (descriptors.json + inherit_fd, as runc)."""
    cid = helpers.new_id("ck")
    img = str(tmp_path / "img")
    r, w = os.pipe()
    try:
        _start_counter(crt, bundle, cid, stdout=w)
    finally:
        os.close(w)
    os.set_blocking(r, False)
    p = _checkpoint(crt, cid, img)
    assert p.returncode == 0, f"checkpoint: {p.stderr}\n{_log_tail(img, 'dump.log')}"
    with open(os.path.join(img, "descriptors.json")) as f:
        assert json.load(f)[1].startswith("pipe:")
    os.close(r)
    n = _count(bundle)
    r2, w2 = os.pipe()
    try:
        p = _restore(crt, cid, bundle, img, stdout=w2)
    finally:
        os.close(w2)
    assert p.returncode == 0, f"restore: {p.stderr}\n{_log_tail(img, 'restore.log')}"
    data = b""
    deadline = time.monotonic() + 30
    while b"\n" not in data.split(b"tick ", 1)[-1] and time.monotonic() < deadline:
        chunk = os.read(r2, 4096)
        if not chunk:
            break
        data += chunk
    os.close(r2)
    ticks = [int(x.split()[1]) for x in data.decode().splitlines() if x.startswith("tick ")]
    # frozen between its two echos, the restored loop prints "tick n" first
    assert ticks and n <= ticks[0] <= n + 1, (n, data[:200])
    assert crt.delete(cid, force=True).returncode == 0


@needs_criu
def test_failed_checkpoint_leaves_container_running(crt, bundle, tmp_path):
    """stdout on a unix socket to the host and no --ext-unix-sk: criu
    refuses the dump; the container goes on as before."""
    import socket

    cid = helpers.new_id("ck")
    img = str(tmp_path / "img")
    ours, theirs = socket.socketpair()
    try:
        _start_counter(crt, bundle, cid, stdout=theirs.fileno())
    finally:
        theirs.close()
    ours.setblocking(False)
    try:  # ours stays open: the container's next "tick" would get SIGPIPE
        p = _checkpoint(crt, cid, img)
        assert p.returncode != 0
        if helpers.runtime_is_pyrunc and crt.path == helpers.RUNTIME:
            helpers.assert_one_error_line(p)
            assert "dump.log" in p.stderr
        assert crt.status(cid) == "running"
        n = _count(bundle)
        wait_for(lambda: _count(bundle) > n, timeout=30)
        assert crt.delete(cid, force=True).returncode == 0
    finally:
        ours.close()


@needs_criu
def test_failed_restore_leaves_nothing(crt, bundle, tmp_path):
    cid = helpers.new_id("ck")
    img = str(tmp_path / "img")
    _start_counter(crt, bundle, cid)
    p = _checkpoint(crt, cid, img)
    assert p.returncode == 0, f"checkpoint: {p.stderr}\n{_log_tail(img, 'dump.log')}"
    # break the image: criu cannot find the process tree
    os.unlink(os.path.join(img, "pstree.img"))
    p = _restore(crt, cid, bundle, img, stdout=subprocess.PIPE)
    assert p.returncode != 0
    if crt.path == helpers.RUNTIME and helpers.runtime_is_pyrunc:
        helpers.assert_one_error_line(p)
        assert "restore.log" in p.stderr
        assert not os.path.exists(os.path.join(crt.root, cid))
    _assert_gone(crt, cid, bundle.cgroups_path)
    assert not helpers.processes_rooted_under(bundle.path)


def _console_listener(tmp):
    import socket

    d = tempfile.mkdtemp(prefix="cs-", dir="/tmp")  # sun_path is short
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(os.path.join(d, "pty.sock"))
    srv.listen(2)
    srv.settimeout(CR_TIMEOUT)
    return d, srv


def _receive_master(srv):
    import socket

    conn, _ = srv.accept()
    with conn:
        msg, fds, _, _ = socket.recv_fds(conn, 4096, 4)
    assert len(fds) == 1, (msg, fds)
    return fds[0]


def _read_ticks(master, count, timeout=60):
    import select

    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline and len(_ticks(data.decode(errors="replace"))) < count:
        if select.select([master], [], [], 0.5)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return _ticks(data.decode(errors="replace").replace("\r", ""))


@needs_criu
def test_terminal_restored_onto_a_new_console_socket(crt, bundle, tmp_path):
    """A container with a terminal: restore --console-socket sends the new
    pty master (criu's orphan pts master); the ticker goes on on it."""
    cid = helpers.new_id("ck")
    img = str(tmp_path / "img")
    bundle.config["process"]["terminal"] = True
    bundle.sh("i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.1; done")
    d, srv = _console_listener(tmp_path)
    masters = []
    try:
        p = crt.run(
            cid,
            bundle,
            "-d",
            "--console-socket",
            srv.getsockname(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert p.returncode == 0
        masters.append(_receive_master(srv))
        before = _read_ticks(masters[0], 10)
        assert len(before) >= 10
        p = _checkpoint(crt, cid, img)
        assert p.returncode == 0, f"checkpoint: {p.stderr}\n{_log_tail(img, 'dump.log')}"
        p = _restore(crt, cid, bundle, img, "--console-socket", srv.getsockname(), stdout=subprocess.PIPE)
        assert p.returncode == 0, f"restore: {p.stderr}\n{_log_tail(img, 'restore.log')}"
        masters.append(_receive_master(srv))
        after = _read_ticks(masters[1], 3)
        assert after and after[0] > before[-1] and after == list(range(after[0], after[0] + len(after))), (
            before[-3:],
            after,
        )
        assert crt.delete(cid, force=True).returncode == 0
    finally:
        for m in masters:
            os.close(m)
        srv.close()
        shutil.rmtree(d, ignore_errors=True)


@needs_criu
def test_version_has_criu_feature_line():
    p = subprocess.run([helpers.RUNTIME, "--version"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "+CRIU" in p.stdout.splitlines()


@pytest.mark.skipif(not os.environ.get("PYRUNC_REQUIRE_CRIU"), reason="only where criu must work")
def test_criu_works_where_required():
    """make test-checkpoint: the tests above must not all skip silently."""
    assert CRIU_WORKS, f"criu ({CRIU}) cannot run here: `criu check` fails"


# --- where criu cannot run (or is missing) --------------------------------------------
@pytest.mark.skipif(
    CRIU_WORKS or not CRIU or not helpers.runtime_is_pyrunc or os.geteuid() != 0,
    reason="needs criu installed on a kernel it cannot run on",
)
def test_unusable_kernel_one_error_line_container_untouched(rt, bundle, tmp_path):
    cid = helpers.new_id("ck")
    img = str(tmp_path / "img")
    bundle.sh("while :; do sleep 1; done")
    assert rt.run(cid, bundle, "-d", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    p = rt("checkpoint", "--image-path", img, cid, timeout=CR_TIMEOUT)
    helpers.assert_one_error_line(p)
    assert "checkpoint failed" in p.stderr and os.path.join(img, "dump.log") in p.stderr, p.stderr
    assert rt.status(cid) == "running"
    v = subprocess.run([helpers.RUNTIME, "--version"], capture_output=True, text=True, timeout=60)
    assert "+CRIU" not in v.stdout


@pytest.mark.skipif(not helpers.runtime_is_pyrunc, reason="pyrunc's message")
def test_no_criu_one_error_line(rt, bundle, tmp_path):
    cid = helpers.new_id("ck")
    bundle.sh("while :; do sleep 1; done")
    assert rt.run(cid, bundle, "-d", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    p = rt("--criu", "/nonexistent/criu", "checkpoint", "--image-path", str(tmp_path / "i"), cid)
    helpers.assert_one_error_line(p)
    assert "criu not found" in p.stderr
    assert rt.status(cid) == "running"
    # restore: nothing is created either
    os.makedirs(tmp_path / "i2")
    (tmp_path / "i2" / "descriptors.json").write_text('["/dev/null","/dev/null","/dev/null"]')
    p = rt(
        "--criu",
        "/nonexistent/criu",
        "restore",
        "-d",
        "--bundle",
        bundle.path,
        "--image-path",
        str(tmp_path / "i2"),
        "other",
    )
    helpers.assert_one_error_line(p)
    assert "criu not found" in p.stderr
    assert not os.path.exists(os.path.join(rt.root, "other"))


@pytest.mark.skipif(not helpers.runtime_is_pyrunc, reason="pyrunc's message")
def test_checkpoint_refuses_created_and_bad_flags(rt, bundle, tmp_path):
    cid = helpers.new_id("ck")
    bundle.sh("true")
    assert rt.create(cid, bundle, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    p = rt("checkpoint", "--image-path", str(tmp_path / "i"), cid)
    helpers.assert_one_error_line(p)
    assert "cannot be checkpointed in created state" in p.stderr
    p = rt("checkpoint", "--manage-cgroups-mode", "bogus", cid)
    helpers.assert_one_error_line(p)
    assert "manage-cgroups-mode" in p.stderr
    p = rt("restore", "--image-path", str(tmp_path / "nothing"), "--bundle", bundle.path, "x")
    helpers.assert_one_error_line(p)
    assert "descriptors.json" in p.stderr
    assert not os.path.exists(os.path.join(rt.root, "x"))


# --- podman ---------------------------------------------------------------------------
TICKER = "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.2; done"


def _ticks(text):
    return [
        int(x.split()[1])
        for x in text.splitlines()
        if x.startswith("tick ") and x.split()[1:2] and x.split()[1].isdigit()
    ]


@needs_criu
@pytest.mark.skipif(
    not shutil.which("podman") or not helpers.runtime_is_pyrunc, reason="podman (engines image) drives pyrunc and runc"
)
@pytest.mark.parametrize("runtime", RUNTIMES, ids=lambda p: os.path.basename(p))
def test_podman_checkpoint_restore_and_export_import(runtime):
    """podman container checkpoint/restore, then --export/--import, with
    --runtime RUNTIME: the ticker's log goes on from where it was."""
    import sys
    import tempfile

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "engines"))
    import enginelib as el

    d = tempfile.mkdtemp(prefix="pyck-podman-", dir="/tmp")
    before = el.cgroup_dirs_snapshot()
    conf, storage = os.path.join(d, "containers.conf"), os.path.join(d, "storage.conf")
    with open(conf, "w") as f:
        f.write(
            '[containers]\nnetns = "none"\ndefault_ulimits = ["nofile=1024:1024"]\n'
            'log_driver = "k8s-file"\n[engine]\ncgroup_manager = "cgroupfs"\n'
            f'events_logger = "file"\nruntime_flags = ["root={d}/rt"]\n'
        )
    with open(storage, "w") as f:
        f.write(f'[storage]\ndriver = "vfs"\nrunroot = "{d}/run"\ngraphroot = "{d}/root"\n')
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": d,
        "TMPDIR": d,
        "CONTAINERS_CONF": conf,
        "CONTAINERS_STORAGE_CONF": storage,
    }
    base = [
        "podman",
        "--root",
        f"{d}/root",
        "--runroot",
        f"{d}/run",
        "--tmpdir",
        f"{d}/tmp",
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
        "--runtime",
        runtime,
    ]

    def pm(*args, ok=True, timeout=CR_TIMEOUT):
        p = subprocess.run(
            base + list(args), env=env, cwd=d, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout
        )
        if ok:
            assert p.returncode == 0, f"podman {' '.join(args)}: {p.stdout}{p.stderr}"
        return p

    def ticks(name):
        return _ticks(pm("logs", name).stdout)

    try:
        pm("import", el.build_rootfs_tar(d), "localhost/busybox-ck:latest")
        pm("run", "-d", "--name", "c1", "localhost/busybox-ck:latest", "sh", "-c", TICKER)
        wait_for(lambda: len(ticks("c1")) >= 10, timeout=60, interval=0.5)
        pm("container", "checkpoint", "c1")
        at = ticks("c1")
        assert pm("inspect", "-f", "{{.State.Status}}", "c1").stdout.strip() == "exited"
        pm("container", "restore", "c1")
        wait_for(lambda: len(ticks("c1")) >= len(at) + 5, timeout=60, interval=0.5)
        t = ticks("c1")
        assert t == list(range(1, len(t) + 1)), t  # continued: no second "tick 1"
        pm("container", "checkpoint", "--export", f"{d}/c1.tar.gz", "c1")
        last = ticks("c1")[-1]
        pm("container", "restore", "--import", f"{d}/c1.tar.gz", "--name", "c2")
        wait_for(lambda: len(ticks("c2")) >= 3, timeout=60, interval=0.5)
        t2 = ticks("c2")
        # from the dumped value on (whether or not the imported log holds the old lines)
        assert t2[-1] > last and t2 == list(range(t2[0], t2[0] + len(t2))), (last, t2)
    finally:
        pm("rm", "--all", "--force", "--time", "0", ok=False)
        pm("system", "reset", "--force", ok=False)
        el.kill_processes_mentioning(d)
        el.umount_under(d)
        el.remove_new_cgroups(before)
        shutil.rmtree(d, ignore_errors=True)


# --- the core's pieces, without criu ------------------------------------------------------
def test_failure_line_names_criu_first_error_and_log(tmp_path):
    from pyrunc import checkpoint as ck

    log = tmp_path / "dump.log"
    log.write_text(
        "(00.001) Error (criu/util.c:642): exited, status=1\n"
        "(00.002) Dumping path for 1 fd\n"
        "(00.003) Error (criu/files-reg.c:1710): Can't lookup mount=24 for fd=0 path=/x\n"
        "(00.004) Error (criu/cr-dump.c:2053): Dumping FAILED.\n"
    )
    e = ck._failure("checkpoint", {"success": False}, str(log), 1)
    assert str(e) == f"checkpoint failed: Can't lookup mount=24 for fd=0 path=/x (criu log: {log})"
    log.write_text(
        "(00.001) Error (criu/vdso.c:381): vdso: Unexpected rt vDSO area bounds\n"
        "(00.002) Error (criu/kerndat.c:1615): kerndat_vdso_fill_symtable failed\n"
    )
    e = ck._failure("restore", None, str(log))
    assert str(e).startswith(
        "restore failed: this kernel cannot run criu (vdso: Unexpected rt vDSO area bounds; see `criu check`)"
    )
    e = ck._failure("restore", {"cr_errno": 2}, str(tmp_path / "missing.log"))
    assert str(e) == f"restore failed: {os.strerror(2)} (criu log: {tmp_path / 'missing.log'})"
    e = ck._failure("restore", None, str(tmp_path / "missing.log"), 139)
    assert "criu exited unexpectedly (status 139)" in str(e)


def test_mountpoints_are_made_below_the_root_without_following_symlinks(tmp_path):
    from pyrunc import checkpoint as ck

    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "etc").symlink_to(outside)
    ck._mkpath_in_root(str(root), "/etc/hostname", True)
    assert not (outside / "hostname").exists()
    ck._mkpath_in_root(str(root), "/a/b/file", True)
    ck._mkpath_in_root(str(root), "/a/c", False)
    assert (root / "a" / "b" / "file").is_file() and (root / "a" / "c").is_dir()
    ck._mkpath_in_root(str(root), "/a/b/file", True)  # present: left as it is


def test_restored_stdio_keys(tmp_path):
    import stat
    from pyrunc import checkpoint as ck

    (tmp_path / "pyrunc-stdio.json").write_text('{"0": "file[18:4]", "2": "file[18:4]"}')
    got = ck._stdio_inherit(str(tmp_path), ["/dev/null", "pipe:[77]", "/dev/null"])
    assert got == [{"key": "pipe:[77]", "fd": 1}, {"key": "file[18:4]", "fd": 0}]
    # a slot of ours of another type than the dumped file's gives way
    null = {"key": "file[18:4]", "path": "/dev/null", "type": stat.S_IFCHR}
    (tmp_path / "pyrunc-stdio.json").write_text(json.dumps({"1": null}))
    r, w = os.pipe()
    saved = [os.dup(i) for i in (0, 1, 2)]
    opened = []
    try:
        for i in (0, 1, 2):  # none of ours is a character device
            os.dup2(w, i)
        got = ck._stdio_inherit(str(tmp_path), ["/dev/null"] * 3, opened)
    finally:
        for i, fd in enumerate(saved):
            os.dup2(fd, i)
            os.close(fd)
        os.close(r)
        os.close(w)
    assert len(opened) == 1 and got == [{"key": "file[18:4]", "fd": opened[0]}]
    assert os.path.samestat(os.fstat(opened[0]), os.stat("/dev/null"))
    os.close(opened[0])
    os.unlink(tmp_path / "pyrunc-stdio.json")  # an image of runc's: pipes only
    assert ck._stdio_inherit(str(tmp_path), ["pipe:[1]", "pipe:[2]", "x"]) == [
        {"key": "pipe:[1]", "fd": 0},
        {"key": "pipe:[2]", "fd": 1},
    ]
