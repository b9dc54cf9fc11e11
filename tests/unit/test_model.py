"""The model (issue 18): frozen records, made once by config/convert.py,
persisted and loaded as they are; exec loads the stored seccomp program."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyrunc.config.convert import convert, merge_resources
from pyrunc.config.model import Config
from pyrunc.errors import CgroupError, PyruncError

REPO = Path(__file__).resolve().parents[2]
RICH = json.loads((REPO / "tests" / "data" / "validation" / "rich-config.json").read_text())


def test_records_are_frozen_and_replace_makes_a_new_one():
    cfg = convert(RICH, "/b")
    with pytest.raises(AttributeError):
        cfg.hostname = "other"
    with pytest.raises(AttributeError):
        cfg.process.env = []
    again = cfg.replace(hostname="other")
    assert again.hostname == "other" and cfg.hostname != "other"
    assert again.process is cfg.process


def test_the_persisted_form_loads_back_equal():
    cfg = convert(RICH, "/b")
    assert Config.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_another_format_is_refused_with_one_line():
    d = convert(RICH, "/b").to_dict()
    d.pop("format")
    with pytest.raises(PyruncError, match="another version of pyrunc"):
        Config.from_dict(d)


def test_everything_the_stages_use_is_typed():
    cfg = convert(RICH, "/b")
    assert cfg.seccomp.bpf and len(cfg.seccomp.bpf) % 8 == 0
    assert cfg.resources.memory.limit == RICH["linux"]["resources"]["memory"]["limit"]
    assert cfg.resources.cpu.cpus == "0-1"
    assert isinstance(cfg.personality, int)
    assert cfg.memory_policy.nodemask and cfg.memory_policy.maxnode
    assert [o.clock for o in cfg.time_offsets] == ["monotonic", "boottime"]
    assert [(d.host_name, d.name) for d in cfg.net_devices] == [("eth1", "ctr1")]
    assert cfg.process.scheduler.policy == 3 and cfg.process.exec_cpu_affinity.final == [0, 1]


def test_the_stored_program_is_what_libseccomp_compiles():
    from pyrunc import seccomp

    cfg = convert(RICH, "/b")
    assert cfg.seccomp.bpf == seccomp.prepare(RICH["linux"]["seccomp"]).bpf


def test_resource_values_are_checked_at_conversion():
    doc = json.loads(json.dumps(RICH))
    doc["linux"]["resources"]["cpu"].update(quota=1000, burst=2000)
    with pytest.raises(CgroupError, match=r"linux\.resources\.cpu\.burst"):
        convert(doc, "/b")


def test_update_merges_through_the_converter():
    cfg = convert(RICH, "/b")
    update, merged = merge_resources(cfg.resources, {"memory": {"limit": 1 << 30}, "pids": {"limit": 7}})
    assert update.memory.limit == 1 << 30 and update.cpu is None
    assert merged.memory.limit == 1 << 30
    assert merged.memory.reservation == cfg.resources.memory.reservation
    assert merged.pids.limit == 7 and merged.cpu == cfg.resources.cpu
    with pytest.raises(CgroupError):
        merge_resources(cfg.resources, {"cpu": {"idle": 5}})


def test_loading_the_model_and_its_filter_needs_no_libseccomp():
    """What exec does with the persisted config: no bindings, no compiler."""
    persisted = json.dumps(convert(RICH, "/b").to_dict())
    code = (
        "import sys, json\n"
        "from pyrunc.config.model import Config\n"
        "from pyrunc.seccomp import PreparedSeccomp\n"
        "cfg = Config.from_dict(json.loads(sys.stdin.read()))\n"
        "p = PreparedSeccomp.from_record(cfg.seccomp)\n"
        "print(p.instructions, [m for m in ('seccomp', 'pyseccomp', 'pyrunc.config.convert')"
        " if m in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=persisted, capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.split(" ", 1)
    assert int(out[0]) > 0 and out[1].strip() == "[]"


def test_process_does_not_import_the_converter():
    """The config.convert <-> process import cycle is gone."""
    code = "import sys, pyrunc.process; print('pyrunc.config.convert' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.strip()
    assert out == "False"
    assert "from .config" not in (REPO / "pyrunc" / "process.py").read_text()
