"""No fd of pyrunc's caller reaches a process a container can see.

Threat: an engine's shim (or any caller) holds fds on host files, directories,
sockets and processes when it runs the runtime.  A container process that can
reach one of them through /proc/<pid>/fd of a runtime process in its
namespaces (trivially with CAP_SYS_PTRACE) reads, writes or walks the host
through it (CVE-2016-9962, CVE-2024-21626 class).  runc's init never
inherits them (Go's exec closes all but the files it passes); pyrunc's
stages are forks and close them as their first instruction.

Each test holds four fds in the caller (a host directory, a host file open
for append, a socket, a pidfd) at numbers 7..10 and checks, by the identity
of the open file (st_dev, st_ino), that no container-visible process has any
of them.  Differential: every test runs against pyrunc and runc
(tests/differential.py), except the two that stop pyrunc's own stages at a
fault point to look inside them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from helpers import new_id, wait_for

CALLER_FDS = (7, 8, 9, 10)

# Run by a createContainer hook, i.e. in the container's namespaces before
# pivot_root, as a child of the runtime's init stage (runc's init too): lists
# its own fds and its parent's, as stat identities and link texts.  /proc is
# still the host's here, so /proc/self and the ppid in its stat are host pids.
PROBE = r"""
import json, os, sys
def fds(pid):
    out = []
    d = f"/proc/{pid}/fd"
    for name in os.listdir(d):
        try:
            st = os.stat(f"{d}/{name}")
            out.append([int(name), os.readlink(f"{d}/{name}"), st.st_dev, st.st_ino])
        except OSError:
            pass  # the listing's own fd, closed by now
    return sorted(out)
me = os.readlink("/proc/self")
with open(f"/proc/{me}/stat") as f:
    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
doc = {"self": fds(me), "parent": fds(ppid), "parent_pid": ppid}
with open(sys.argv[1], "w") as f:
    json.dump(doc, f)
"""

# A hook's view of its own fds, for the kinds that run outside the host's
# python (startContainer runs in the container's root, after pivot_root).
# busybox ls opens the directory it lists: that fd points at .../fd.
LS_SELF = "ls -l /proc/self/fd/ > {out}"


@pytest.fixture
def caller(tmp_path):
    """The caller's fds: {target fd number: our fd}, and their identities."""
    secret_dir = tmp_path / "host-secret-dir"
    secret_dir.mkdir()
    secret_file = tmp_path / "host-secret-file"
    secret_file.write_text("host secret\n")
    sleeper = subprocess.Popen(["sleep", "300"])
    a, b = socket.socketpair()
    ours = {
        7: os.open(secret_dir, os.O_RDONLY | os.O_DIRECTORY),
        8: os.open(secret_file, os.O_WRONLY | os.O_APPEND),
        9: a.fileno(),
        10: os.pidfd_open(sleeper.pid),
    }
    idents = {}
    for target, fd in ours.items():
        st = os.fstat(fd)
        idents[(st.st_dev, st.st_ino)] = f"caller fd {target} ({os.readlink(f'/proc/self/fd/{fd}')})"
    names = ("host-secret-dir", "host-secret-file", f"socket:[{os.fstat(a.fileno()).st_ino}]")
    yield {"fds": ours, "idents": idents, "names": names}
    for t in (7, 8, 10):
        os.close(ours[t])
    a.close()
    b.close()
    sleeper.kill()
    sleeper.wait()


def leaked_in(pid, caller):
    """The caller's files among the fds of ``pid`` (host view)."""
    found = []
    d = f"/proc/{pid}/fd"
    for name in os.listdir(d):
        try:
            st = os.stat(f"{d}/{name}")
        except OSError:
            continue
        what = caller["idents"].get((st.st_dev, st.st_ino))
        if what:
            found.append(f"fd {name}: {what}")
    return found


def names_in(text, caller):
    return [n for n in caller["names"] if n in text]


def ptrace_caps(bundle):
    """Give the container CAP_SYS_PTRACE: it may read the links under
    /proc/<pid>/fd of any process in its pid namespace, dumpable or not."""
    caps = bundle.config["process"]["capabilities"]
    for k in ("bounding", "effective", "permitted"):
        caps[k] = sorted(set(caps[k]) | {"CAP_SYS_PTRACE"})


def created(rt, bundle, caller, *args):
    bundle.set_args(*args)
    cid = new_id()
    p = rt.create(cid, bundle, fds=caller["fds"])
    assert p.returncode == 0, p.stderr
    return cid, rt.state_json(cid)["pid"]


