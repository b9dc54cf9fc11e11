"""Rootless mode (issue 20, docs/rootless.md): the runtime run by an
unprivileged user, side by side with runc on the same bundles.

Two ways to run:

* as root on a host (``make test`` and ``make test-rootless``, under the
  cgroup sandbox): the container tests drop to an unprivileged user with
  ``setpriv``: the user named by ``PYRUNC_ROOTLESS_USER``, else the test
  user ``pyrunc-rl`` if it exists, else the first passwd entry with
  1000 <= uid < 65534.  The tests never create a user: ``make
  test-rootless`` makes ``pyrunc-rl`` with /etc/subuid and /etc/subgid
  ranges first and installs newuidmap and podman
  (tools/rootless-user-setup, docs/rootless.md);
* as that user directly (``make test-rootless``: the cgroup v2 VM with
  systemd, a logind session, newuidmap and /etc/subuid ranges).

With ``PYRUNC_REQUIRE_ROOTLESS=1`` (``make test-rootless``) what the
rootless tests need -- the user, unprivileged user namespaces, newuidmap
and the user's subordinate ranges, podman -- missing is a failure, not a
skip.

Everything the tests make lives in one directory owned by the user; every
container is ``delete --force``d (by both runtimes) and the directory
removed even when a test fails.  Tests that need something this machine
lacks (the user, unprivileged user namespaces, newuidmap, a delegated
cgroup) skip with the reason.  Rootless podman keeps its storage, run root
and pause process in that directory too; its files of subordinate ids are
removed from podman's user namespace (``podman unshare rm -rf``) and the
pause process is killed by its pid.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile

import pytest

from helpers import (
    RUNTIME,
    RUNTIME_NAME,
    TIMEOUT,
    assert_one_error_line,
    make_rootfs,
    new_id,
    processes_rooted_under,
    runc_lacks,
    runtime_is_pyrunc,
    wait_for,
)
from pyrunc import waiter

RUNC = shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
AS_ROOT = os.geteuid() == 0
# the user tools/rootless-user-setup makes (make test-rootless)
TEST_USER = "pyrunc-rl"
REQUIRE_ROOTLESS = os.environ.get("PYRUNC_REQUIRE_ROOTLESS") == "1"


def _missing(reason):
    """Skip for want of ``reason``; a failure where the rootless setup ran."""
    if REQUIRE_ROOTLESS:
        pytest.fail(f"{reason} (PYRUNC_REQUIRE_ROOTLESS=1: make test-rootless sets it up)")
    pytest.skip(reason)


# --- the unprivileged user ---------------------------------------------------
class User:
    def __init__(self, pw):
        self.name, self.uid, self.gid = pw.pw_name, pw.pw_uid, pw.pw_gid
        # as root: drop to the user for the command; as the user: run directly
        self.prefix = (
            ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--"] if AS_ROOT else []
        )

    def run(self, argv, env=None, timeout=TIMEOUT, **kw):
        if argv[1:2] == ["create"] or "create" in argv[1:4]:
            # the created init keeps its stdio: no pipes, whose EOF never comes
            with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
                p = subprocess.run(
                    self.prefix + list(argv),
                    env=env,
                    stdout=out,
                    stderr=err,
                    text=True,
                    timeout=timeout,
                    stdin=subprocess.DEVNULL,
                    **kw,
                )
                out.seek(0)
                err.seek(0)
                p.stdout, p.stderr = out.read(), err.read()
            return p
        return subprocess.run(
            self.prefix + list(argv),
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            **kw,
        )


def _pick_user():
    if not AS_ROOT:
        return pwd.getpwuid(os.geteuid())
    name = os.environ.get("PYRUNC_ROOTLESS_USER")
    if name:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            return None
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        pass
    return next((p for p in sorted(pwd.getpwall(), key=lambda p: p.pw_uid) if 1000 <= p.pw_uid < 65534), None)


@pytest.fixture(scope="module")
def user():
    pw = _pick_user()
    if pw is None:
        _missing("no unprivileged user on this machine (PYRUNC_ROOTLESS_USER)")
    u = User(pw)
    p = u.run(["unshare", "--user", "--map-root-user", "true"])
    if p.returncode != 0:
        _missing(f"unprivileged user namespaces are not available: {p.stderr.strip()}")
    p = u.run([RUNTIME, "--version"])
    if p.returncode != 0:
        _missing(f"{RUNTIME} cannot be run by {u.name}: {p.stderr.strip()}")
    return u


class Work:
    """A directory owned by the user: bundles, XDG_RUNTIME_DIR (xdg/)."""

    def __init__(self, user, path):
        self.user, self.path = user, path
        self.xdg = os.path.join(path, "xdg")
        self.ids = []

    def env(self, **extra):
        env = {"PATH": PATH, "XDG_RUNTIME_DIR": self.xdg, "USER": self.user.name, "HOME": self.path}
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def rt(self, runtime, *args, env=None, **kw):
        """``runtime args...`` as the user; ids after create/run are remembered."""
        if args and args[0] in ("create", "run"):
            self.ids.append((runtime, args[-1]))
        return self.user.run([runtime, *args], env=env or self.env(), **kw)

    def own(self, path):
        if AS_ROOT:
            for d, dirs, files in os.walk(path):
                for n in [d] + [os.path.join(d, x) for x in dirs + files]:
                    os.lchown(n, self.user.uid, self.user.gid)

    def bundle(self, name, args, spec_with=None, edit=None):
        """A busybox bundle with the rootless spec written by ``spec_with``
        (default: the runtime under test) as the user, args set, no terminal."""
        d = os.path.join(self.path, name)
        os.makedirs(d)
        make_rootfs(os.path.join(d, "rootfs"))
        self.own(d)
        p = self.rt(spec_with or RUNTIME, "spec", "--rootless", cwd=d)
        assert p.returncode == 0, p.stderr
        path = os.path.join(d, "config.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = list(args)
        if edit:
            edit(cfg)
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.own(d)
        return d

    def cleanup(self):
        for runtime, cid in self.ids:
            self.rt(runtime, "delete", "--force", cid)
        leaked = processes_rooted_under(self.path)
        for pid in leaked:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        return leaked


@pytest.fixture
def work(user):
    path = tempfile.mkdtemp(prefix="pyrl-", dir="/tmp")
    os.chmod(path, 0o755)
    w = Work(user, path)
    os.makedirs(w.xdg, mode=0o700)
    w.own(path)
    try:
        yield w
    finally:
        leaked = w.cleanup()
        shutil.rmtree(path, ignore_errors=True)
    assert not leaked, f"container processes left running: {leaked}"
    left = [
        n
        for r in ("pyrunc", "runc")
        if os.path.isdir(os.path.join(w.xdg, r))
        for n in os.listdir(os.path.join(w.xdg, r))
    ]
    assert not left, f"state left behind: {left}"


def _runtimes():
    out = [pytest.param(RUNTIME, id="pyrunc" if runtime_is_pyrunc else os.path.basename(RUNTIME))]
    if RUNC and RUNC != RUNTIME:
        out.append(pytest.param(RUNC, id="runc"))
    return out


# the runtime under test's default state root below XDG_RUNTIME_DIR
STATE_SUBDIR = "pyrunc" if runtime_is_pyrunc else RUNTIME_NAME
pyrunc_only = pytest.mark.skipif(not runtime_is_pyrunc, reason="pyrunc's own behaviour")


def _state_names(work, runtime=RUNTIME):
    """The containers in ``runtime``'s default state root below XDG_RUNTIME_DIR."""
    root = os.path.join(work.xdg, STATE_SUBDIR if runtime == RUNTIME else os.path.basename(runtime))
    return os.listdir(root) if os.path.isdir(root) else []


