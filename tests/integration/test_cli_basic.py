"""Runtime-wide CLI behaviour: --version, features, spec, logging, global flags, minimal env."""

import json
import os
import re
import subprocess

import pytest

from helpers import RUNTIME, RUNTIME_NAME, Runtime, make_rootfs, new_id, runc_lacks, runtime_is_pyrunc, runtime_is_runc

HOOK_NAMES = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]


def test_version_lines():
    p = subprocess.run([RUNTIME, "--version"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    lines = p.stdout.splitlines()
    expected_name = "pyrunc" if runtime_is_pyrunc else RUNTIME_NAME
    assert re.fullmatch(rf"{expected_name} version \S+", lines[0]), lines[0]
    spec = [l for l in lines if l.startswith("spec: ")]
    assert len(spec) == 1
    if runtime_is_pyrunc:
        assert spec[0] == "spec: 1.3.0"
    assert any(l.startswith("libseccomp: ") for l in lines)


def test_version_short_flag():
    p = subprocess.run([RUNTIME, "-v"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0
    assert p.stdout == subprocess.run([RUNTIME, "--version"], capture_output=True, text=True).stdout


def test_features_json():
    p = subprocess.run([RUNTIME, "features"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    feats = json.loads(p.stdout)
    assert re.fullmatch(r"1\.\d+\.\d+(-[\w.]+)?", feats["ociVersionMin"])
    assert re.fullmatch(r"1\.\d+\.\d+(-[\w.]+)?", feats["ociVersionMax"])
    if runtime_is_pyrunc:
        assert feats["ociVersionMax"] == "1.3.0"
    assert set(HOOK_NAMES) <= set(feats.get("hooks", []))
    nss = set(feats["linux"]["namespaces"])
    assert {"pid", "network", "ipc", "uts", "mount", "user", "cgroup"} <= nss
    if runtime_is_pyrunc:
        assert "time" in nss


def test_spec_produces_a_config_that_runs(rt, tmp_path):
    d = tmp_path / "specbundle"
    d.mkdir()
    p = rt("spec", cwd=str(d))
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    cfg = json.loads((d / "config.json").read_text())
    assert cfg["root"]["path"] == "rootfs"
    assert cfg["process"]["args"] == ["sh"]
    assert cfg["process"]["terminal"] is True
    assert {n["type"] for n in cfg["linux"]["namespaces"]} >= {"pid", "network", "ipc", "uts", "mount"}
    make_rootfs(str(d / "rootfs"))
    # only make it non-interactive; everything else as generated
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "echo spec-ok; hostname"]
    (d / "config.json").write_text(json.dumps(cfg))
    cid = new_id()
    p = rt.run(cid, str(d))
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "spec-ok"


def test_spec_with_bundle_flag_and_refuses_overwrite(rt, tmp_path):
    d = tmp_path / "b"
    d.mkdir()
    assert rt("spec", "--bundle", str(d)).returncode == 0
    assert (d / "config.json").exists()
    before = (d / "config.json").read_text()
    p = rt("spec", "-b", str(d))
    assert p.returncode == 1
    assert (d / "config.json").read_text() == before


def test_spec_rootless(rt, tmp_path):
    d = tmp_path / "rl"
    d.mkdir()
    p = rt("spec", "--rootless", "--bundle", str(d))
    assert p.returncode == 0, p.stderr
    cfg = json.loads((d / "config.json").read_text())
    assert "user" in {n["type"] for n in cfg["linux"]["namespaces"]}
    assert cfg["linux"]["uidMappings"] and cfg["linux"]["gidMappings"]


def test_works_with_empty_environment(root, bundle):
    """Engines call the runtime by absolute path with no PATH and no HOME."""
    cid = new_id()
    bundle.sh("echo env-ok")
    bundle.write()
    rt = Runtime(root)
    rt._track(cid)
    try:
        for args in (["--version"], ["features"], ["state", "nope"]):
            p = rt(*args, env={})
            assert "Traceback" not in p.stderr
        assert rt("state", "nope", env={}).returncode == 1
        p = rt("run", "--bundle", bundle.path, cid, env={})
        assert p.returncode == 0, p.stderr
        assert p.stdout == "env-ok\n"
        cid2 = new_id()
        rt._track(cid2)
        bundle.set_args("sleep", "100")
        bundle.write()
        env = {"XDG_RUNTIME_DIR": "/tmp"}
        assert rt("create", "--bundle", bundle.path, cid2, env=env).returncode == 0
        assert rt("start", cid2, env=env).returncode == 0
        assert rt("kill", cid2, "9", env=env).returncode == 0
        assert rt("delete", "--force", cid2, env=env).returncode == 0
    finally:
        assert not rt.cleanup()


def test_stdout_is_only_data(rt, bundle):
    """state/list/features print exactly one JSON document on stdout."""
    cid = new_id()
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    for args in (("state", cid), ("list", "--format", "json"), ("features",)):
        p = rt(*args)
        assert p.returncode == 0
        json.loads(p.stdout)
        assert p.stderr == ""


# -- global flag syntax ------------------------------------------------------------


def test_root_flag_forms(root, bundle):
    cid = new_id()
    bundle.set_args("sleep", "100")
    bundle.write()
    rt = Runtime(root)
    rt._track(cid)
    try:
        assert rt("--root=" + root, "create", "--bundle", bundle.path, cid, root=False).returncode == 0
        for form in (["--root", root], ["--root=" + root], ["-root", root], ["-root=" + root]):
            p = rt(*form, "state", cid, root=False)
            assert p.returncode == 0, (form, p.stderr)
            assert json.loads(p.stdout)["id"] == cid
    finally:
        assert not rt.cleanup()


def test_debug_flag_accepted_and_quiet_on_success(rt):
    p = rt("--debug", "list", "-q")
    assert p.returncode == 0, p.stderr


def test_single_dash_long_flags(rt, bundle):
    cid = new_id()
    bundle.set_args("sleep", "100")
    bundle.write()
    rt._track(cid)
    p = rt("create", "-bundle", bundle.path, cid)
    assert p.returncode == 0, p.stderr
    assert rt("delete", "-force", cid).returncode == 0


@runc_lacks("crun's --cgroup-manager global flag")
def test_cgroup_manager_cgroupfs_accepted(rt, bundle):
    cid = new_id()
    bundle.sh("exit 0")
    bundle.write()
    rt._track(cid)
    p = rt("--cgroup-manager", "cgroupfs", "run", "--bundle", bundle.path, cid)
    assert p.returncode == 0, p.stderr


@runc_lacks("crun's -f/--config flag")
def test_config_flag_on_create_and_run(rt, bundle, tmp_path):
    cid = new_id()
    bundle.sh("echo from-alt-config")
    alt = tmp_path / "alt.json"
    alt.write_text(json.dumps(bundle.config))
    bundle.sh("echo from-default-config")
    bundle.write()
    p = rt.run(cid, bundle, "--config", str(alt))
    assert p.returncode == 0, p.stderr
    assert p.stdout == "from-alt-config\n"
    cid2 = new_id()
    p = rt.run(cid2, bundle, "-f", str(alt))
    assert p.returncode == 0, p.stderr
    assert p.stdout == "from-alt-config\n"


@pytest.mark.skipif(runtime_is_runc, reason="runc implements the systemd driver")
def test_systemd_cgroup_clear_error(rt, bundle):
    cid = new_id()
    bundle.sh("exit 0")
    bundle.write()
    rt._track(cid)
    p = rt("--systemd-cgroup", "run", "--bundle", bundle.path, cid)
    if p.returncode != 0:
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert len(lines) == 1 and "systemd" in lines[0].lower(), p.stderr
        assert "Traceback" not in p.stderr
        assert os.listdir(rt.root) == []


# -- logging -----------------------------------------------------------------------


def _json_lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def test_log_json_on_error(rt, tmp_path):
    log = tmp_path / "log.json"
    p = rt("--log", str(log), "--log-format", "json", "state", "does-not-exist-here")
    assert p.returncode == 1
    entries = _json_lines(log)
    errors = [e for e in entries if e.get("level") == "error"]
    assert len(errors) == 1, entries
    err = errors[0]
    assert {"level", "msg", "time"} <= set(err)
    assert "does not exist" in err["msg"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", err["time"])
    assert err["msg"] in p.stderr
    assert len([l for l in p.stderr.splitlines() if l.strip()]) == 1


def test_log_json_equals_form_and_only_error_lines_without_debug(rt, tmp_path):
    log = tmp_path / "log.json"
    p = rt(f"--log={log}", "--log-format=json", "kill", "does-not-exist-here", "9")
    assert p.returncode == 1
    entries = _json_lines(log)
    assert [e["level"] for e in entries] == ["error"]


def test_log_json_quiet_on_success(rt, bundle, tmp_path):
    log = tmp_path / "log.json"
    cid = new_id()
    bundle.set_args("sleep", "100")
    bundle.write()
    rt._track(cid)
    for args in (("create", "--bundle", bundle.path, cid), ("start", cid), ("state", cid), ("kill", cid, "9")):
        p = rt("--log", str(log), "--log-format", "json", *args)
        assert p.returncode == 0, p.stderr
        assert p.stderr == "", args
    if log.exists():
        assert not [e for e in _json_lines(log) if e.get("level") in ("error", "warning")]


def test_log_text_format_on_error(rt, tmp_path):
    log = tmp_path / "log.txt"
    p = rt("--log", str(log), "--log-format", "text", "state", "does-not-exist-here")
    assert p.returncode == 1
    text = log.read_text()
    assert "level=error" in text and "does not exist" in text
