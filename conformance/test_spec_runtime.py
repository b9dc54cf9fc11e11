"""runtime.md: state, lifecycle and the five operations."""

import json
import os
import subprocess
import time

import pytest

from harness import CGROUP_V2, CHECKER, SPEC_DIR, cgroup_dir, cgroup_path, pid_alive, schema_validator, systemd_units

clause = pytest.mark.clause
RT = "runtime.md"


def sleeper(lab, seconds=30):
    return lab.bundle(["/bin/sleep", str(seconds)])


def created(lab, b):
    r = lab.create(b)
    assert r.ok, f"create failed: {r}"
    return lab.state(b.cid)


# ---------------------------------------------------------------- state


@clause(RT, "State", "When serialized in JSON, the format MUST adhere to the JSON Schema")
@clause(RT, "Query State", "This operation MUST return the state of a container as specified in the State section.")
def test_state_matches_schema(lab):
    if not (SPEC_DIR / "schema").is_dir():
        pytest.skip("spec schema directory not present")
    b = sleeper(lab)
    st = created(lab, b)
    assert st is not None, "state printed no JSON"
    schema_validator("state-schema.json").validate(st)
    assert st["id"] == b.cid
    assert st["status"] == "created"
    assert os.path.isabs(st["bundle"]) and os.path.samefile(st["bundle"], b.path)
    assert isinstance(st["pid"], int) and st["pid"] > 0


@clause(RT, "State", "This MUST be unique across all containers on this host.", context="id")
@clause(RT, "Create", "If the ID provided is not unique across all containers within the scope of the runtime")
def test_duplicate_id_rejected(lab):
    b = sleeper(lab)
    st = created(lab, b)
    b2 = sleeper(lab)
    r = lab.create(b2, cid=b.cid)
    assert not r.ok, "a second create with the same id succeeded"
    st2 = lab.state(b.cid)
    assert st2 and st2["pid"] == st["pid"] and os.path.samefile(st2["bundle"], b.path), (
        "the first container was disturbed by the rejected create"
    )


@clause(
    RT,
    "State",
    "Additional values MAY be defined by the runtime, however, they MUST be used to represent new runtime states",
)
def test_status_values_through_lifecycle(lab):
    known = {"creating", "created", "running", "stopped", "paused"}
    b = lab.bundle(["/bin/sleep", "1"])
    seen = [created(lab, b)["status"]]
    assert lab.start(b.cid).ok
    seen.append(lab.status(b.cid))
    seen.append(lab.wait_status(b.cid, "stopped"))
    assert seen[0] == "created" and seen[-1] == "stopped", seen
    assert set(seen) <= known, f"unexpected status values {seen}"


@clause(
    RT,
    "Scope of a Container",
    "MUST be able to use the operations defined in this specification against that same container.",
)
@clause(RT, "Operations", "Unless otherwise stated, runtimes MUST support the following operations.")
def test_full_lifecycle(lab):
    b = sleeper(lab)
    created(lab, b)
    assert lab.status(b.cid) == "created"
    assert lab.start(b.cid).ok
    assert lab.status(b.cid) == "running"
    assert lab.kill(b.cid, "KILL").ok
    assert lab.wait_status(b.cid, "stopped") == "stopped"
    assert lab.delete(b.cid).ok
    assert lab.state(b.cid) is None


# ---------------------------------------------------------------- lifecycle


@clause(RT, "Lifecycle", "The container's runtime environment MUST be created according to the configuration")
@clause(RT, "Create", "All of the properties configured in `config.json` except for `process` MUST be applied.")
def test_create_applies_config_before_start(lab):
    b = sleeper(lab)
    b.config["hostname"] = "applied-at-create"
    st = created(lab, b)
    pid = st["pid"]
    # namespaces exist and the hostname is set before start
    assert os.readlink(f"/proc/{pid}/ns/uts") != os.readlink("/proc/self/ns/uts")
    assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    p = subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"], capture_output=True, text=True)
    assert p.stdout.strip() == "applied-at-create"


