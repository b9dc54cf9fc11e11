"""Lifecycle hooks: order, state JSON on stdin, namespaces they run in, failures, timeout."""

import json
import os
import time

import pytest

from helpers import runc_lacks, cgroup_dirs, new_id, pid_alive, processes_rooted_under, wait_for

# $1 = hook name, $2 = directory to log into (host path, or /shared inside the container)
HOOK_SCRIPT = """#!/bin/busybox sh
echo "$1" >> "$2/order"
cat > "$2/$1.json"
readlink /proc/self/ns/mnt > "$2/$1.mntns"
readlink /proc/self/ns/uts > "$2/$1.utsns"
echo "$HOOK_ENV" > "$2/$1.env"
exit ${HOOK_EXIT:-0}
"""

HOST_HOOKS = ["prestart", "createRuntime", "createContainer", "poststart", "poststop"]


def write_hook(path, body=HOOK_SCRIPT):
    with open(path, "w") as f:
        f.write(body)
    os.chmod(path, 0o755)
    return str(path)


def add_hooks(bundle, tmp_path, fail=None, extra_env=()):
    """Install the logging hook for all six kinds; the ``fail`` kind exits 1."""
    host_hook = write_hook(tmp_path / "hook.sh")
    # startContainer's path resolves in the container: the script lives in /shared
    write_hook(os.path.join(bundle.shared, "hook.sh"))
    hooks = {}
    for kind in HOST_HOOKS + ["startContainer"]:
        inside = kind == "startContainer"
        env = [f"HOOK_ENV=env-of-{kind}", *extra_env]
        if kind == fail:
            env.append("HOOK_EXIT=1")
        hooks[kind] = [
            {
                "path": "/shared/hook.sh" if inside else host_hook,
                "args": ["hook.sh", kind, "/shared" if inside else bundle.shared],
                "env": env,
            }
        ]
    bundle.config["hooks"] = hooks
    bundle.config["hostname"] = "hooked-box"


def read(bundle, name):
    with open(os.path.join(bundle.shared, name)) as f:
        return f.read()


def order(bundle):
    try:
        return read(bundle, "order").split()
    except FileNotFoundError:
        return []


@runc_lacks("runc 1.1 runs poststart/startContainer hooks during create and omits annotations")
def test_hook_order_and_state_on_stdin(rt, bundle, tmp_path):
    cid = new_id()
    add_hooks(bundle, tmp_path)
    bundle.set_args("sleep", "100")
    bundle.config["annotations"] = {"hook.test": "yes"}

    assert rt.create(cid, bundle).returncode == 0
    assert order(bundle) == ["prestart", "createRuntime", "createContainer"]
    pid = rt.state_json(cid)["pid"]

    p = rt.start(cid)
    assert p.returncode == 0, p.stderr
    assert order(bundle) == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart"]

    assert rt.kill(cid, "KILL").returncode == 0
    rt.wait_status(cid, "stopped")
    assert order(bundle) == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart"]
    p = rt.delete(cid)
    assert p.returncode == 0, p.stderr
    assert order(bundle) == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]

    bundle_path = os.path.realpath(bundle.path)
    for kind in HOST_HOOKS + ["startContainer"]:
        st = json.loads(read(bundle, f"{kind}.json"))
        assert st["id"] == cid, kind
        assert st["bundle"] == bundle_path, kind
        assert isinstance(st["ociVersion"], str) and st["ociVersion"], kind
        assert st.get("annotations") == {"hook.test": "yes"}, kind
        assert read(bundle, f"{kind}.env").strip() == f"env-of-{kind}"
        # prestart/createRuntime hooks find the container's namespaces through
        # the pid (network hooks do); 'creating' makes pid optional in the spec,
        # so createContainer is not held to it
        if kind not in ("poststop", "createContainer"):
            assert st["pid"] == pid, kind
    statuses = {k: json.loads(read(bundle, f"{k}.json"))["status"] for k in HOST_HOOKS + ["startContainer"]}
    assert statuses["prestart"] == "creating"
    assert statuses["createRuntime"] == "creating"
    assert statuses["createContainer"] == "creating"
    assert statuses["poststart"] == "running"
    assert statuses["poststop"] == "stopped"


def test_hooks_run_in_the_prescribed_namespaces(rt, bundle, tmp_path):
    cid = new_id()
    add_hooks(bundle, tmp_path)
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    pid = rt.state_json(cid)["pid"]
    container_mnt = os.readlink(f"/proc/{pid}/ns/mnt")
    assert rt.start(cid).returncode == 0
    host_mnt = os.readlink("/proc/self/ns/mnt")
    host_uts = os.readlink("/proc/self/ns/uts")
    container_uts = os.readlink(f"/proc/{pid}/ns/uts")
    assert container_uts != host_uts
    for kind in ("prestart", "createRuntime", "poststart"):
        assert read(bundle, f"{kind}.mntns").strip() == host_mnt, kind
        assert read(bundle, f"{kind}.utsns").strip() == host_uts, kind
    for kind in ("createContainer", "startContainer"):
        assert read(bundle, f"{kind}.mntns").strip() == container_mnt, kind
        assert read(bundle, f"{kind}.utsns").strip() == container_uts, kind