@pytest.mark.parametrize("ptrace", [True, False], ids=["cap-sys-ptrace", "default-caps"])
def test_created_init_holds_no_caller_fd(any_rt, bundle, caller, ptrace):
    if ptrace:
        ptrace_caps(bundle)
    cid, pid = created(any_rt, bundle, caller, "sleep", "300")
    assert leaked_in(pid, caller) == []
    # from inside, while the init still waits for start
    p = any_rt("exec", cid, "sh", "-c", "ls -l /proc/1/fd/ 2>&1")
    assert names_in(p.stdout, caller) == [], p.stdout
    if ptrace:
        assert "->" in p.stdout  # the links were readable: the check above can fail
    elif any_rt.name == "pyrunc":
        # without CAP_SYS_PTRACE the (non-dumpable) init's fd links are closed
        # to it; runc 1.1.5's created init shows them (its exec.fifo's host path)
        assert "->" not in p.stdout, p.stdout


def test_run_detached_process_holds_no_caller_fd(any_rt, bundle, caller):
    bundle.set_args("sleep", "300")
    cid = new_id()
    p = any_rt.run(cid, bundle, "-d", fds=caller["fds"])
    assert p.returncode == 0, p.stderr
    pid = any_rt.state_json(cid)["pid"]
    wait_for(lambda: open(f"/proc/{pid}/cmdline", "rb").read().startswith(b"sleep"))
    assert leaked_in(pid, caller) == []
    assert sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd")) == [0, 1, 2]


def test_exec_processes_hold_no_caller_fd(any_rt, bundle, caller, tmp_path):
    ptrace_caps(bundle)
    # a container process that scans every /proc/*/fd of its pid namespace
    # while the execs below come and go
    bundle.sh("while :; do for f in /proc/[0-9]*/fd/*; do readlink $f; done; done > /shared/seen 2>/dev/null")
    cid = new_id()
    assert any_rt.create(cid, bundle, fds=caller["fds"]).returncode == 0
    assert any_rt.start(cid).returncode == 0
    for _ in range(5):
        p = any_rt("exec", cid, "ls", "-l", "/proc/self/fd/", fds=caller["fds"])
        assert p.returncode == 0, p.stderr
        assert names_in(p.stdout, caller) == [], p.stdout
        assert "->" in p.stdout
    pid_file = tmp_path / "exec.pid"
    p = any_rt("exec", "-d", "--pid-file", pid_file, cid, "sleep", "300", fds=caller["fds"])
    assert p.returncode == 0, p.stderr
    pid = int(pid_file.read_text())
    wait_for(lambda: open(f"/proc/{pid}/cmdline", "rb").read().startswith(b"sleep"))
    assert leaked_in(pid, caller) == []
    assert sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd")) == [0, 1, 2]
    seen = open(os.path.join(bundle.shared, "seen")).read()
    assert "/shared/seen" in seen  # the scanner ran and could read links
    assert names_in(seen, caller) == []


def test_preserved_fds_pass_and_nothing_else(any_rt, bundle, caller, tmp_path):
    """--preserve-fds 1 hands over fd 3 only; 7..10 stay behind."""
    extra = tmp_path / "preserved"
    extra.write_text("")
    fd3 = os.open(extra, os.O_WRONLY)
    try:
        bundle.sh("echo through-fd-3 >&3; ls /proc/self/fd/ | tr '\\n' ' '")
        cid = new_id()
        p = any_rt.run(cid, bundle, "--preserve-fds", "1", fds={3: fd3, **caller["fds"]})
        assert p.returncode == 0, p.stderr
        assert extra.read_text() == "through-fd-3\n"
        fds = sorted(int(n) for n in p.stdout.split())
        assert 3 in fds and not set(fds) & set(CALLER_FDS), p.stdout
    finally:
        os.close(fd3)


