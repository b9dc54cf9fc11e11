"""The container lifecycle through the CLI: create/start/state/kill/delete/run/list."""

import datetime
import json
import os
import sys
import re
import signal
import subprocess

import pytest

from helpers import RUNTIME, cgroup_dirs, new_id, pid_alive, wait_for

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def parse_rfc3339(s: str) -> datetime.datetime:
    assert RFC3339.match(s), f"not RFC 3339: {s!r}"
    s = s.replace("Z", "+00:00")
    if "." in s:  # Python < 3.11-safe: trim sub-microsecond digits
        head, rest = s.split(".", 1)
        frac = re.match(r"\d+", rest).group(0)
        s = f"{head}.{frac[:6]}{rest[len(frac) :]}"
    return datetime.datetime.fromisoformat(s)


def test_full_lifecycle_with_state_at_each_step(rt, bundle):
    cid = new_id()
    bundle.config["annotations"] = {"org.example.key": "value-1", "other": "x"}
    bundle.sh("read line < /shared/fifo; exit 0")
    fifo = os.path.join(bundle.shared, "fifo")
    os.mkfifo(fifo)
    before = datetime.datetime.now(datetime.timezone.utc)

    p = rt.create(cid, bundle)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    st = rt.state_json(cid)
    assert st["status"] == "created"
    assert st["id"] == cid
    assert isinstance(st["pid"], int) and st["pid"] > 0 and pid_alive(st["pid"])
    assert st["bundle"] == os.path.realpath(bundle.path)
    # runc >= 1.2 reports the bundle's ociVersion, older runc its own spec version
    assert re.fullmatch(r"1\.\d+\.\d+(-[\w.]+)?", st["ociVersion"]), st["ociVersion"]
    assert st["annotations"] == {"org.example.key": "value-1", "other": "x"}
    created = parse_rfc3339(st["created"])
    assert before - datetime.timedelta(seconds=2) <= created <= datetime.datetime.now(datetime.timezone.utc)
    init_pid = st["pid"]

    p = rt.start(cid)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    st = rt.state_json(cid)
    assert st["status"] == "running"
    assert st["pid"] == init_pid
    assert st["created"] == rt.state_json(cid)["created"]

    with open(fifo, "w") as f:  # let the container exit
        f.write("go\n")
    st = rt.wait_status(cid, "stopped")
    assert st["pid"] == 0
    assert st["annotations"] == {"org.example.key": "value-1", "other": "x"}
    assert not pid_alive(init_pid)

    p = rt.delete(cid)
    assert p.returncode == 0, p.stderr
    p = rt.state(cid)
    assert p.returncode == 1
    assert "does not exist" in p.stderr
    assert not cgroup_dirs(bundle.cgroups_path)
    assert os.listdir(rt.root) == []


def test_state_json_types_and_no_annotations_when_empty(rt, bundle):
    cid = new_id()
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    st = rt.state_json(cid)
    for field, typ in (
        ("ociVersion", str),
        ("id", str),
        ("pid", int),
        ("status", str),
        ("bundle", str),
        ("created", str),
    ):
        assert isinstance(st[field], typ), (field, st)
    assert st.get("annotations") in (None, {})


def test_state_of_nonexistent_container(rt):
    p = rt.state("no-such-container")
    assert p.returncode == 1
    assert "container does not exist" in p.stderr
    assert p.stdout == ""


def test_start_twice_fails(rt, bundle):
    cid = new_id()
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    assert rt.start(cid).returncode == 0
    p = rt.start(cid)
    assert p.returncode == 1
    assert p.stderr.strip()
    assert rt.status(cid) == "running"


def test_start_of_stopped_container_fails(rt, bundle):
    cid = new_id()
    bundle.set_args("true")
    assert rt.create(cid, bundle).returncode == 0
    assert rt.start(cid).returncode == 0
    rt.wait_status(cid, "stopped")
    p = rt.start(cid)
    assert p.returncode == 1
    assert rt.status(cid) == "stopped"


def test_start_nonexistent_fails(rt):
    p = rt.start("nope")
    assert p.returncode == 1
    assert "does not exist" in p.stderr