# --- detection and the default --root (no containers) ---------------------
def test_rootless_flag_values():
    from pyrunc.errors import UsageError
    from pyrunc.caller import parse_flag

    assert [parse_flag(v) for v in ("auto", "", "true", "1", "True", "false", "0", "F")] == [
        None,
        None,
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    with pytest.raises(UsageError):
        parse_flag("yes")


@pytest.mark.parametrize(
    "euid,in_userns,env,expected",
    [
        (1000, False, {"XDG_RUNTIME_DIR": "/run/user/1000"}, ("/run/user/1000/pyrunc", True)),
        (0, False, {"XDG_RUNTIME_DIR": "/run/user/0", "USER": "alice"}, ("/run/pyrunc", False)),
        (0, True, {"XDG_RUNTIME_DIR": "/run/user/1000", "USER": "alice"}, ("/run/user/1000/pyrunc", True)),
        (0, True, {"XDG_RUNTIME_DIR": "/run/user/1000"}, ("/run/user/1000/pyrunc", True)),
        (0, True, {"XDG_RUNTIME_DIR": "/run/user/1000", "USER": "root"}, ("/run/pyrunc", False)),
        (0, True, {}, ("/run/pyrunc", False)),
    ],
)
def test_default_root_rules(monkeypatch, euid, in_userns, env, expected):
    """runc's rules: an unprivileged caller keeps state in $XDG_RUNTIME_DIR;
    root in a partial user namespace too unless USER=root; host root never."""
    from pyrunc import caller

    monkeypatch.setattr(caller.os, "geteuid", lambda: euid)
    monkeypatch.setattr(caller, "_in_userns", in_userns)
    assert caller.default_root(env) == expected


def test_default_root_without_xdg_is_an_error(monkeypatch):
    from pyrunc import caller
    from pyrunc.errors import PyruncError

    monkeypatch.setattr(caller.os, "geteuid", lambda: 1000)
    with pytest.raises(PyruncError, match="XDG_RUNTIME_DIR is not set"):
        caller.default_root({"USER": "alice"})


def test_rootless_cgroups_detection(monkeypatch):
    from pyrunc import caller

    monkeypatch.setattr(caller, "_in_userns", False)
    monkeypatch.setattr(caller.os, "geteuid", lambda: 0)
    assert caller.rootless_cgroups(None) is False
    assert caller.rootless_cgroups(True) is True
    monkeypatch.setattr(caller, "_in_userns", True)
    assert caller.rootless_cgroups(None) is True
    assert caller.rootless_cgroups(False) is False
    monkeypatch.setattr(caller, "_in_userns", False)
    monkeypatch.setattr(caller.os, "geteuid", lambda: 1000)
    assert caller.rootless_cgroups(None) is True


def test_limits_that_need_a_cgroup():
    """Only real limits need a cgroup: device rules and empty objects do not
    (an unprivileged user cannot set device rules; runc ignores them)."""
    from pyrunc.rootless import needed_controllers

    assert needed_controllers(None) == []
    assert (
        needed_controllers({"devices": [{"allow": False, "access": "rwm"}], "memory": {}, "pids": {"limit": 0}}) == []
    )
    assert [
        c for c, _ in needed_controllers({"memory": {"limit": 1 << 20}, "pids": {"limit": 10}, "cpu": {"cpus": "0"}})
    ] == ["memory", "cpuset", "pids"]


@pyrunc_only
def test_missing_xdg_runtime_dir_is_one_line(user, work):
    p = work.rt(RUNTIME, "state", "nosuch", env=work.env(XDG_RUNTIME_DIR=None))
    line = assert_one_error_line(p, contains="XDG_RUNTIME_DIR")
    assert "--root" in line
    # with --root there is nothing to complain about
    p = work.rt(RUNTIME, "--root", os.path.join(work.path, "r"), "state", "nosuch", env=work.env(XDG_RUNTIME_DIR=None))
    assert_one_error_line(p, contains="container does not exist")


@pyrunc_only
def test_bad_rootless_value_is_one_line(user, work):
    assert_one_error_line(work.rt(RUNTIME, "--rootless", "maybe", "list"), contains="--rootless")


def _plant_state(root, cid):
    d = os.path.join(root, cid)
    os.makedirs(d)
    with open(os.path.join(d, "state.json"), "w") as f:
        json.dump({"id": cid, "bundle": "/nonexistent", "oci_version": "1.3.0"}, f)


@pyrunc_only
def test_root_in_a_partial_user_namespace_uses_xdg(user, work):
    """Root of a user namespace that maps only some ids (how rootless podman
    runs the runtime) keeps state in $XDG_RUNTIME_DIR/pyrunc unless USER=root."""
    cid = new_id("planted")
    _plant_state(os.path.join(work.xdg, "pyrunc"), cid)
    work.own(work.xdg)
    userns = ["unshare", "--user", "--map-root-user", RUNTIME, "state", cid]
    p = work.user.run(userns, env=work.env(USER="alice"))
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["id"] == cid
    p = work.user.run(userns, env=work.env(USER="root"))
    assert p.returncode == 1 and cid not in p.stdout  # looked in /run/pyrunc instead


@pyrunc_only
def test_spec_rootless_matches_runc(user, work):
    if not RUNC:
        pytest.skip("runc is not installed")
    docs = {}
    for name, runtime in (("runc", RUNC), ("ours", RUNTIME)):
        d = os.path.join(work.path, "spec-" + name)
        os.makedirs(d)
        work.own(d)
        p = work.rt(runtime, "spec", "--rootless", cwd=d)
        assert p.returncode == 0, p.stderr
        with open(os.path.join(d, "config.json")) as f:
            docs[name] = json.load(f)
    ours, runc = docs["ours"], docs["runc"]
    # the mounts, maps and namespaces are runc's, in runc's order
    assert ours["mounts"] == runc["mounts"]
    assert list(ours["linux"])[:2] == ["uidMappings", "gidMappings"] == list(runc["linux"])[:2]
    for key in ("uidMappings", "gidMappings"):
        assert (
            ours["linux"][key]
            == runc["linux"][key]
            == [{"containerID": 0, "hostID": user.uid if key[0] == "u" else user.gid, "size": 1}]
        )
    assert "resources" not in ours["linux"] and "resources" not in runc["linux"]
    ns = [n["type"] for n in ours["linux"]["namespaces"]]
    assert "network" not in ns and ns[-1] == "user"
    # deliberate differences: pyrunc's default spec always has a cgroup
    # namespace (runc's only on cgroup v2), no ambient capabilities
    # (CVE-2022-29162) and masks one more path
    assert [n for n in ns if n != "cgroup"] == [n["type"] for n in runc["linux"]["namespaces"] if n["type"] != "cgroup"]
    assert "ambient" not in ours["process"]["capabilities"]
    assert set(runc["linux"]["maskedPaths"]) <= set(ours["linux"]["maskedPaths"])


# --- containers as the unprivileged user ----------------------------------
PROBE = (
    "id; echo HOME=$HOME; cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; "
    "grep -E '^(Groups|CapEff)' /proc/self/status; ls -ln /dev/null | cut -c1-10; "
    "grep -c ' /sys ' /proc/self/mountinfo"
)


def test_run_matches_runc(user, work):
    """The same rootless bundle run by both runtimes: same ids, maps (the
    user's own ids mapped to 0, setgroups denied), HOME, devices, /sys."""
    if not RUNC:
        pytest.skip("runc is not installed")
    b = work.bundle("b", ["sh", "-c", PROBE])
    outs = {}
    for runtime in (RUNTIME, RUNC):
        p = work.rt(runtime, "run", "--bundle", b, new_id("rl"))
        assert p.returncode == 0, f"{runtime}: {p.stderr}"
        outs[runtime] = p.stdout
    assert outs[RUNTIME] == outs[RUNC]
    lines = outs[RUNTIME].splitlines()
    assert lines[0].startswith("uid=0(root) gid=0(root)")
    assert lines[1] == "HOME=/root"
    assert lines[2].split() == ["0", str(user.uid), "1"]
    assert lines[3].split() == ["0", str(user.gid), "1"]
    assert lines[4] == "deny"
    assert lines[-2] == "crw-rw-rw-"  # the host's /dev/null, bound


def test_lifecycle_as_user(user, work):
    """create/start/state/exec/kill/delete; every file pyrunc makes belongs
    to the user: the state root (0700, sticky, in XDG_RUNTIME_DIR), the pid
    file, the log; a file the container writes to a bind is the user's."""
    shared = os.path.join(work.path, "shared")
    os.makedirs(shared)
    work.own(shared)

    def edit(cfg):
        cfg["mounts"].append({"destination": "/shared", "type": "bind", "source": shared, "options": ["rbind", "rw"]})

    b = work.bundle("b", ["sleep", "300"], edit=edit)
    cid = new_id("rl")
    pid_file = os.path.join(work.path, "init.pid")
    log = os.path.join(work.path, "pyrunc.log")
    p = work.rt(RUNTIME, "--log", log, "create", "--bundle", b, "--pid-file", pid_file, cid)
    assert p.returncode == 0, p.stderr
    st = json.loads(work.rt(RUNTIME, "state", cid).stdout)
    assert st["status"] == "created"
    if runtime_is_pyrunc and waiter.program() is not None:
        # in the user namespace too, the waiter waits (pyrunc/waiter.py)
        wait_for(lambda: open(f"/proc/{st['pid']}/comm").read().strip() == waiter.NAME)
    assert work.rt(RUNTIME, "start", cid).returncode == 0
    st = json.loads(work.rt(RUNTIME, "state", cid).stdout)
    assert st["status"] == "running" and st["pid"] > 0
    assert os.stat(f"/proc/{st['pid']}").st_uid == user.uid  # container root is the user
    p = work.rt(RUNTIME, "exec", cid, "sh", "-c", "id -u; touch /shared/made-inside")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "0"
    made = os.stat(os.path.join(shared, "made-inside"))
    assert (made.st_uid, made.st_gid) == (user.uid, user.gid)
    root = os.path.join(work.xdg, STATE_SUBDIR)
    rst = os.stat(root)
    assert (rst.st_uid, stat.S_IMODE(rst.st_mode)) == (user.uid, 0o1700)
    for dirpath, _, files in os.walk(root):
        for n in files + [""]:
            assert os.lstat(os.path.join(dirpath, n)).st_uid == user.uid, (dirpath, n)
    pst = os.stat(pid_file)
    assert pst.st_uid == user.uid
    with open(pid_file) as f:
        assert int(f.read()) == st["pid"]
    assert work.rt(RUNTIME, "kill", cid, "KILL").returncode == 0
    for _ in range(200):
        if json.loads(work.rt(RUNTIME, "state", cid).stdout)["status"] == "stopped":
            break
    else:
        pytest.fail("container did not stop")
    assert work.rt(RUNTIME, "delete", cid).returncode == 0
    assert _state_names(work) == []
    if os.path.exists(log):
        assert os.stat(log).st_uid == user.uid


def _own_cgroup_writable(user):
    """Whether the cgroup a relative cgroupsPath lands in is the user's to
    write (a delegated cgroup), as pyrunc and runc resolve it."""
    with open("/proc/self/cgroup") as f:
        lines = f.read().splitlines()
    v2 = any(ln.startswith("0::") for ln in lines) and os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    if v2:
        own = next(ln for ln in lines if ln.startswith("0::"))[3:]
        d = os.path.normpath("/sys/fs/cgroup/" + os.path.dirname(own.rstrip("/")))
    else:
        own = next((ln.split(":", 2)[2] for ln in lines if ":memory:" in ln), "/")
        d = os.path.normpath("/sys/fs/cgroup/memory/" + own)
    return user.run(["test", "-w", d]).returncode == 0


@pytest.mark.parametrize(
    "resources,limit", [({"memory": {"limit": 64 << 20}}, "memory"), ({"pids": {"limit": 64}}, "pids")]
)
def test_limits_without_a_delegated_cgroup_fail_one_line(user, work, resources, limit):
    """runc: a rootless config with limits and no cgroup to put them in
    fails; pyrunc says so in one line and leaves nothing behind."""
    if _own_cgroup_writable(user):
        pytest.skip("the user's cgroup is delegated here")
    b = work.bundle("b", ["true"], edit=lambda c: c["linux"].__setitem__("resources", resources))
    p = work.rt(RUNTIME, "run", "--bundle", b, new_id("rl"))
    if runtime_is_pyrunc:
        line = assert_one_error_line(p, contains=f"cannot set {limit} limit")
        assert "rootless" in line and "cgroup" in line
    else:
        assert p.returncode != 0
    assert _state_names(work) == []
    if RUNC:
        assert work.rt(RUNC, "run", "--bundle", b, new_id("rl")).returncode != 0


@pytest.mark.parametrize("runtime", _runtimes())
def test_rootless_false_makes_cgroups_mandatory(user, work, runtime):
    """``--rootless false``: a cgroup the user may not create is an error
    even without limits (the same bundle runs with auto)."""
    if _own_cgroup_writable(user):
        pytest.skip("the user's cgroup is delegated here")
    b = work.bundle("b", ["true"])
    p = work.rt(runtime, "--rootless", "false", "run", "--bundle", b, new_id("rl"))
    assert p.returncode != 0
    if runtime == RUNTIME and runtime_is_pyrunc:
        assert_one_error_line(p, contains="permission denied")
    assert work.rt(runtime, "--rootless", "auto", "run", "--bundle", b, new_id("rl")).returncode == 0


def test_ps_without_a_cgroup_fails_as_in_runc(user, work):
    """``ps`` of a live container that has no cgroup (rootless, none
    delegated): runc fails ("unable to get all container pids"), exit 1,
    created or running; pyrunc too, in one line.  Once it stopped both list
    nothing (the header; ``null`` in JSON) and succeed."""
    if _own_cgroup_writable(user):
        pytest.skip("the user's cgroup is delegated here")
    b = work.bundle("b", ["sleep", "300"])
    seen = {}
    for runtime in [p.values[0] for p in _runtimes()]:
        cid = new_id("rl")
        out = []

        def ps(*args, ps_args=()):
            p = work.rt(runtime, "ps", *args, cid, *ps_args)
            if p.returncode:
                if runtime == RUNTIME and runtime_is_pyrunc:
                    assert_one_error_line(p, contains="unable to get all container pids")
                else:
                    assert "unable to get all container pids" in p.stderr, p.stderr
                return p.returncode, None  # runc's error names an empty cgroup path; pyrunc says why
            return p.returncode, p.stdout

        assert work.rt(runtime, "create", "--bundle", b, cid).returncode == 0
        out += [ps(), ps("--format", "json")]
        assert work.rt(runtime, "start", cid).returncode == 0
        out += [ps(), ps("--format", "json"), ps(ps_args=("-o", "pid,args"))[:1]]
        assert work.rt(runtime, "kill", cid, "KILL").returncode == 0
        wait_for(lambda: json.loads(work.rt(runtime, "state", cid).stdout)["status"] == "stopped")
        out += [ps(), ps("--format", "json")]
        assert work.rt(runtime, "delete", cid).returncode == 0
        seen[runtime] = out
    ours = seen[RUNTIME]
    assert ours[:5] == [(1, None)] * 4 + [(1,)]
    assert ours[5][0] == 0 and ours[5][1].split()[:2] == ["UID", "PID"] and len(ours[5][1].splitlines()) == 1
    assert ours[6] == (0, "null\n")
    if RUNC in seen:
        assert ours == seen[RUNC]


def test_events_stats_without_a_cgroup_are_zero_as_in_runc(user, work):
    """``events --stats`` of a live container that has no cgroup (rootless,
    none delegated): runc reports the stats record with every counter zero
    and succeeds; pyrunc gives the same record."""
    if _own_cgroup_writable(user):
        pytest.skip("the user's cgroup is delegated here")
    b = work.bundle("b", ["sleep", "300"])
    seen = {}
    for runtime in [p.values[0] for p in _runtimes()]:
        cid = new_id("rl")
        assert work.rt(runtime, "create", "--bundle", b, cid).returncode == 0
        assert work.rt(runtime, "start", cid).returncode == 0
        p = work.rt(runtime, "events", "--stats", cid)
        assert p.returncode == 0, p.stderr
        event = json.loads(p.stdout)
        assert event["type"] == "stats" and event["id"] == cid
        seen[runtime] = event["data"]
        assert work.rt(runtime, "delete", "--force", cid).returncode == 0
    ours = seen[RUNTIME]

    def numbers(v):
        if isinstance(v, dict):
            return [n for x in v.values() for n in numbers(x)]
        if isinstance(v, list):
            return [n for x in v for n in numbers(x)]
        return [v] if isinstance(v, int) else []

    assert {"cpu", "memory", "pids"} <= set(ours) and set(numbers(ours)) == {0}
    if RUNC in seen:
        # the same record as pyrunc's stats with a cgroup: memory.event_count,
        # which runc 1.1.5 does not report (docs/cgroups.md), is the one difference
        ours["memory"].pop("event_count")
        assert ours == seen[RUNC]


@pytest.mark.parametrize("runtime", _runtimes())
def test_device_rules_alone_need_no_cgroup(user, work, runtime):
    """runc's default device rules (deny all) in a rootless config are ignored."""
    b = work.bundle(
        "b",
        ["true"],
        edit=lambda c: c["linux"].__setitem__("resources", {"devices": [{"allow": False, "access": "rwm"}]}),
    )
    p = work.rt(runtime, "run", "--bundle", b, new_id("rl"))
    assert p.returncode == 0, p.stderr


def test_explicit_cgroups_path_without_permission(user, work):
    if _own_cgroup_writable(user):
        pytest.skip("the user's cgroup is delegated here")
    b = work.bundle("b", ["true"], edit=lambda c: c["linux"].__setitem__("cgroupsPath", "/pyrunc-rootless-test"))
    p = work.rt(RUNTIME, "run", "--bundle", b, new_id("rl"))
    if runtime_is_pyrunc:
        assert_one_error_line(p, contains="permission denied")
    else:
        assert p.returncode != 0
    if RUNC:
        assert work.rt(RUNC, "run", "--bundle", b, new_id("rl")).returncode != 0


def _no_userns(cfg):
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "user"]
    del cfg["linux"]["uidMappings"], cfg["linux"]["gidMappings"]