def test_hook_args_passed(rt, bundle, tmp_path):
    cid = new_id()
    script = write_hook(tmp_path / "args.sh", f'#!/bin/busybox sh\necho "$0|$1|$2|$#" > {bundle.shared}/args\n')
    bundle.config["hooks"] = {"createRuntime": [{"path": script, "args": ["argv-zero", "one", "two words"]}]}
    bundle.sh("exit 0")
    assert rt.run(cid, bundle).returncode == 0
    line = read(bundle, "args").strip()
    assert line.split("|")[1:] == ["one", "two words", "2"]


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create_and_leaves_nothing(rt, bundle, tmp_path, kind):
    cid = new_id()
    add_hooks(bundle, tmp_path, fail=kind)
    bundle.set_args("sleep", "100")
    p = rt.create(cid, bundle)
    assert p.returncode == 1
    assert "Traceback" not in p.stderr and p.stderr.strip()
    expected = HOST_HOOKS[: HOST_HOOKS.index(kind) + 1]
    assert order(bundle)[: len(expected)] == expected
    assert "startContainer" not in order(bundle)
    assert rt.state(cid).returncode == 1
    assert os.listdir(rt.root) == []
    assert not cgroup_dirs(bundle.cgroups_path)
    wait_for(lambda: not processes_rooted_under(bundle.rootfs), timeout=5)


@runc_lacks("runc 1.1 runs poststart/startContainer hooks during create and omits annotations")
def test_failing_start_container_hook_fails_start(rt, bundle, tmp_path):
    cid = new_id()
    add_hooks(bundle, tmp_path, fail="startContainer")
    bundle.sh("echo ran > /shared/user-process-ran; sleep 100")
    assert rt.create(cid, bundle).returncode == 0
    p = rt.start(cid)
    assert p.returncode == 1
    assert "poststart" not in order(bundle)
    time.sleep(0.2)
    assert not os.path.exists(os.path.join(bundle.shared, "user-process-ran"))
    rt.wait_status(cid, "stopped")


@runc_lacks("spec 1.3.0: failing poststart stops the container")
def test_failing_poststart_stops_the_container(rt, bundle, tmp_path):
    """runtime-spec 1.3.0: a failing poststart hook stops the container."""
    cid = new_id()
    add_hooks(bundle, tmp_path, fail="poststart")
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    pid = rt.state_json(cid)["pid"]
    p = rt.start(cid)
    assert p.returncode == 1
    assert p.stderr.strip() and "Traceback" not in p.stderr
    st = rt.wait_status(cid, "stopped")
    assert st["pid"] == 0
    wait_for(lambda: not pid_alive(pid), timeout=5)


def test_failing_poststop_only_warns(rt, bundle, tmp_path):
    cid = new_id()
    add_hooks(bundle, tmp_path, fail="poststop")
    bundle.sh("exit 0")
    assert rt.create(cid, bundle).returncode == 0
    assert rt.start(cid).returncode == 0
    rt.wait_status(cid, "stopped")
    p = rt.delete(cid)
    assert p.returncode == 0, p.stderr
    assert order(bundle)[-1] == "poststop"
    assert rt.state(cid).returncode == 1


def test_hook_timeout(rt, bundle, tmp_path):
    cid = new_id()
    script = write_hook(tmp_path / "slow.sh", "#!/bin/busybox sh\nexec /bin/busybox sleep 30\n")
    bundle.config["hooks"] = {"createRuntime": [{"path": script, "timeout": 1}]}
    bundle.set_args("sleep", "100")
    t0 = time.monotonic()
    p = rt.create(cid, bundle)
    elapsed = time.monotonic() - t0
    assert p.returncode == 1
    assert elapsed < 10, elapsed
    assert os.listdir(rt.root) == []
    assert not cgroup_dirs(bundle.cgroups_path)


@runc_lacks("runc 1.1 runs poststart/startContainer hooks during create and omits annotations")
def test_run_runs_all_hooks(rt, bundle, tmp_path):
    cid = new_id()
    add_hooks(bundle, tmp_path)
    bundle.sh("exit 0")
    p = rt.run(cid, bundle)
    assert p.returncode == 0, p.stderr
    assert order(bundle) == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]


def test_hook_failure_names_signals_as_the_signal_module_does():
    import signal
    from pyrunc.hooks import _signal_name

    assert {s.value: _signal_name(s.value) for s in signal.Signals} == {s.value: s.name for s in signal.Signals}