def test_create_existing_id_fails(rt, bundle):
    cid = new_id()
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    pid = rt.state_json(cid)["pid"]
    p = rt.create(cid, bundle)
    assert p.returncode == 1
    st = rt.state_json(cid)
    assert st["status"] == "created" and st["pid"] == pid


def test_delete_running_without_force_fails(rt, bundle):
    cid = new_id()
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    assert rt.start(cid).returncode == 0
    pid = rt.state_json(cid)["pid"]
    p = rt.delete(cid)
    assert p.returncode == 1
    assert p.stderr.strip()
    assert rt.status(cid) == "running" and pid_alive(pid)
    p = rt.delete(cid, force=True)
    assert p.returncode == 0, p.stderr
    assert not pid_alive(pid)
    assert rt.state(cid).returncode == 1
    assert not cgroup_dirs(bundle.cgroups_path)


def test_delete_created_without_force_succeeds(rt, bundle):
    cid = new_id()
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    pid = rt.state_json(cid)["pid"]
    p = rt.delete(cid)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: not pid_alive(pid), timeout=5)
    assert rt.state(cid).returncode == 1
    assert not cgroup_dirs(bundle.cgroups_path)
    assert os.listdir(rt.root) == []


def test_delete_force_nonexistent_exits_zero(rt):
    p = rt.delete("never-existed", force=True)
    assert p.returncode == 0, p.stderr


def test_delete_nonexistent_without_force_fails(rt):
    p = rt.delete("never-existed")
    assert p.returncode == 1
    assert "does not exist" in p.stderr


def test_delete_short_force_flag(rt, bundle):
    cid = new_id()
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    assert rt.start(cid).returncode == 0
    assert rt("delete", "-f", cid).returncode == 0
    assert rt.state(cid).returncode == 1


# -- kill ---------------------------------------------------------------------

SIG_TRAP_SCRIPT = (
    'for s in TERM HUP USR1 INT; do trap "echo $s > /shared/sig; exit 0" $s; done; '
    "echo ready > /shared/ready; while true; do sleep 0.05; done"
)


def _start_trapper(rt, bundle):
    cid = new_id()
    bundle.sh(SIG_TRAP_SCRIPT)
    assert rt.create(cid, bundle).returncode == 0
    assert rt.start(cid).returncode == 0
    wait_for(lambda: os.path.exists(os.path.join(bundle.shared, "ready")))
    return cid


def _signal_received(bundle):
    path = os.path.join(bundle.shared, "sig")
    wait_for(lambda: os.path.exists(path) and open(path).read().strip())
    return open(path).read().strip()


@pytest.mark.parametrize(
    "sig,expected", [(None, "TERM"), ("1", "HUP"), ("10", "USR1"), ("SIGINT", "INT"), ("HUP", "HUP")]
)
def test_kill_delivers_signal(rt, bundle, sig, expected):
    cid = _start_trapper(rt, bundle)
    p = rt.kill(cid, sig)
    assert p.returncode == 0, p.stderr
    assert _signal_received(bundle) == expected
    rt.wait_status(cid, "stopped")


@pytest.mark.parametrize("sig", ["KILL", "SIGKILL", "9"])
def test_kill_with_sigkill_spellings(rt, bundle, sig):
    cid = new_id()
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    assert rt.start(cid).returncode == 0
    pid = rt.state_json(cid)["pid"]
    p = rt.kill(cid, sig)
    assert p.returncode == 0, p.stderr
    st = rt.wait_status(cid, "stopped")
    assert st["pid"] == 0
    assert not pid_alive(pid)


def test_kill_created_container(rt, bundle):
    cid = new_id()
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    assert rt.kill(cid, "KILL").returncode == 0
    rt.wait_status(cid, "stopped")