REFUSED = [
    pytest.param(_no_userns, "requires user namespaces", id="no-userns"),
    pytest.param(lambda c: c["mounts"][2]["options"].append("gid=5"), "gid=5", id="unmapped-gid-option"),
    pytest.param(
        lambda c: c["process"]["user"].__setitem__("additionalGids", [0]), "additional groups", id="additional-gids"
    ),
    pytest.param(
        lambda c: c["process"].__setitem__("user", {"uid": 1, "gid": 0}), "unmapped", id="unmapped-process-uid"
    ),
]


@pytest.mark.parametrize("edit,words", REFUSED)
def test_what_an_unprivileged_user_cannot_run(user, work, edit, words):
    """Refused with one line, by runc too; nothing left behind."""
    b = work.bundle("b", ["true"], edit=edit)
    p = work.rt(RUNTIME, "run", "--bundle", b, new_id("rl"))
    if runtime_is_pyrunc:
        assert_one_error_line(p, contains=words)
    else:
        assert p.returncode != 0
    assert _state_names(work) == []
    if RUNC:
        assert work.rt(RUNC, "run", "--bundle", b, new_id("rl")).returncode != 0


def _subids(kind, user):
    from pyrunc.rootless import allotted_ranges

    return [r for r in allotted_ranges(kind, user.uid) if r[1] >= 65536]