@clause(
    RT,
    "Lifecycle",
    "If the runtime is unable to create the environment specified in the `config.json`, it MUST generate an error.",
)
@clause(
    RT,
    "Create",
    "If the runtime cannot apply a property as specified in the configuration, it MUST generate an error and a new container MUST NOT be created.",
)
def test_unappliable_property_errors_and_creates_nothing(lab):
    b = sleeper(lab)
    b.config["mounts"].append(
        {"destination": "/mnt", "type": "bind", "source": str(b.path / "does-not-exist"), "options": ["bind"]}
    )
    r = lab.create(b)
    assert not r.ok, "create with a bind mount of a missing source succeeded"
    assert lab.state(b.cid) is None, "a container exists after the failed create"


@clause(RT, "Lifecycle", "the user-specified program (from `process`) MUST NOT be run at this time.")
@clause(RT, "Create", "`process.args` MUST NOT be applied until triggered by the `start` operation.")
def test_process_not_run_before_start(lab):
    b = lab.bundle(["/bin/touch", "/oc-out/ran"])
    created(lab, b)
    time.sleep(0.5)
    assert not (b.out / "ran").exists(), "process.args ran before start"
    assert lab.start(b.cid).ok
    assert lab.wait_status(b.cid, "stopped") == "stopped"
    assert (b.out / "ran").exists(), "process.args did not run after start"


@clause(RT, "Lifecycle", "Any updates to `config.json` after this step MUST NOT affect the container.")
def test_config_changes_after_create_ignored(lab):
    b = lab.bundle([CHECKER, "report"])
    created(lab, b)
    cfg = json.loads((b.path / "config.json").read_text())
    cfg["process"]["args"] = ["/bin/touch", "/oc-out/changed"]
    cfg["process"]["env"].append("OC_CHANGED=1")
    (b.path / "config.json").write_text(json.dumps(cfg))
    assert lab.start(b.cid).ok
    assert lab.wait_status(b.cid, "stopped") == "stopped"
    assert not (b.out / "changed").exists(), "start ran the args of the edited config.json"
    assert "OC_CHANGED=1" not in b.report()["env"]


@clause(RT, "Lifecycle", "The runtime MUST run the user-specified program, as specified by `process`.")
@clause(RT, "Start", "This operation MUST run the user-specified program as specified by `process`.")
def test_start_runs_process(lab):
    b = lab.bundle([CHECKER, "report"])
    b.process["env"].append("OC_MARK=42")
    b.process["cwd"] = "/tmp"
    rep = lab.run_to_exit(b)
    assert "OC_MARK=42" in rep["env"] and rep["cwd"] == "/tmp"


@clause(RT, "Lifecycle", "The container MUST be destroyed by undoing the steps performed during create phase")
@clause(RT, "Delete", "Deleting a container MUST delete the resources that were created during the `create` step.")
def test_delete_undoes_create(lab):
    b = sleeper(lab)
    st = created(lab, b)
    pid = st["pid"]
    cg = [line.split(":", 2) for line in open(f"/proc/{pid}/cgroup").read().splitlines()]
    cg_dirs = [
        cgroup_dir(c[1], c[2]) for c in cg if (c[1] in ("memory", "pids", "devices") or CGROUP_V2) and c[2] != "/"
    ]
    assert cg_dirs and all(os.path.isdir(d) for d in cg_dirs), f"no container cgroups found: {cg}"
    assert lab.kill(b.cid, "KILL").ok
    assert lab.wait_status(b.cid, "stopped") == "stopped"
    assert lab.delete(b.cid).ok
    assert lab.state(b.cid) is None
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid), "container process survived delete"
    left = [d for d in cg_dirs if os.path.isdir(d)]
    assert not left, f"cgroups left after delete: {left}"
    assert not systemd_units(b.cid), "systemd unit left after delete"