def test_hooks_get_stdio_only_and_init_stage_holds_no_caller_fd(any_rt, bundle, caller, tmp_path):
    """Every kind of hook sees stdin (the state), stdout, stderr and nothing
    else; the createContainer hook also looks at its parent, the init stage,
    inside the container's namespaces before pivot_root."""
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    out = tmp_path / "out"
    out.mkdir()
    host = {"path": sys.executable, "args": ["python3", "-I", "-S", str(probe)]}
    hooks = {
        k: [dict(host, args=host["args"] + [str(out / k)])]
        for k in ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
    }
    hooks["startContainer"] = [
        {"path": "/bin/busybox", "args": ["busybox", "sh", "-c", LS_SELF.format(out="/shared/startContainer.ls")]}
    ]
    bundle.config["hooks"] = hooks
    ptrace_caps(bundle)
    cid, pid = created(any_rt, bundle, caller, "sleep", "300")
    assert any_rt.start(cid, fds=caller["fds"]).returncode == 0
    assert any_rt.delete(cid, force=True, fds=caller["fds"]).returncode == 0
    for kind in ("prestart", "createRuntime", "createContainer", "poststart", "poststop"):
        doc = json.loads((out / kind).read_text())
        if any_rt.name == "runc":
            # runc 1.1.5 gives hooks more: its init's sync pipes and exec.fifo
            # to createContainer, the caller's fds to poststop (run by delete)
            continue
        assert [fd for fd, *_ in doc["self"]] == [0, 1, 2], (kind, doc["self"])
    parent = json.loads((out / "createContainer").read_text())["parent"]
    assert parent, "the probe could not read the init stage's fds"
    leaked = [f for f in parent if (f[2], f[3]) in caller["idents"]]
    assert leaked == [], leaked
    lines = [ln for ln in open(os.path.join(bundle.shared, "startContainer.ls")).read().splitlines() if "->" in ln]
    others = [
        ln for ln in lines if ln.split("->")[0].split()[-1] not in ("0", "1", "2") and "/fd" not in ln.split("->")[1]
    ]  # ls's own directory fd
    assert len(lines) >= 3 and others == [], lines


# -- pyrunc's own stages, stopped at a fault point ----------------------------


def _stopped_descendant(root_pid, timeout=10):
    """A process below ``root_pid`` that stopped itself (PYRUNC_TEST_HOLD;
    pid 1 of a pid namespace waits for SIGCONT named ``pyrunc-held``)."""

    def find():
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                stat = open(f"/proc/{name}/stat").read()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if state == "T" or stat.split(" (", 1)[1].startswith("pyrunc-held)"):
                p = int(ppid)
                while p > 1:
                    if p == root_pid:
                        return int(name)
                    try:
                        p = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
                    except OSError:
                        break
        return None

    return wait_for(find, timeout=timeout)


def _run_held(any_rt, point, caller, argv):
    """Start ``argv`` with the stage held at ``point``; return the stage's
    fds (host view) once it stopped there, then let it go on."""
    env = dict(os.environ, PYRUNC_TEST_HOLD=point)
    mapping = caller["fds"]

    def dup():
        import fcntl

        tmp = {t: fcntl.fcntl(s, fcntl.F_DUPFD, 200) for t, s in mapping.items()}
        for t, s in tmp.items():
            os.dup2(s, t, inheritable=True)

    proc = subprocess.Popen(
        [any_rt.path, "--root", any_rt.root, *argv],
        env=env,
        preexec_fn=dup,
        pass_fds=tuple(mapping),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        stage = _stopped_descendant(proc.pid)
        assert stage, f"no stage stopped at {point}"
        leaked = leaked_in(stage, caller)
        fds = sorted(int(n) for n in os.listdir(f"/proc/{stage}/fd"))
        os.kill(stage, 18)  # SIGCONT
        rc = proc.wait(timeout=30)
        assert rc == 0, proc.stderr.read()
        return leaked, fds
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_intermediate_stage_closes_caller_fds_first(any_rt, bundle, caller):
    if any_rt.name != "pyrunc":
        pytest.skip("pyrunc's own stage, stopped at its fault point")
    bundle.set_args("true")
    cid = new_id()
    any_rt._track(cid)
    bundle.write()
    leaked, fds = _run_held(any_rt, "intermediate:unshared", caller, ["create", "--bundle", bundle.path, cid])
    assert leaked == []
    assert not set(fds) & set(CALLER_FDS), fds


def test_exec_stage_closes_caller_fds_first(any_rt, bundle, caller):
    if any_rt.name != "pyrunc":
        pytest.skip("pyrunc's own stage, stopped at its fault point")
    cid, _ = created(any_rt, bundle, caller, "sleep", "300")
    assert any_rt.start(cid).returncode == 0
    leaked, fds = _run_held(any_rt, "exec:joined", caller, ["exec", cid, "true"])
    assert leaked == []
    assert not set(fds) & set(CALLER_FDS), fds