def test_several_mappings_use_newuidmap(user, work):
    """Ranges from /etc/subuid and /etc/subgid are mapped by newuidmap and
    newgidmap; without them: one line naming the helper."""
    has_tools = bool(shutil.which("newuidmap") and shutil.which("newgidmap"))
    uids, gids = _subids("uid", user), _subids("gid", user)
    if REQUIRE_ROOTLESS and not (has_tools and uids and gids):
        _missing(f"newuidmap/newgidmap and /etc/subuid, /etc/subgid ranges of 65536 ids for {user.name}")

    def edit(cfg):
        for key, own, sub in (("uidMappings", user.uid, uids), ("gidMappings", user.gid, gids)):
            start = sub[0][0] if sub else 100000
            cfg["linux"][key] = [
                {"containerID": 0, "hostID": own, "size": 1},
                {"containerID": 1, "hostID": start, "size": 65536},
            ]

    b = work.bundle(
        "b",
        [
            "sh",
            "-c",
            "cat /proc/self/uid_map /proc/self/gid_map; "
            "rm -f /tmp/f; touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u:%g /tmp/f",
        ],
        edit=edit,
    )
    with open(os.path.join(b, "config.json")) as f:
        cfg = json.load(f)
    cfg["root"]["readonly"] = False
    for caps in cfg["process"]["capabilities"].values():
        caps.append("CAP_CHOWN")
    with open(os.path.join(b, "config.json"), "w") as f:
        json.dump(cfg, f)
    p = work.rt(RUNTIME, "run", "--bundle", b, new_id("rl"))
    if not has_tools:
        if runtime_is_pyrunc:
            assert_one_error_line(p, contains="newuidmap")
        else:
            assert p.returncode != 0
        return
    if not (uids and gids):
        if runtime_is_pyrunc:
            assert_one_error_line(p, contains="/etc/sub")
        return
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert [ln.split() for ln in lines[:4]] == [
        ["0", str(user.uid), "1"],
        ["1", str(uids[0][0]), "65536"],
        ["0", str(user.gid), "1"],
        ["1", str(gids[0][0]), "65536"],
    ]
    assert lines[4] == "1000:1000"  # a subordinate id, usable inside
    host = os.stat(os.path.join(b, "rootfs/tmp/f"))
    assert (host.st_uid, host.st_gid) == (uids[0][0] + 999, gids[0][0] + 999)
    if RUNC:
        q = work.rt(RUNC, "run", "--bundle", b, new_id("rl"))
        assert q.returncode == 0, q.stderr
        assert q.stdout == p.stdout