def test_kill_all_reaches_every_process(rt, bundle):
    cid = new_id()
    # the init ignores TERM; only --all reaches the children
    bundle.sh("trap '' TERM; sleep 100 & sleep 100 & echo ready > /shared/ready; wait; sleep 100")
    bundle.drop_namespace("pid")  # --all matters most when there is no pid-namespace to tear down
    assert rt.create(cid, bundle).returncode == 0
    assert rt.start(cid).returncode == 0
    wait_for(lambda: os.path.exists(os.path.join(bundle.shared, "ready")))
    p = rt.kill(cid, "KILL", all=True)
    assert p.returncode == 0, p.stderr
    rt.wait_status(cid, "stopped")
    for d in cgroup_dirs(bundle.cgroups_path):
        procs = os.path.join(d, "cgroup.procs")
        if os.path.exists(procs):
            wait_for(lambda: open(procs).read().strip() == "", timeout=5)


def test_kill_short_all_flag(rt, bundle):
    cid = new_id()
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    assert rt.start(cid).returncode == 0
    assert rt("kill", "-a", cid, "9").returncode == 0
    rt.wait_status(cid, "stopped")


def test_kill_stopped_container_fails(rt, bundle):
    cid = new_id()
    bundle.set_args("true")
    assert rt.create(cid, bundle).returncode == 0
    assert rt.start(cid).returncode == 0
    rt.wait_status(cid, "stopped")
    p = rt.kill(cid, "KILL")
    assert p.returncode == 1
    assert "container not running" in p.stderr


def test_kill_nonexistent(rt):
    p = rt.kill("nope", "KILL")
    assert p.returncode == 1
    assert "does not exist" in p.stderr


def test_kill_bad_signal_name(rt, bundle):
    cid = new_id()
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    p = rt.kill(cid, "SIGNOPE")
    assert p.returncode == 1
    assert rt.status(cid) == "created"


# -- run ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "script,code", [("exit 0", 0), ("exit 3", 3), ("exit 255", 255), ("sh -c 'kill -9 $$'; exit $?", 137)]
)
def test_run_exit_code(rt, bundle, script, code):
    cid = new_id()
    bundle.sh(script)
    p = rt.run(cid, bundle)
    assert p.returncode == code, p.stderr
    assert rt.state(cid).returncode == 1, "run without --keep must delete the container"
    assert not cgroup_dirs(bundle.cgroups_path)


@pytest.mark.parametrize("sig,code", [("9", 137), ("15", 143)])
def test_run_init_killed_by_signal_exit_code(rt, bundle, sig, code):
    """The init itself dies of a signal (no pid namespace, so it may signal itself)."""
    cid = new_id()
    bundle.drop_namespace("pid")
    bundle.sh(f"kill -{sig} $$; sleep 5; exit 0")
    p = rt.run(cid, bundle)
    assert p.returncode == code, p.stderr
    assert rt.state(cid).returncode == 1


def test_run_killed_from_outside_exit_code(rt, bundle):
    cid = new_id()
    bundle.sh("echo ready > /shared/ready; sleep 100")
    bundle.write()
    proc = rt.spawn("run", "--bundle", bundle.path, cid)
    rt._track(cid)
    try:
        wait_for(lambda: os.path.exists(os.path.join(bundle.shared, "ready")))
        assert rt.kill(cid, "KILL").returncode == 0
        assert proc.result(timeout=10).returncode == 137
    finally:
        proc.kill()


def test_run_output_and_cleanup(rt, bundle):
    cid = new_id()
    bundle.sh("echo out; echo err >&2")
    p = rt.run(cid, bundle)
    assert p.returncode == 0
    assert p.stdout == "out\n"
    assert p.stderr == "err\n"
    assert os.listdir(rt.root) == []


def test_run_keep_leaves_stopped_container(rt, bundle):
    cid = new_id()
    bundle.sh("exit 7")
    p = rt.run(cid, bundle, "--keep")
    assert p.returncode == 7, p.stderr
    st = rt.state_json(cid)
    assert st["status"] == "stopped"
    assert st["pid"] == 0
    assert rt.delete(cid).returncode == 0
    assert rt.state(cid).returncode == 1
    assert not cgroup_dirs(bundle.cgroups_path)


