"""AppArmor applied for real: ``process.apparmorProfile`` and ``exec
--apparmor`` confine the process from its execve on, exactly as runc does.

Needs a kernel with AppArmor enabled and Debian's ``apparmor_parser`` to
load a test profile: the pure cgroup v2 VM of ``make test-cgroupv2`` has
both (its Debian kernel enables AppArmor; make fetches the parser from
Debian's apparmor package into build/apparmor).  Skipped elsewhere: this
project's host runs without AppArmor (tests/integration/test_security.py covers the
refusal there)."""

import os
import shutil
import subprocess

import pytest

from helpers import REPO, Runtime, assert_one_error_line, new_id, runtime_is_pyrunc, wait_for
from pyrunc import waiter

ENABLED = "/sys/module/apparmor/parameters/enabled"
SECURITYFS = "/sys/kernel/security"


def _apparmor_enabled():
    try:
        with open(ENABLED) as f:
            return f.read(1) == "Y"
    except OSError:
        return False


def _parser():
    for p in (
        os.environ.get("APPARMOR_PARSER"),
        shutil.which("apparmor_parser"),
        os.path.join(REPO, "build", "apparmor", "sbin", "apparmor_parser"),
    ):
        if p and os.access(p, os.X_OK):
            return p
    return None


pytestmark = pytest.mark.skipif(
    not (_apparmor_enabled() and _parser()),
    reason="needs AppArmor enabled and apparmor_parser (make test-cgroupv2 runs these)",
)

# Everything allowed but writes to /shared/denied*: enough to see the
# profile confine the process and nothing else break.
PROFILE = """profile {name} flags=(attach_disconnected,mediate_deleted) {{
  file,
  capability,
  network,
  mount,
  umount,
  pivot_root,
  ptrace,
  signal,
  unix,
  deny /shared/denied* w,
}}
"""


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    mounted = False
    if not os.path.isdir(os.path.join(SECURITYFS, "apparmor")):
        subprocess.run(["mount", "-t", "securityfs", "securityfs", SECURITYFS], check=True)
        mounted = True
    name = f"pyrunc-test-{os.getpid()}"
    path = tmp_path_factory.mktemp("apparmor") / "profile"
    path.write_text(PROFILE.format(name=name))
    subprocess.run([_parser(), "-r", "-W", str(path)], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run([_parser(), "-R", str(path)], capture_output=True)
        if mounted:
            subprocess.run(["umount", SECURITYFS])


def _confined_script(bundle):
    bundle.sh(
        "cat /proc/self/attr/current; echo; "
        "echo x > /shared/denied; echo denied=$?; echo x > /shared/allowed; echo allowed=$?"
    )


def test_run_confines_the_process(rt, bundle, profile):
    bundle.config["process"]["apparmorProfile"] = profile
    _confined_script(bundle)
    p = rt.run(new_id(), bundle)
    assert p.returncode == 0, p.stderr
    assert f"{profile} (enforce)" in p.stdout
    assert "denied=1" in p.stdout and "allowed=0" in p.stdout
    assert not os.path.exists(os.path.join(bundle.shared, "denied"))


def test_create_then_start_confines_the_process(rt, bundle, profile):
    """As the engines run a container: create, then start (pyrunc: the
    waiter writes the label after its own execve, through a checked
    procfs)."""
    bundle.config["process"]["apparmorProfile"] = profile
    bundle.sh(
        "(cat /proc/self/attr/current; echo; echo x > /shared/denied; echo denied=$?; "
        "echo x > /shared/allowed; echo allowed=$?) > /shared/out 2>&1; touch /shared/done"
    )
    cid = new_id()
    assert rt.create(cid, bundle).returncode == 0
    pid = rt.state_json(cid)["pid"]
    if runtime_is_pyrunc and waiter.program() is not None:
        wait_for(lambda: open(f"/proc/{pid}/comm").read().strip() == waiter.NAME)
    assert rt.start(cid).returncode == 0
    wait_for(lambda: os.path.exists(os.path.join(bundle.shared, "done")))
    with open(os.path.join(bundle.shared, "out")) as f:
        out = f.read()
    assert f"{profile} (enforce)" in out and "denied=1" in out and "allowed=0" in out, out
    assert not os.path.exists(os.path.join(bundle.shared, "denied"))


def test_the_host_sees_the_init_confined_and_exec_inherits_or_overrides(rt, bundle, profile):
    bundle.config["process"]["apparmorProfile"] = profile
    bundle.set_args("sleep", "100")
    cid = new_id()
    assert rt.create(cid, bundle).returncode == 0
    pid = rt.state_json(cid)["pid"]
    if runtime_is_pyrunc and waiter.program() is not None:
        # the waiter waits, and writes the label itself (pyrunc/waiter.py)
        wait_for(lambda: open(f"/proc/{pid}/comm").read().strip() == waiter.NAME)
    # created: the init is not confined yet (the profile applies at execve)
    with open(f"/proc/{pid}/attr/current") as f:
        assert f.read().strip() == "unconfined"
    assert rt.start(cid).returncode == 0
    wait_for(lambda: open(f"/proc/{pid}/attr/current").read().strip() == f"{profile} (enforce)")
    # exec: the container's profile by default, --apparmor overrides
    p = rt("exec", cid, "cat", "/proc/self/attr/current")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == f"{profile} (enforce)"
    p = rt("exec", "--apparmor", "unconfined", cid, "cat", "/proc/self/attr/current")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "unconfined"
    p = rt("exec", cid, "sh", "-c", "echo x > /shared/denied-exec")
    assert p.returncode != 0
    assert not os.path.exists(os.path.join(bundle.shared, "denied-exec"))
    p = rt("exec", "--apparmor", profile + "-not-loaded", cid, "true")
    assert p.returncode == 255  # an exec failure, as runc's
    if runtime_is_pyrunc:
        lines = [line for line in p.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "is the profile loaded?" in lines[0], p.stderr


def test_a_profile_that_is_not_loaded_fails_create_and_leaves_nothing(rt, bundle, profile):
    bundle.config["process"]["apparmorProfile"] = profile + "-not-loaded"
    bundle.set_args("true")
    p = rt.run(new_id(), bundle)
    assert p.returncode != 0
    if runtime_is_pyrunc:
        line = assert_one_error_line(p, contains="apparmorProfile")
        assert "not-loaded" in line and "is the profile loaded?" in line, line
    assert os.listdir(rt.root) == []


@pytest.mark.skipif(
    not runtime_is_pyrunc or not os.access("/usr/sbin/runc", os.X_OK), reason="differential against Debian's runc"
)
def test_same_confinement_as_runc(root, bundle, profile, tmp_path):
    bundle.config["process"]["apparmorProfile"] = profile
    _confined_script(bundle)
    outputs = {}
    for name, path in (("pyrunc", None), ("runc", "/usr/sbin/runc")):
        r = Runtime(str(tmp_path / name), **({"path": path} if path else {}))
        p = r.run(new_id(), bundle)
        assert p.returncode == 0, (name, p.stderr)
        outputs[name] = p.stdout
        r.cleanup()
    assert outputs["pyrunc"] == outputs["runc"]


def test_features_say_apparmor_is_enabled(rt):
    if not runtime_is_pyrunc:
        pytest.skip("pyrunc's features document")
    import json

    assert json.loads(rt("features").stdout)["linux"]["apparmor"]["enabled"] is True