@pytest.mark.parametrize("runtime", _runtimes())
def test_mapping_ids_not_allotted_is_one_line(user, work, runtime):
    """A second mapping of ids /etc/subuid does not give the user: refused
    (pyrunc checks before newuidmap does, and says which file); nothing left."""
    if not shutil.which("newuidmap"):
        _missing("newuidmap is not installed")

    def edit(cfg):
        cfg["linux"]["uidMappings"].append({"containerID": 1, "hostID": 4000000000, "size": 10})

    b = work.bundle("b", ["true"], edit=edit)
    p = work.rt(runtime, "run", "--bundle", b, new_id("rl"))
    if runtime == RUNTIME and runtime_is_pyrunc:
        assert_one_error_line(p, contains="/etc/subuid")
    else:
        assert p.returncode != 0
    assert _state_names(work, runtime) == []


@runc_lacks("the sysfs fallback of runc >= 1.4 (1.1.5 fails with EPERM)")
def test_read_only_sysfs_falls_back_to_the_hosts(user, work):
    """Without its own network namespace a user namespace may not mount
    sysfs: a read-only one becomes a read-only bind of the host's /sys (as
    crun and runc >= 1.4; runc 1.1 fails)."""

    def edit(cfg):
        for m in cfg["mounts"]:
            if m["destination"] == "/sys":
                m.update(type="sysfs", source="sysfs", options=["nosuid", "noexec", "nodev", "ro"])

    b = work.bundle(
        "b",
        [
            "sh",
            "-c",
            "ls /sys/kernel >/dev/null && echo listed; "
            "awk '$5 == \"/sys\" {print $6}' /proc/self/mountinfo; "
            "echo x > /sys/kernel/pyrunc-test 2>/dev/null || echo refused",
        ],
        edit=edit,
    )
    p = work.rt(RUNTIME, "run", "--bundle", b, new_id("rl"))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "listed"
    assert lines[1].split(",")[0] == "ro"
    assert lines[-1] == "refused"