def test_run_detached_with_pid_file(rt, bundle, tmp_path):
    cid = new_id()
    bundle.set_args("sleep", "100")
    pidfile = tmp_path / "init.pid"
    p = rt.run(cid, bundle, "-d", "--pid-file", str(pidfile), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert p.returncode == 0
    st = rt.state_json(cid)
    assert st["status"] == "running"
    content = pidfile.read_text()
    assert re.fullmatch(r"[1-9][0-9]*", content), repr(content)
    assert int(content) == st["pid"]
    assert rt.kill(cid, "KILL").returncode == 0
    rt.wait_status(cid, "stopped")


def test_run_forwards_signals(rt, bundle):
    """Foreground run forwards SIGTERM to the container and returns its status."""
    cid = new_id()
    bundle.sh("trap 'exit 42' TERM; echo ready > /shared/ready; while true; do sleep 0.05; done")
    bundle.write()
    proc = rt.spawn("run", "--bundle", bundle.path, cid)
    rt._track(cid)
    try:
        wait_for(lambda: os.path.exists(os.path.join(bundle.shared, "ready")))
        proc.send_signal(signal.SIGTERM)
        assert proc.result(timeout=10).returncode == 42
    finally:
        proc.kill()


# -- pid file -------------------------------------------------------------------


def test_create_pid_file_format(rt, bundle, tmp_path):
    cid = new_id()
    bundle.set_args("sleep", "100")
    pidfile = tmp_path / "sub" / "x.pid"
    pidfile.parent.mkdir()
    p = rt.create(cid, bundle, "--pid-file", str(pidfile))
    assert p.returncode == 0, p.stderr
    raw = pidfile.read_bytes()
    assert re.fullmatch(rb"[1-9][0-9]*", raw), f"pid file must be decimal without newline: {raw!r}"
    assert int(raw) == rt.state_json(cid)["pid"]
    assert sorted(os.listdir(pidfile.parent)) == ["x.pid"], "no temp files next to the pid file"


def test_relative_pid_file_is_relative_to_cwd(rt, bundle, tmp_path):
    cid = new_id()
    bundle.set_args("sleep", "100")
    bundle.write()
    p = rt("create", "--bundle", bundle.path, "--pid-file", "rel.pid", cid, cwd=str(tmp_path))
    rt._track(cid)
    assert p.returncode == 0, p.stderr
    assert int((tmp_path / "rel.pid").read_text()) == rt.state_json(cid)["pid"]


# -- bundle flags ---------------------------------------------------------------


def test_bundle_defaults_to_cwd(rt, bundle):
    cid = new_id()
    bundle.sh("exit 5")
    bundle.write()
    p = rt("run", cid, cwd=bundle.path)
    rt._track(cid)
    assert p.returncode == 5, p.stderr


def test_short_bundle_flag_and_equals_form(rt, bundle):
    cid = new_id()
    bundle.sh("exit 4")
    bundle.write()
    rt._track(cid)
    assert rt("run", "-b", bundle.path, cid).returncode == 4
    cid2 = new_id()
    rt._track(cid2)
    assert rt("run", f"--bundle={bundle.path}", cid2).returncode == 4


def test_config_edit_after_create_has_no_effect(rt, bundle):
    cid = new_id()
    bundle.sh("echo original > /shared/out")
    assert rt.create(cid, bundle).returncode == 0
    bundle.sh("echo edited > /shared/out")
    bundle.write()
    assert rt.start(cid).returncode == 0
    rt.wait_status(cid, "stopped")
    assert open(os.path.join(bundle.shared, "out")).read() == "original\n"


# -- list -----------------------------------------------------------------------


def test_list_empty(rt):
    p = rt.list("--format", "json")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "null"
    p = rt.list("-q")
    assert p.returncode == 0
    assert p.stdout == ""
    p = rt.list()
    assert p.returncode == 0
    assert p.stdout.split()[:2] == ["ID", "PID"]


def test_list_shows_containers(rt, bundle, make_bundle):
    a, b = new_id("a"), new_id("b")
    bundle.set_args("sleep", "100")
    other = make_bundle("other", args=("sleep", "100"))
    assert rt.create(a, bundle).returncode == 0
    assert rt.create(b, other).returncode == 0
    assert rt.start(b).returncode == 0
    p = rt.list("-q")
    assert p.returncode == 0
    assert sorted(p.stdout.split("\n")[:-1]) == sorted([a, b])
    for fmt_args in (("--format", "json"), ("-f", "json"), ("--format=json",)):
        p = rt.list(*fmt_args)
        assert p.returncode == 0, p.stderr
        items = json.loads(p.stdout)
        by_id = {i["id"]: i for i in items}
        assert set(by_id) == {a, b}
        assert by_id[a]["status"] == "created"
        assert by_id[b]["status"] == "running"
        assert by_id[b]["pid"] == rt.state_json(b)["pid"]
        assert by_id[a]["bundle"] == os.path.realpath(bundle.path)
        parse_rfc3339(by_id[a]["created"])
    table = rt.list().stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "PID", "STATUS"]
    assert {line.split()[0] for line in table[1:]} == {a, b}


