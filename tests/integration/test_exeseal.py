"""pyrunc/exeseal.py on the real kernel: the CVE-2019-5736 attack, played
against a private copy of the interpreter (so that no other process keeps
it busy and ETXTBSY cannot hide a writable file).

The attacker holds /proc/<pid>/exe of a process, waits until it has exited,
then reopens the held file for writing through /proc/self/fd/N."""

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from helpers import REPO, RUNTIME, runtime_is_pyrunc

SCRIPT = r"""
import os, sys
sys.path.insert(0, {repo!r})
from pyrunc import exeseal
how = sys.argv[1]
if how == "bind":
    exeseal.reexec_sealed()
elif how == "persist":
    exeseal.persist_readonly_view()
elif how == "memfd" and not exeseal.exe_is_sealed():
    os.execve(exeseal._sealed_memfd_copy_of_self(), sys.orig_argv, os.environ)
print(os.getpid(), exeseal.exe_is_sealed(), sys.argv[2:], flush=True)
sys.stdin.read()
"""


def attack(tmp_path, how, python=None):
    if python is None:
        python = tmp_path / "python-copy"
        shutil.copy2(os.path.realpath(sys.executable), python)
    script = tmp_path / "victim.py"
    script.write_text(SCRIPT.format(repo=REPO))
    p = subprocess.Popen(
        [str(python), "-IS", str(script), how, "arg with space", ""],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    pid, sealed, argv = p.stdout.readline().split(" ", 2)
    held = os.open(f"/proc/{pid}/exe", os.O_PATH)
    try:
        p.stdin.close()
        assert p.wait() == 0
        try:
            fd = os.open(f"/proc/self/fd/{held}", os.O_WRONLY)
        except OSError as e:
            return sealed == "True", argv.strip(), e.strerror, python
        os.close(fd)
        return sealed == "True", argv.strip(), "writable", python
    finally:
        os.close(held)


def test_unsealed_interpreter_is_writable_through_a_held_exe(tmp_path):
    """The control: without the seal the attack works on this kernel."""
    sealed, _, outcome, _ = attack(tmp_path, "none")
    assert not sealed
    assert outcome == "writable"


def test_read_only_bind_makes_the_held_exe_unwritable(tmp_path):
    sealed, argv, outcome, python = attack(tmp_path, "bind")
    assert sealed
    assert argv == "['arg with space', '']"  # argv survives the re-exec exactly
    assert outcome == "Read-only file system"
    with open(python, "rb") as a, open(os.path.realpath(sys.executable), "rb") as b:
        assert a.read() == b.read()


def test_sealed_memfd_fallback_writes_nothing_of_the_host(tmp_path):
    """The fallback's exe is a private sealed copy: even opened for writing,
    no write reaches it nor the host's file."""
    sealed, _, outcome, python = attack(tmp_path, "memfd")
    assert sealed
    assert outcome in ("writable", "Operation not permitted")
    with open(python, "rb") as a, open(os.path.realpath(sys.executable), "rb") as b:
        assert a.read() == b.read()


def test_sealed_memfd_refuses_writes():
    from pyrunc import exeseal

    fd = exeseal._sealed_memfd_copy_of_self()
    try:
        assert exeseal.exe_is_sealed(f"/proc/self/fd/{fd}")
        w = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY)
        try:
            with pytest.raises(PermissionError):
                os.write(w, b"x")
        finally:
            os.close(w)
    finally:
        os.close(fd)


@pytest.mark.parametrize("entry", ["create", "exec_in"])
def test_the_core_refuses_to_enter_a_container_unsealed(tmp_path, entry):
    """A library caller that skipped the re-exec (this pytest process runs
    the host interpreter as is) is refused before anything is made."""
    from pyrunc import creation, execution
    from pyrunc.errors import PyruncError
    from pyrunc.state import StateStore

    store = StateStore(str(tmp_path / "root"))
    with pytest.raises(PyruncError, match="writable interpreter"):
        if entry == "create":
            creation.create(store, "c1", str(tmp_path))
        else:
            execution.exec_in(store, "c1", None)
    assert not os.path.exists(tmp_path / "root") or os.listdir(tmp_path / "root") == []