@clause(
    RT,
    "Delete",
    "Note that resources associated with the container, but not created by this container, MUST NOT be deleted.",
)
def test_delete_keeps_foreign_resources(lab, tmp_path):
    b = sleeper(lab)
    src = b.path / "host-data"
    src.mkdir()
    (src / "keep").write_text("x")
    b.config["mounts"].append({"destination": "/data", "type": "bind", "source": str(src), "options": ["rbind", "rw"]})
    created(lab, b)
    assert lab.kill(b.cid, "KILL").ok
    lab.wait_status(b.cid, "stopped")
    assert lab.delete(b.cid).ok
    assert (src / "keep").read_text() == "x", "a bind-mount source was removed by delete"
    assert (b.path / "config.json").exists() and (b.rootfs / "checker").exists(), "bundle was removed by delete"


@clause(
    RT, "Errors", "generating an error MUST leave the state of the environment as if the operation were never attempted"
)
def test_failed_create_leaves_no_trace(lab):
    before_root = sorted(os.listdir(lab.rt.root))
    b = sleeper(lab)
    b.config["process"]["cwd"] = "relative/cwd"
    b.config["mounts"].append(
        {"destination": "/mnt", "type": "bind", "source": str(b.path / "missing"), "options": ["bind"]}
    )
    r = lab.create(b)
    assert not r.ok
    assert lab.state(b.cid) is None
    assert sorted(os.listdir(lab.rt.root)) == before_root, "state directory changed by a failed create"
    assert not os.path.exists(cgroup_dir("pids", cgroup_path(b.linux["cgroupsPath"]))), "cgroup left by a failed create"
    assert not systemd_units(b.cid), "systemd unit left by a failed create"


# ---------------------------------------------------------------- hooks (runtime.md view)


def hook(b, name, script, **extra):
    h = {"path": "/bin/sh", "args": ["sh", "-c", script], "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]}
    h.update(extra)
    b.config.setdefault("hooks", {}).setdefault(name, []).append(h)


HOOK_NAMES = ["prestart", "createRuntime", "createContainer"]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("prestart", marks=clause(RT, "Lifecycle", "The `prestart` hooks MUST be invoked by the runtime.")),
        pytest.param(
            "createRuntime", marks=clause(RT, "Lifecycle", "The `createRuntime` hooks MUST be invoked by the runtime.")
        ),
        pytest.param(
            "createContainer",
            marks=clause(RT, "Lifecycle", "The `createContainer` hooks MUST be invoked by the runtime."),
        ),
    ],
)
def test_create_hooks_invoked(lab, name):
    b = sleeper(lab)
    hook(b, name, f"cat > {b.out}/{name}.json")
    created(lab, b)
    st = json.loads((b.out / f"{name}.json").read_text())
    assert st["id"] == b.cid


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("prestart", marks=clause(RT, "Lifecycle", "If any `prestart` hook fails")),
        pytest.param("createRuntime", marks=clause(RT, "Lifecycle", "If any `createRuntime` hook fails")),
        pytest.param("createContainer", marks=clause(RT, "Lifecycle", "If any `createContainer` hook fails")),
    ],
)
def test_create_hook_failure(lab, name):
    b = sleeper(lab)
    hook(b, name, "exit 3")
    r = lab.create(b)
    assert not r.ok, f"create succeeded although a {name} hook failed"
    st = lab.state(b.cid)
    assert st is None or st["status"] == "stopped", f"container left {st and st['status']}"
    if st and st.get("pid"):
        assert not pid_alive(st["pid"])


@clause(RT, "Lifecycle", "The `startContainer` hooks MUST be invoked by the runtime.")
def test_start_container_hook_invoked(lab):
    b = sleeper(lab)
    hook(b, "startContainer", "cat > /oc-out/startContainer.json")
    created(lab, b)
    assert not (b.out / "startContainer.json").exists(), "startContainer ran during create"
    assert lab.start(b.cid).ok
    assert json.loads((b.out / "startContainer.json").read_text())["id"] == b.cid