# --- nothing the user passes reaches further than the user ------------------
def _not_writable_by(user, d):
    return os.path.isdir(d) and user.run(["test", "-w", d]).returncode != 0


def test_pid_file_and_root_where_the_user_cannot_write(user, work):
    if not _not_writable_by(user, "/etc"):
        pytest.skip("/etc is writable by the user")
    b = work.bundle("b", ["true"])
    target = f"/etc/pyrunc-rootless-{os.getpid()}.pid"
    p = work.rt(RUNTIME, "run", "--bundle", b, "--pid-file", target, new_id("rl"))
    if runtime_is_pyrunc:
        assert_one_error_line(p, contains="Permission denied")
    assert p.returncode != 0
    assert not os.path.exists(target)
    assert _state_names(work) == []
    root = f"/etc/pyrunc-rootless-{os.getpid()}"
    p = work.rt(RUNTIME, "--root", root, "run", "--bundle", b, new_id("rl"))
    if runtime_is_pyrunc:
        assert_one_error_line(p, contains="permission denied")
    assert p.returncode != 0
    assert not os.path.exists(root)
    log = f"/etc/pyrunc-rootless-{os.getpid()}.log"
    work.rt(RUNTIME, "--log", log, "state", "nosuch")
    assert not os.path.exists(log)


