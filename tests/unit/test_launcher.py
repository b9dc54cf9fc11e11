"""pyrunc/launcher.py without pip or root: what the first call writes into a
venv and what --remove puts back (the whole path, with pip, a wheel and a
real run: tests/integration/test_packaging.py)."""

import os
import sys

import pytest

from pyrunc import launcher


@pytest.fixture
def venv(tmp_path):
    """A venv's layout as far as the launcher cares: bin/ with pip's script."""
    prefix = tmp_path / "venv"
    (prefix / "bin").mkdir(parents=True)
    script = prefix / "bin" / "pyrunc"
    script.write_text(launcher.slow_script_text(str(prefix / "bin" / "python3")))
    return prefix, script


def test_install_writes_the_copy_and_the_fast_launcher(venv):
    prefix, script = venv
    launcher.install(str(prefix), str(script))
    copy = prefix / "sealed" / "python3"
    with open(os.path.realpath(sys.executable), "rb") as f:
        assert copy.read_bytes() == f.read()
    text = script.read_text()
    lines = text.splitlines()
    assert lines[0] == f"#!{copy} -IS"
    assert launcher.FAST_MARK in lines[1]
    assert f"sys.path.append({launcher._purelib(str(prefix))!r})" in lines
    assert lines[-2:] == ["from pyrunc.cli import main, exit_now", "exit_now(main())"]
    assert os.access(script, os.X_OK)
    assert sorted(os.listdir(prefix / "bin")) == ["pyrunc"]  # no temporary left
    compile(text, str(script), "exec")


def test_source_tree_first_only_for_an_editable_install(tmp_path):
    tree = os.path.dirname(os.path.dirname(os.path.realpath(launcher.__file__)))
    assert launcher._source_root(tree) is None  # imported from "site-packages"
    assert launcher._source_root(str(tmp_path)) == tree
    text = launcher.launcher_text("/v/sealed/python3", "/v/lib/site-packages", tree)
    assert f"sys.path.insert(0, {tree!r})  # an editable install" in text.splitlines()


def test_a_path_no_shebang_can_name_is_refused_before_writing(tmp_path):
    prefix = tmp_path / "a venv"
    (prefix / "bin").mkdir(parents=True)
    script = prefix / "bin" / "pyrunc"
    script.write_text("pip's")
    with pytest.raises(OSError, match="#! line"):
        launcher.install(str(prefix), str(script))
    assert script.read_text() == "pip's" and not (prefix / "sealed").exists()


def test_remove_puts_pips_kind_of_script_back(venv):
    prefix, script = venv
    slow = script.read_text()
    launcher.install(str(prefix), str(script))
    launcher.remove(str(prefix), str(script))
    assert not (prefix / "sealed").exists()
    assert script.read_text() == launcher.slow_script_text(os.path.join(launcher._scripts_dir(str(prefix)), "python3"))
    assert "from pyrunc.launcher import main" in slow and "from pyrunc.launcher import main" in script.read_text()
    launcher.remove(str(prefix), str(script))  # twice: nothing left to do


def test_remove_leaves_a_script_that_is_not_ours(venv):
    prefix, script = venv
    script.write_text("#!/bin/sh\necho someone else's\n")
    launcher.remove(str(prefix), str(script))
    assert script.read_text() == "#!/bin/sh\necho someone else's\n"
