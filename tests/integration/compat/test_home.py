"""$HOME of the container process, against runc on the same bundle.

When ``process.env`` has no HOME (or an empty one), runc sets it from the
container's /etc/passwd: the home field of the first entry whose uid is the
process user's, ``/`` when there is no such entry or no file.  That holds
for the init (``run``, ``create``/``start``) and for ``exec`` (also with
``--user``).  Docker's ``--user 1000`` containers rely on it.

The image's passwd gets entries the host cannot have (home directories that
exist nowhere), so a HOME taken from the host's passwd, or a constant,
fails these tests.  What the process sees is its own ``$HOME``; what the
host sees is ``/proc/<pid>/environ`` of the started process.
"""

import os

import pytest

from helpers import exec_done, new_id, wait_for

PASSWD = (
    "root:x:0:0:root:/img/root:/bin/sh\n"
    "  alice:x:4242:4242:first entry wins:/img/alice:/bin/sh  \n"
    "alice2:x:4242:4242:same uid, later:/img/alice2:/bin/sh\n"
    "bob:x:1000:1000::/img/bob:/bin/sh\n"
)


@pytest.fixture
def img(bundle):
    with open(os.path.join(bundle.rootfs, "etc/passwd"), "w") as f:
        f.write(PASSWD)
    env = bundle.config["process"]["env"]
    env[:] = [e for e in env if not e.startswith("HOME=")]
    return bundle


def _user(bundle, uid):
    bundle.config["process"]["user"] = {"uid": uid, "gid": uid}


def _environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        return [e.decode() for e in f.read().split(b"\0") if e]


def _run_home(rt, bundle):
    bundle.sh('echo "HOME=[$HOME]"')
    p = rt.run(new_id(), bundle)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@pytest.mark.parametrize("uid,home", [(0, "/img/root"), (1000, "/img/bob"), (4242, "/img/alice"), (1234, "/")])
def test_run_sets_home_from_the_images_passwd(any_rt, img, uid, home):
    # 4242: blanks around the line are ignored and the first entry wins;
    # 1234: no entry at all -> "/"
    _user(img, uid)
    assert _run_home(any_rt, img) == f"HOME=[{home}]"


def test_configured_home_is_kept_and_an_empty_one_replaced(any_rt, img):
    _user(img, 1000)
    img.config["process"]["env"].append("HOME=/configured")
    assert _run_home(any_rt, img) == "HOME=[/configured]"
    img.config["process"]["env"][-1] = "HOME="
    assert _run_home(any_rt, img) == "HOME=[/img/bob]"


def test_no_passwd_file_means_slash(any_rt, img):
    os.unlink(os.path.join(img.rootfs, "etc/passwd"))
    _user(img, 1000)
    assert _run_home(any_rt, img) == "HOME=[/]"


def test_created_init_and_exec_get_home_seen_from_the_host(any_rt, img):
    """create/start: the started process's environment (read from the
    host) has HOME exactly once; exec without and with --user takes the
    exec user's entry (the container's env has no HOME: it is not inherited
    from the init)."""
    _user(img, 1000)
    img.set_args("sleep", "1000")
    cid = new_id()
    p = any_rt.create(cid, img)
    assert p.returncode == 0, p.stderr
    assert any_rt.start(cid).returncode == 0
    pid = any_rt.state_json(cid)["pid"]
    wait_for(lambda: exec_done(pid, "sleep"))
    homes = [e for e in _environ(pid) if e.startswith("HOME=")]
    assert homes == ["HOME=/img/bob"]

    def exec_home(*opts):
        p = any_rt("exec", *opts, cid, "sh", "-c", 'echo "HOME=[$HOME]"')
        assert p.returncode == 0, p.stderr
        return p.stdout.strip()

    assert exec_home() == "HOME=[/img/bob]"
    assert exec_home("--user", "0") == "HOME=[/img/root]"
    assert exec_home("--user", "4242:4242") == "HOME=[/img/alice]"
    assert exec_home("--user", "1234") == "HOME=[/]"
    assert exec_home("--env", "HOME=/given") == "HOME=[/given]"
    # a detached exec, seen from the host
    pid_file = os.path.join(img.path, "exec.pid")
    p = any_rt("exec", "-d", "--pid-file", pid_file, "--user", "0", cid, "sleep", "999")
    assert p.returncode == 0, p.stderr
    with open(pid_file) as f:
        exec_pid = int(f.read())
    wait_for(lambda: exec_done(exec_pid, "sleep"))
    assert [e for e in _environ(exec_pid) if e.startswith("HOME=")] == ["HOME=/img/root"]
    any_rt.kill(cid, "KILL")


def test_passwd_that_is_not_a_regular_file(any_rt, img):
    """pyrunc's own robustness, deliberately not runc's behaviour (checked
    by hand against runc 1.1.5, so runc is skipped here):

    * a FIFO at /etc/passwd: pyrunc reads only regular files, opened
      non-blocking, and falls back to "/"; runc's blocking open waits for a
      writer forever (`run` hangs);
    * /etc/passwd -> /proc/self/fd/0: pyrunc follows no magic link in the
      image's files (it could lead to any fd the runtime holds) and falls
      back to "/"; runc follows it and reads its own stdin."""
    if any_rt.name == "runc":
        pytest.skip("runc hangs on a FIFO /etc/passwd and follows magic links to its fds")
    path = os.path.join(img.rootfs, "etc/passwd")
    os.unlink(path)
    os.mkfifo(path)
    _user(img, 1000)
    assert _run_home(any_rt, img) == "HOME=[/]"
    # fd 0 is a regular file with a matching entry: not seen
    os.unlink(path)
    os.symlink("/proc/self/fd/0", path)
    img.sh('echo "HOME=[$HOME]"')
    p = any_rt.run(new_id(), img, input="u:x:1000:1000::/from-stdin:/bin/sh\n")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "HOME=[/]"
