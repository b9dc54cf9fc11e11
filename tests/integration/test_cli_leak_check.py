"""The session leak check itself: a session that leaves a container behind must fail."""

import os
import subprocess
import sys

from helpers import RUNTIME, Runtime

LEAKY_TEST = """
import json
from helpers import Runtime, new_id

def test_leaks_a_container(root, bundle):
    rt = Runtime(root)          # deliberately not the `rt` fixture: no cleanup
    cid = new_id()
    bundle.set_args("sleep", "100")
    assert rt.create(cid, bundle).returncode == 0
    with open(LEAK_RECORD, "w") as f:
        json.dump({"root": root, "id": cid}, f)
"""


def test_session_leak_check_fails_a_leaky_session(tmp_path):
    tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where conftest.py lives
    record = tmp_path / "leak.json"
    (tmp_path / "test_leaky.py").write_text(f"LEAK_RECORD = {str(record)!r}\n" + LEAKY_TEST)
    env = dict(os.environ, PYTHONPATH=tests_dir, RUNTIME=RUNTIME, PYRUNC_TEST_LEAK_GRACE="0.3")
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "conftest",
            "--rootdir",
            str(tmp_path),
            "--basetemp",
            str(tmp_path / "inner"),
            str(tmp_path / "test_leaky.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=str(tmp_path),
    )
    import json

    leak = json.loads(record.read_text()) if record.exists() else None
    try:
        assert leak is not None, p.stdout + p.stderr
        assert p.returncode != 0, p.stdout
        out = p.stdout + p.stderr
        assert "resources leaked by the test session" in out, out
        assert "process" in out and "state left in --root" in out, out
    finally:
        if leak:
            Runtime(leak["root"]).delete(leak["id"], force=True)