def test_console_socket_of_root_is_refused(user, work):
    """A console socket the user may not connect to (root's, 0600) stays
    out of reach: create fails with one line, the listener sees nothing."""
    if not AS_ROOT:
        pytest.skip("needs root to own the socket")
    path = os.path.join(work.path, "root.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        srv.bind(path)
        os.chmod(path, 0o600)
        srv.listen(1)
        srv.setblocking(False)
        b = work.bundle("b", ["true"], edit=lambda c: c["process"].__setitem__("terminal", True))
        p = work.rt(RUNTIME, "create", "--bundle", b, "--console-socket", path, new_id("rl"))
        if runtime_is_pyrunc:
            assert_one_error_line(p, contains="console socket")
        assert p.returncode != 0
        with pytest.raises(BlockingIOError):
            srv.accept()
    finally:
        srv.close()
    assert _state_names(work) == []


@pytest.mark.parametrize("runtime", _runtimes())
def test_bind_source_behind_a_root_only_directory(user, work, runtime):
    """Bind sources are opened with the user's rights: a file below a 0700
    directory of root's cannot be bound, and a bound directory of root's
    cannot be read inside (the container's root is the user)."""
    if AS_ROOT:
        secret_dir = os.path.join(work.path, "secret")
        os.makedirs(secret_dir)
        with open(os.path.join(secret_dir, "key"), "w") as f:
            f.write("s3cret\n")
        os.chown(secret_dir, 0, 0)
        os.chmod(secret_dir, 0o700)
    else:
        secret_dir = "/root"
        if os.access(secret_dir, os.R_OK):
            pytest.skip("/root is readable by the user")
    b = work.bundle(
        "b",
        ["sh", "-c", "ls /secret >/dev/null 2>&1 && echo LISTED || echo denied"],
        edit=lambda c: c["mounts"].append(
            {"destination": "/secret", "type": "bind", "source": secret_dir, "options": ["rbind", "ro"]}
        ),
    )
    p = work.rt(runtime, "run", "--bundle", b, new_id("rl"))
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "denied"
    if AS_ROOT:
        b2 = work.bundle(
            "b2",
            ["cat", "/key"],
            edit=lambda c: c["mounts"].append(
                {
                    "destination": "/key",
                    "type": "bind",
                    "source": os.path.join(secret_dir, "key"),
                    "options": ["bind", "ro"],
                }
            ),
        )
        p = work.rt(runtime, "run", "--bundle", b2, new_id("rl"))
        assert p.returncode != 0 and "s3cret" not in p.stdout
        if runtime == RUNTIME and runtime_is_pyrunc:
            assert_one_error_line(p, contains="denied")


# --- cgroup v2 with a delegated cgroup (the VM) -----------------------------
def _systemd_user_scope(user):
    if not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        return None
    if AS_ROOT or not os.environ.get("DBUS_SESSION_BUS_ADDRESS") or not shutil.which("systemd-run"):
        return None
    return ["systemd-run", "--user", "--scope", "--quiet", "-p", "Delegate=yes", "--"]


@pytest.mark.parametrize("runtime", _runtimes())
def test_delegated_cgroup_v2_gets_the_limits(user, work, runtime):
    """In a delegated cgroup (a user scope of systemd --user), the cgroupfs
    driver makes the container's cgroup next to it and applies the limits."""
    scope = _systemd_user_scope(user)
    if scope is None:
        pytest.skip("needs cgroup v2 and a systemd user session (make test-rootless)")

    def edit(cfg):
        cfg["linux"]["resources"] = {"memory": {"limit": 32 << 20}, "pids": {"limit": 40}}
        if not any(n["type"] == "cgroup" for n in cfg["linux"]["namespaces"]):
            cfg["linux"]["namespaces"].append({"type": "cgroup"})

    b = work.bundle(
        "b", ["sh", "-c", "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max; cat /proc/self/cgroup"], edit=edit
    )
    cid = new_id("rl")
    p = user.run(
        scope + [runtime, "run", "--bundle", b, cid],
        env=work.env(DBUS_SESSION_BUS_ADDRESS=os.environ["DBUS_SESSION_BUS_ADDRESS"]),
    )
    work.ids.append((runtime, cid))
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [str(32 << 20), "40", "0::/"]
    leftover = subprocess.run(
        ["find", "/sys/fs/cgroup/user.slice", "-type", "d", "-name", cid], capture_output=True, text=True
    ).stdout
    assert leftover == ""


# --- rootless podman (this host and the engines VM) -------------------------
def _podman(work):
    """podman as the user with all its state in the work directory: vfs
    storage, the cgroupfs manager, events in a file (its pause process's
    pid file lands in $XDG_RUNTIME_DIR/libpod/tmp)."""
    return [
        "podman",
        "--root",
        os.path.join(work.path, "graph"),
        "--runroot",
        os.path.join(work.xdg, "podman-run"),
        "--storage-driver",
        "vfs",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
    ]


def _kill_podman_pause(work):
    """podman's pause process keeps its user namespace alive after podman
    exits; it is this test's (its pid file is in the work directory)."""
    try:
        with open(os.path.join(work.xdg, "libpod/tmp/pause.pid")) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/status") as f:
            uid = next(int(ln.split()[1]) for ln in f if ln.startswith("Uid:"))
    except (OSError, ValueError, StopIteration):
        return
    if uid == work.user.uid:
        try:
            os.kill(pid, 9)
        except OSError:
            pass


@pytest.fixture
def podman(user, work):
    """Rootless podman run by the user (as root of this host: through
    setpriv, as ``User.run`` does everything) with a busybox image; all its
    containers, storage and pause process are removed afterwards."""
    if not shutil.which("podman"):
        _missing("podman is not installed (make test-rootless installs it)")
    if not (shutil.which("newuidmap") and _subids("uid", user) and _subids("gid", user)):
        _missing(f"rootless podman needs newuidmap and /etc/subuid, /etc/subgid ranges for {user.name}")
    import tarfile

    rootfs = make_rootfs(os.path.join(work.path, "image-rootfs"))
    tar = os.path.join(work.path, "bb.tar")
    with tarfile.open(tar, "w") as t:
        for n in os.listdir(rootfs):
            t.add(os.path.join(rootfs, n), arcname=n)
    work.own(work.path)
    base = _podman(work)
    try:
        p = user.run(base + ["import", tar, "localhost/pyrunc-rl"], env=work.env(), timeout=300)
        assert p.returncode == 0, p.stderr
        yield base
    finally:
        user.run(base + ["rm", "-a", "-f", "-t", "0"], env=work.env(), timeout=300)
        # the storage holds files of subordinate ids: removed from podman's namespace
        user.run(
            base + ["unshare", "rm", "-rf", os.path.join(work.path, "graph"), os.path.join(work.xdg, "podman-run")],
            env=work.env(),
            timeout=300,
        )
        _kill_podman_pause(work)


ROOTLESS_LIMITS_IGNORED = "Resource limits are not supported and ignored on cgroups V1 rootless systems"


def _podman_checklist(user, work, base, runtime):
    """The engine checklist that makes sense rootless, with one runtime;
    returns what it saw, for the comparison with the other runtime."""
    pm = base + ["--runtime", runtime]
    img = "localhost/pyrunc-rl"

    def run(*args):
        return user.run(pm + list(args), env=work.env(), timeout=300)

    seen = {}
    p = run(
        "run", "--rm", "--network", "none", img, "sh", "-c", "id; cat /proc/self/uid_map; ls -ln /dev/null | cut -c1-10"
    )
    assert p.returncode == 0, f"{runtime}: {p.stderr}"
    seen["run"] = p.stdout
    p = run("run", "--rm", "--network", "none", img, "sh", "-c", "exit 3")
    seen["exit code"] = p.returncode
    # cgroup v1 rootless: podman warns that it ignores the limits and runs
    # the container; cgroup v2 (the VM): the limits in its delegated cgroup
    p = run(
        "run",
        "--rm",
        "--network",
        "none",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        img,
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max 2>/dev/null || echo no-v2-limits",
    )
    seen["limits"] = (p.returncode, p.stdout, ROOTLESS_LIMITS_IGNORED in p.stderr)
    name = new_id("pod")
    try:
        p = run("run", "-d", "--name", name, "--network", "none", img, "sleep", "300")
        assert p.returncode == 0, f"{runtime}: {p.stderr}"
        p = run("ps", "--format", "{{.Names}} {{.Status}}")
        seen["ps"] = [ln.split()[1] for ln in p.stdout.splitlines() if ln.split()[:1] == [name]]
        p = run("exec", name, "id", "-u")
        seen["exec"] = (p.returncode, p.stdout)
        seen["exec exit code"] = run("exec", name, "sh", "-c", "exit 4").returncode
        p = run("stop", "-t", "1", name)  # sleep as pid 1 ignores SIGTERM: killed after 1 s
        assert p.returncode == 0, f"{runtime}: {p.stderr}"
        p = run("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name)
        seen["stopped"] = p.stdout.strip()
        p = run("rm", name)
        assert p.returncode == 0, f"{runtime}: {p.stderr}"
        seen["after rm"] = name in run("ps", "-a", "--format", "{{.Names}}").stdout.split()
    finally:
        run("rm", "-f", "-t", "0", name)
    loop = []
    for i in range(5):
        p = run("run", "--rm", "--network", "none", img, "echo", f"loop-{i}")
        loop.append((p.returncode, p.stdout))
    seen["loop"] = loop
    return seen


def test_rootless_podman_side_by_side(user, work, podman):
    """podman run by the user (its own user namespace with the subordinate
    ranges; the runtime is root of a partial user namespace there): run and
    output, the exit code, --memory/--pids-limit, detached + ps + exec +
    stop + rm, five runs in a loop -- the same with runc."""
    seen = {runtime: _podman_checklist(user, work, podman, runtime) for runtime in [p.values[0] for p in _runtimes()]}
    ours = seen[RUNTIME]
    lines = ours["run"].splitlines()
    assert lines[0].startswith("uid=0")
    assert lines[1].split() == ["0", str(user.uid), "1"] and lines[2].split()[0] == "1"  # + the subordinate range
    assert lines[-1] == "crw-rw-rw-"  # the host's /dev/null, bound
    assert ours["exit code"] == 3
    if not os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        assert ours["limits"] == (0, "no-v2-limits\n", True)
    assert ours["ps"] == ["Up"]
    assert ours["exec"] == (0, "0\n") and ours["exec exit code"] == 4
    assert ours["stopped"] == "exited 137"
    assert ours["after rm"] is False
    assert ours["loop"] == [(0, f"loop-{i}\n") for i in range(5)]
    if RUNC in seen:
        assert ours == seen[RUNC]