@clause(RT, "Lifecycle", "If any `startContainer` hook fails")
def test_start_container_hook_failure(lab):
    b = lab.bundle(["/bin/touch", "/oc-out/ran"])
    hook(b, "startContainer", "exit 3")
    created(lab, b)
    r = lab.start(b.cid)
    assert not r.ok, "start succeeded although a startContainer hook failed"
    time.sleep(0.3)
    assert not (b.out / "ran").exists(), "user program ran after a failing startContainer hook"
    assert lab.status(b.cid) in (None, "stopped")


@clause(RT, "Lifecycle", "The `poststart` hooks MUST be invoked by the runtime.")
def test_poststart_hook_invoked(lab):
    b = sleeper(lab)
    hook(b, "poststart", f"cat > {b.out}/poststart.json")
    created(lab, b)
    assert not (b.out / "poststart.json").exists(), "poststart hook ran during create"
    assert lab.start(b.cid).ok
    assert json.loads((b.out / "poststart.json").read_text())["id"] == b.cid


@clause(RT, "Lifecycle", "If any `poststart` hook fails")
def test_poststart_hook_failure(lab):
    b = sleeper(lab)
    hook(b, "poststart", "exit 3")
    r = lab.create(b)
    assert r.ok, f"create failed (was the poststart hook run by create?): {r}"
    pid = lab.state(b.cid)["pid"]
    r = lab.start(b.cid)
    assert not r.ok, "start succeeded although a poststart hook failed (spec 1.3.0: error and stop)"
    deadline = time.monotonic() + 5
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid), "container kept running after a failing poststart hook"


@clause(RT, "Lifecycle", "The `poststop` hooks MUST be invoked by the runtime.")
def test_poststop_hook_invoked(lab):
    b = lab.bundle(["/bin/true"])
    hook(b, "poststop", f"cat > {b.out}/poststop.json")
    created(lab, b)
    assert lab.start(b.cid).ok
    lab.wait_status(b.cid, "stopped")
    assert not (b.out / "poststop.json").exists()
    assert lab.delete(b.cid).ok
    assert json.loads((b.out / "poststop.json").read_text())["id"] == b.cid


@clause(RT, "Lifecycle", "If any `poststop` hook fails, the runtime MUST log a warning")
@clause(RT, "Warnings", "logging a warning does not change the flow of the operation")
def test_poststop_failure_only_warns(lab):
    b = lab.bundle(["/bin/true"])
    hook(b, "poststop", "exit 3")
    hook(b, "poststop", f"touch {b.out}/second")
    created(lab, b)
    assert lab.start(b.cid).ok
    lab.wait_status(b.cid, "stopped")
    r = lab.delete(b.cid)
    assert r.ok, f"delete failed because of a failing poststop hook: {r}"
    assert (b.out / "second").exists(), "the hooks after the failing poststop hook did not run"
    assert lab.state(b.cid) is None


# ---------------------------------------------------------------- operations


@pytest.mark.parametrize(
    "op",
    [
        pytest.param(
            "state",
            marks=clause(
                RT, "Query State", "This operation MUST generate an error if it is not provided the ID of a container."
            ),
        ),
        pytest.param(
            "start",
            marks=clause(RT, "Start", "This operation MUST generate an error if it is not provided the container ID."),
        ),
        pytest.param(
            "kill",
            marks=clause(RT, "Kill", "This operation MUST generate an error if it is not provided the container ID."),
        ),
        pytest.param(
            "delete",
            marks=clause(RT, "Delete", "This operation MUST generate an error if it is not provided the container ID."),
        ),
    ],
)
def test_operation_without_id_errors(lab, op):
    r = lab.rt.run(op)
    assert not r.ok, f"`{op}` without an id exited 0"


@clause(RT, "Query State", "Attempting to query a container that does not exist MUST generate an error.")
def test_state_of_missing_container(lab):
    r = lab.rt.run("state", lab.new_id())
    assert not r.ok


