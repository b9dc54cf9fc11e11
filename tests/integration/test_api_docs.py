"""docs/api.md's examples run: its ``python`` blocks, in order, as one
program started the way the page tells a library caller (its first block
calls pyrunc.exeseal.reexec_sealed)."""

import os
import re
import subprocess
import sys

import pytest

from helpers import REPO, processes_rooted_under, runtime_is_pyrunc

DOC = os.path.join(REPO, "docs", "api.md")


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```$", text, re.S | re.M)


@pytest.mark.skipif(not runtime_is_pyrunc, reason="pyrunc's library")
def test_api_md_examples_run(tmp_path):
    with open(DOC) as f:
        blocks = python_blocks(f.read())
    assert len(blocks) >= 9
    script = tmp_path / "api_examples.py"
    script.write_text("\n\n".join(blocks))
    work = tmp_path / "tmp"
    work.mkdir()
    log = tmp_path / "out.log"
    try:
        with open(log, "w") as out:  # a file, not a pipe: containers inherit it
            p = subprocess.run(
                [sys.executable, str(script)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(os.environ, TMPDIR=str(work)),
                cwd=str(tmp_path),
                timeout=120,
            )
        text = log.read_text()
        assert p.returncode == 0, text[-5000:]
        lines = text.splitlines()
        assert "hi" in lines  # run's container wrote to the program's stdout
        assert "cannot exec in a paused container (use --ignore-paused)" in lines
        assert os.listdir(work) == []  # the example removed its work directory
    finally:
        # a failed example leaves its containers: delete them (no seal needed)
        from pyrunc.runtime import Runtime

        for dirpath, dirnames, _ in os.walk(work):
            if os.path.basename(dirpath) == "state":
                rt = Runtime(root=dirpath)
                for s in rt.list():
                    rt.delete(s.id, force=True)
                dirnames[:] = []
        assert processes_rooted_under(str(work)) == []