@pytest.fixture
def installed_copy(tmp_path):
    """An installation's interpreter copy (DIR/sealed/python3); whatever
    read-only view a test binds on it is undone (this mount namespace is
    the sandbox's)."""
    python = tmp_path / "sealed" / "python3"
    python.parent.mkdir()
    shutil.copy2(os.path.realpath(sys.executable), python)
    yield python
    while os.statvfs(python).f_flag & os.ST_RDONLY:
        subprocess.run(["umount", str(python)], check=True)


def test_persisted_view_seals_every_later_start(installed_copy, tmp_path):
    """The first command binds the copy read-only onto itself (it still ran
    writable and must re-exec); every later start of the copy is sealed
    from its first instruction, no re-exec, and a held exe stays unwritable."""
    first_sealed, _, outcome, _ = attack(tmp_path, "persist", python=installed_copy)
    assert not first_sealed and outcome == "writable"  # the control: that one was not
    assert os.statvfs(installed_copy).f_flag & os.ST_RDONLY
    sealed, argv, outcome, _ = attack(tmp_path, "none", python=installed_copy)
    assert sealed
    assert outcome == "Read-only file system"
    assert argv == "['arg with space', '']"


def test_persisted_view_needs_the_installation_layout(tmp_path):
    """Only a copy in a directory named sealed is bound: never the system's
    interpreter or any other file a caller happens to run."""
    from pyrunc import exeseal

    other = tmp_path / "python-copy"
    shutil.copy2(os.path.realpath(sys.executable), other)
    assert exeseal.persist_readonly_view(str(other)) is False
    assert not os.statvfs(other).f_flag & os.ST_RDONLY


def test_reinstall_keeps_a_current_copy_and_replaces_an_outdated_one(installed_copy, tmp_path):
    """The install of the first call (or ``python -m pyrunc.launcher``) keeps
    a copy of the same interpreter build under its read-only view; after an
    upgrade of the system's Python it unmounts the view and replaces the
    copy (pyrunc/launcher.py)."""
    from pyrunc import exeseal, launcher

    assert exeseal.persist_readonly_view(str(installed_copy))
    launcher._copy_interpreter(os.path.realpath(sys.executable), str(installed_copy))
    assert os.statvfs(installed_copy).f_flag & os.ST_RDONLY  # the same build: left as it was
    upgraded = tmp_path / "python3-upgraded"
    upgraded.write_bytes(b"\x7fELF an upgraded interpreter")
    launcher._copy_interpreter(str(upgraded), str(installed_copy))
    assert not os.statvfs(installed_copy).f_flag & os.ST_RDONLY
    assert installed_copy.read_bytes() == upgraded.read_bytes()
    assert sorted(os.listdir(installed_copy.parent)) == ["python3"]  # no temporary left


@pytest.mark.skipif(not runtime_is_pyrunc or not shutil.which("strace"), reason="pyrunc's launcher, traced with strace")
def test_launcher_starts_sealed_with_one_interpreter_start(rt, bundle):
    """create/run/exec start from the installation's read-only view: one
    execve of the launcher, no re-exec (issue 21: the second interpreter
    start cost 9-20 ms per command)."""
    bundle.set_args("true")
    assert rt.run("warm-" + os.urandom(3).hex(), bundle).returncode == 0  # the view exists now
    with tempfile.NamedTemporaryFile("r") as trace:
        cid = "traced-" + os.urandom(3).hex()
        rt._track(cid)
        p = subprocess.run(
            [
                "strace",
                "-f",
                "-qq",
                "-e",
                "trace=execve,execveat",
                "-o",
                trace.name,
                RUNTIME,
                "--root",
                rt.root,
                "run",
                "--bundle",
                bundle.path,
                cid,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert p.returncode == 0, p.stderr
        execs = [ln for ln in trace.read().splitlines() if "exec" in ln and "= 0" in ln]
        # the waiter (pyrunc/waiter.py) is no interpreter: a 1.4 KiB program
        calls = [ln for ln in execs if '"pyrunc:[2:INIT]"' not in ln]
    assert len(calls) == 2, calls  # the launcher, then the container's true
    assert len(execs) - len(calls) <= 1, execs
    assert RUNTIME in calls[0] and "execveat" not in "".join(calls)