@clause(
    RT,
    "Create",
    "This operation MUST generate an error if it is not provided a path to the bundle and the container ID",
)
def test_create_without_id_or_bundle(lab):
    b = sleeper(lab)
    b.write()
    r = lab.rt.run("create", "--bundle", str(b.path), stdio_dir=b.stdio)
    assert not r.ok, "create without an id succeeded"
    # without --bundle the runtime takes its cwd as the bundle: make that an empty dir
    empty = b.path / "empty"
    empty.mkdir()
    cid = lab.new_id()
    p = subprocess.run(lab.rt.argv("create", cid), cwd=empty, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode != 0, "create with no usable bundle succeeded"


@clause(RT, "Create", "This operation MUST create a new container.")
def test_create_makes_container(lab):
    b = sleeper(lab)
    st = created(lab, b)
    assert st and st["status"] == "created" and pid_alive(st["pid"])


@clause(
    RT,
    "Start",
    "Attempting to `start` a container that is not `created` MUST have no effect on the container and MUST generate an error.",
)
def test_start_twice(lab):
    b = sleeper(lab)
    created(lab, b)
    assert lab.start(b.cid).ok
    pid = lab.state(b.cid)["pid"]
    r = lab.start(b.cid)
    assert not r.ok, "start of a running container succeeded"
    st = lab.state(b.cid)
    assert st["status"] == "running" and st["pid"] == pid


@clause(RT, "Start", "This operation MUST generate an error if `process` was not set.")
def test_start_without_process(lab):
    b = sleeper(lab)
    del b.config["process"]
    r = lab.create(b)
    if r.ok:
        assert not lab.start(b.cid).ok, "start of a container without process succeeded"


@clause(
    RT, "Kill", "Attempting to send a signal to a container that is neither `created` nor `running` MUST have no effect"
)
def test_kill_stopped_container(lab):
    b = lab.bundle(["/bin/true"])
    created(lab, b)
    assert lab.start(b.cid).ok
    assert lab.wait_status(b.cid, "stopped") == "stopped"
    r = lab.kill(b.cid, "TERM")
    assert not r.ok, "kill of a stopped container succeeded"
    assert lab.status(b.cid) == "stopped"


@clause(RT, "Kill", "This operation MUST send the specified signal to the container process.")
def test_kill_sends_signal(lab):
    b = lab.bundle(
        [
            "/bin/sh",
            "-c",
            "trap 'echo got-usr1 > /oc-out/sig; exit 0' USR1; touch /oc-out/ready; while :; do sleep 0.1; done",
        ]
    )
    created(lab, b)
    assert lab.start(b.cid).ok
    deadline = time.monotonic() + 5
    while not (b.out / "ready").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lab.kill(b.cid, "USR1").ok
    assert lab.wait_status(b.cid, "stopped") == "stopped"
    assert (b.out / "sig").read_text().strip() == "got-usr1"


@clause(
    RT,
    "Delete",
    "Attempting to `delete` a container that is not `stopped` MUST have no effect on the container and MUST generate an error.",
)
def test_delete_running_container(lab):
    b = sleeper(lab)
    created(lab, b)
    assert lab.start(b.cid).ok
    pid = lab.state(b.cid)["pid"]
    r = lab.delete(b.cid)
    assert not r.ok, "delete of a running container succeeded"
    assert pid_alive(pid) and lab.status(b.cid) == "running"


@clause(
    RT,
    "Delete",
    "Attempting to `delete` a container that is not `stopped` MUST have no effect on the container and MUST generate an error.",
)
def test_delete_created_container(lab):
    """runc, crun and youki all delete a created container; the spec says error."""
    b = sleeper(lab)
    st = created(lab, b)
    r = lab.delete(b.cid)
    assert not r.ok, "delete of a created container succeeded"
    assert pid_alive(st["pid"]) and lab.status(b.cid) == "created"


@clause(RT, "Delete", "Deleting a container MUST delete the resources that were created during the `create` step.")
def test_id_reusable_after_delete(lab):
    b = lab.bundle(["/bin/true"])
    created(lab, b)
    assert lab.start(b.cid).ok
    lab.wait_status(b.cid, "stopped")
    assert lab.delete(b.cid).ok
    r = lab.create(b)
    assert r.ok, f"id not reusable after delete: {r}"