# -- concurrency ----------------------------------------------------------------


def test_concurrent_create_same_id_exactly_one_wins(rt, bundle):
    cid = new_id()
    bundle.set_args("sleep", "100")
    bundle.write()
    rt._track(cid)
    procs = [rt.spawn("create", "--bundle", bundle.path, cid) for _ in range(20)]
    results = [(r.returncode, r.stderr) for r in (p.result(timeout=60) for p in procs)]
    winners = [r for r in results if r[0] == 0]
    assert len(winners) == 1, results
    for rc, err in results:
        if rc != 0:
            assert rc == 1 and "Traceback" not in err, err
    st = rt.state_json(cid)
    assert st["status"] == "created"
    assert rt.start(cid).returncode == 0
    assert rt.status(cid) == "running"


def test_concurrent_lifecycle_commands_do_not_corrupt_state(rt, bundle):
    cid = new_id()
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    procs = [("state", rt.spawn("state", cid)) for _ in range(8)]
    procs += [("start", rt.spawn("start", cid)) for _ in range(4)]
    try:
        results = [(cmd, r.returncode, r.stdout, r.stderr) for cmd, r in ((c, p.result(timeout=20)) for c, p in procs)]
    finally:
        for _, p in procs:
            p.kill()
    starts = [r for r in results if r[0] == "start"]
    assert sum(1 for r in starts if r[1] == 0) == 1, starts
    for cmd, rc, out, err in results:
        assert "Traceback" not in err
        if cmd == "state":
            assert rc == 0, err
            assert json.loads(out)["status"] in ("created", "running")
    assert rt.status(cid) == "running"


# -- the caller reaps the init ----------------------------------------------------

