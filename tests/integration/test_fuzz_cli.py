"""Hypothesis fuzzing of the CLI: random argument vectors and randomly
mutated config.json documents.

Every outcome is either success or exit 1 with exactly one stderr line (no
traceback, no hang), and nothing is left: no state, no cgroup, no runtime
fork, no container process.  Example counts: ``PYRUNC_FUZZ_EXAMPLES``
(default 120 argv / 60 configs).
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import helpers
from test_reliability_support import new_tag, tagged_env, tagged_pids

pytestmark = pytest.mark.skipif(not helpers.runtime_is_pyrunc, reason="pyrunc's error contract")

N = int(os.environ.get("PYRUNC_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=N or 120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FUZZ_CONFIG = settings(FUZZ, max_examples=N // 2 or 60)

VERBS = [
    "create",
    "start",
    "run",
    "state",
    "kill",
    "delete",
    "list",
    "exec",
    "pause",
    "resume",
    "ps",
    "update",
    "events",
    "spec",
    "features",
    "checkpoint",
    "restore",
    "bogus",
    "",
]
FLAGS = [
    "--bundle",
    "-b",
    "--pid-file",
    "--console-socket",
    "--force",
    "-f",
    "--all",
    "-a",
    "--format",
    "--detach",
    "-d",
    "--preserve-fds",
    "--no-pivot",
    "--keep",
    "--signal",
    "--process",
    "-p",
    "--env",
    "-e",
    "--user",
    "-u",
    "--cwd",
    "--tty",
    "-t",
    "--cap",
    "--interval",
    "--stats",
    "--memory",
    "--cpu-quota",
    "--pids-limit",
    "--resources",
    "-r",
    "--rootless",
    "--json",
    "-q",
    "--help",
    "-h",
    "--",
    "-",
    "--=",
    "---x",
    "--bundle=",
    "--preserve-fds=-1",
    "--preserve-fds=99999999999999999999",
    "--signal=0",
    "--debug",
    "--log-format",
    "--systemd-cgroup",
    "--criu",
]
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
ARG = st.one_of(
    st.sampled_from(FLAGS),
    TEXT,
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(
        ["KILL", "SIGTERM", "0", "65", "-1", "/", ".", "..", "/dev/null", "a" * 2000, "x/../y", "\n", " ", "{}", "[]"]
    ),
)


def _leftovers(root, tag, cgroups_before):
    found = []
    if os.path.isdir(root) and os.listdir(root):
        found.append(f"state {os.listdir(root)}")
    new = helpers.all_cgroup_dirs() - cgroups_before
    if new:
        found.append(f"cgroups {sorted(new)}")
    pids = tagged_pids(tag)
    if pids:
        found.append(f"runtime forks {pids}")
    return found


def _check_outcome(p, argv):
    assert "Traceback" not in p.stderr, (argv, p.stderr)
    if p.returncode != 0:
        # exec's failures once its arguments parsed exit 255, as runc's
        allowed = (1, 255) if "exec" in argv else (1,)
        assert p.returncode in allowed, (argv, p.returncode, p.stderr)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        if not lines and p.stdout.strip():
            return  # no command at all: usage on stdout, exit 1 (as runc)
        assert len(lines) == 1, (argv, p.stderr)


@given(
    verb=st.sampled_from(VERBS),
    args=st.lists(ARG, max_size=6),
    globals_=st.lists(
        st.sampled_from(
            [
                "--debug",
                "--log-format",
                "json",
                "text",
                "--systemd-cgroup",
                "--rootless",
                "true",
                "--log",
                "/dev/null",
                "--bogus",
            ]
        ),
        max_size=3,
    ),
)
@FUZZ
def test_fuzz_cli_arguments(rt, tmp_path, verb, args, globals_):
    cwd = tempfile.mkdtemp(dir=tmp_path)  # `spec` writes config.json here
    tag = new_tag()
    before = helpers.all_cgroup_dirs()
    argv = list(globals_) + ([verb] if verb else []) + args
    try:
        p = rt(*argv, env=tagged_env(tag), cwd=cwd, timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"hung: {argv}") from None
    _check_outcome(p, argv)
    # random argv may name a real container (e.g. `run` of an id in cwd): undo it
    for cid in os.listdir(rt.root) if os.path.isdir(rt.root) else []:
        rt.delete(cid, force=True)
    assert not _leftovers(rt.root, tag, before), (argv, _leftovers(rt.root, tag, before))


# --------------------------------------------------------------------------
# mutated configs

JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=False),
    TEXT,
    st.sampled_from(
        [
            "",
            "/",
            "..",
            "/proc",
            "rootfs",
            "tmpfs",
            "bind",
            "sleep",
            "CAP_SYS_ADMIN",
            "RLIMIT_NOFILE",
            "pid",
            "user",
            "rw",
            "ro",
        ]
    ),
)
JSON = st.recursive(
    JSON_LEAF, lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(TEXT, kids, max_size=4)), max_leaves=8
)


def _mutate(doc, data):
    """Replace, delete or add one value somewhere in ``doc`` (in place)."""
    node = doc
    while True:
        if isinstance(node, dict) and node:
            key = data.draw(st.sampled_from(sorted(node)), label="key")
        elif isinstance(node, list) and node:
            key = data.draw(st.integers(0, len(node) - 1), label="index")
        else:
            return
        child = node[key]
        if isinstance(child, (dict, list)) and child and data.draw(st.booleans(), label="descend"):
            node = child
            continue
        action = data.draw(st.sampled_from(["replace", "delete", "add"]), label="action")
        if action == "replace":
            node[key] = data.draw(JSON, label="value")
        elif action == "delete":
            del node[key]
        elif isinstance(node, dict):
            node[data.draw(TEXT, label="new key")] = data.draw(JSON, label="value")
        else:
            node.append(data.draw(JSON, label="value"))
        return


@given(data=st.data())
@FUZZ_CONFIG
def test_fuzz_configs(rt, bundle, data):
    doc = copy.deepcopy(bundle.config)
    doc["process"]["args"] = ["sleep", "100"]
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        _mutate(doc, data)
    with open(bundle.config_path, "w") as f:
        json.dump(doc, f)
    tag = new_tag()
    before = helpers.all_cgroup_dirs()
    cid = helpers.new_id("fz")
    argv = ["create", "--bundle", bundle.path, cid]
    try:
        p = rt(*argv, env=tagged_env(tag), timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"create hung with config {json.dumps(doc)[:2000]}") from None
    _check_outcome(p, argv)
    if p.returncode == 0:
        d = rt.delete(cid, force=True)
        assert d.returncode == 0, d.stderr
    left = _leftovers(rt.root, tag, before)
    assert not left, (left, json.dumps(doc)[:2000])