REAPER = r"""
import ctypes, json, os, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
rt, root, bundle, cid = sys.argv[1:5]
subprocess.run([rt, "--root", root, "create", "--bundle", bundle, cid], check=True)
pid = json.loads(subprocess.run([rt, "--root", root, "state", cid], check=True, capture_output=True).stdout)["pid"]
subprocess.run([rt, "--root", root, "start", cid], check=True)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


def test_init_is_reaped_by_subreaper_caller(rt, bundle):
    """create returns with the init re-parented to the caller, which collects its status."""
    cid = new_id()
    bundle.sh("exit 9")
    bundle.write()
    rt._track(cid)
    p = subprocess.run(
        [sys.executable, "-c", REAPER, RUNTIME, rt.root, bundle.path, cid], capture_output=True, text=True, timeout=60
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "9"


# -- misc flags ------------------------------------------------------------------


def test_no_pivot(rt, bundle):
    cid = new_id()
    bundle.sh("cat /shared/../etc/passwd >/dev/null && ls / > /shared/ls")
    p = rt.run(cid, bundle, "--no-pivot")
    assert p.returncode == 0, p.stderr
    listing = open(os.path.join(bundle.shared, "ls")).read().split()
    assert "busybox" not in listing and "bin" in listing and "shared" in listing


def test_no_new_keyring_accepted(rt, bundle):
    cid = new_id()
    bundle.sh("exit 0")
    p = rt.run(cid, bundle, "--no-new-keyring")
    assert p.returncode == 0, p.stderr


def test_preserve_fds(rt, bundle, tmp_path):
    cid = new_id()
    f3 = tmp_path / "three"
    f3.write_text("fd-three\n")
    f4 = tmp_path / "four"
    f4.write_text("fd-four\n")
    bundle.sh("cat <&3; cat <&4; ls /proc/self/fd/5 2>/dev/null && echo leaked-5; exit 0")
    a, b, c = (os.open(str(f3), os.O_RDONLY), os.open(str(f4), os.O_RDONLY), os.open(str(f4), os.O_RDONLY))
    try:
        p = rt.run(cid, bundle, "--preserve-fds", "2", fds={3: a, 4: b, 5: c})
    finally:
        for fd in (a, b, c):
            os.close(fd)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "fd-three\nfd-four\n"


def test_fds_are_not_leaked_without_preserve_fds(rt, bundle, tmp_path):
    cid = new_id()
    f = tmp_path / "secret"
    f.write_text("secret\n")
    bundle.sh("ls /proc/self/fd/ | sort -n | tr '\\n' ' '")
    fd = os.open(str(f), os.O_RDONLY)
    try:
        p = rt.run(cid, bundle, fds={3: fd, 7: fd})
    finally:
        os.close(fd)
    assert p.returncode == 0, p.stderr
    # ls itself opens one fd for the directory it lists
    fds = [int(x) for x in p.stdout.split()]
    assert fds[:3] == [0, 1, 2] and 7 not in fds and len(fds) <= 4, fds


def test_listen_fds_passed_to_container(rt, bundle, tmp_path):
    cid = new_id()
    f = tmp_path / "sock-stand-in"
    f.write_text("activated\n")
    bundle.sh('echo "$LISTEN_FDS $LISTEN_PID"; cat <&3')
    bundle.write()
    rt._track(cid)
    fd = os.open(str(f), os.O_RDONLY)
    try:
        # LISTEN_PID must be the runtime's own pid: set it from a shell that execs the runtime
        p = subprocess.run(
            [
                "/bin/busybox",
                "sh",
                "-c",
                f"LISTEN_PID=$$ LISTEN_FDS=1 exec {RUNTIME} --root {rt.root} run --bundle {bundle.path} {cid}",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            pass_fds=(3,),
            preexec_fn=lambda: os.dup2(fd, 3),
        )
    finally:
        os.close(fd)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "1 1\nactivated\n"


def test_leak_detectors_see_a_live_container(rt, bundle):
    """The helpers behind the session leak check do find a live container's traces."""
    from helpers import processes_rooted_under

    cid = new_id()
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    pid = rt.state_json(cid)["pid"]
    assert pid in processes_rooted_under(bundle.path)
    assert cgroup_dirs(bundle.cgroups_path), "the container's cgroup should exist while it lives"
    assert os.listdir(rt.root) == [cid]
    assert rt.delete(cid, force=True).returncode == 0
    assert not processes_rooted_under(bundle.path)
    assert not cgroup_dirs(bundle.cgroups_path)


def test_state_after_init_killed_behind_the_runtimes_back(rt, bundle):
    cid = new_id()
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    assert rt.start(cid).returncode == 0
    pid = rt.state_json(cid)["pid"]
    os.kill(pid, signal.SIGKILL)
    st = rt.wait_status(cid, "stopped")
    assert st["pid"] == 0
    assert rt.delete(cid).returncode == 0


def test_kill_all_on_stopped_container(rt, bundle):
    """kill of a stopped container fails, except with --all."""
    cid = new_id()
    bundle.set_args("true")
    assert rt.create(cid, bundle).returncode == 0
    assert rt.start(cid).returncode == 0
    rt.wait_status(cid, "stopped")
    p = rt.kill(cid, "KILL", all=True)
    assert p.returncode == 0, p.stderr


@pytest.mark.parametrize("value", ["false", "auto"])
def test_rootless_global_flag_accepted(rt, value):
    p = rt(f"--rootless={value}", "list", "-q")
    assert p.returncode == 0, p.stderr
