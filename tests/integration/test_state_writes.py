"""How create puts state.json in place (pyrunc/state.py, write_atomic).

An init the CLI forks itself is recorded once, after its fork, with its pid.

The first write renames a new file into the container's new directory; the
later ones (the init's pid, the network devices) exchange the new file
with the old one (renameat2 RENAME_EXCHANGE) and unlink the old content,
rather than renaming over it.  On ext4, a rename over an existing file
makes the file system allocate and write the new file's blocks at once
(auto_da_alloc), so every container cost a disk write, and its delete a
device trim where the state root is mounted with ``discard``
(docs/performance.md section 19).
"""

import os
import re
import shutil

import pytest

from helpers import run_traced, runtime_is_pyrunc

pytestmark = pytest.mark.skipif(
    not runtime_is_pyrunc or not shutil.which("strace"), reason="pyrunc's create, traced with strace"
)


def _traced_create(rt, bundle, cid, calls="rename,renameat,renameat2"):
    """create under strace (the runtime's own thread only: its stages are
    not followed, so strace ends with the command); returns the trace."""
    bundle.write()
    rt._track(cid)
    _, lines = run_traced(rt, ["-e", "trace=" + calls], "create", "--bundle", bundle.path, cid)
    return lines


def _writes(lines, path):
    """(renames over ``path``, exchanges with it) in the trace."""
    renames = [ln for ln in lines if re.match(rf'rename\(".*", "{re.escape(path)}"\) = 0', ln)]
    exchanges = [ln for ln in lines if "RENAME_EXCHANGE" in ln and f'"{path}"' in ln and ln.rstrip().endswith("= 0")]
    return renames, exchanges


def test_create_exchanges_state_json_in_once_it_exists(rt, bundle):
    """With an intermediate stage (here: a time namespace keeps it), the
    record is written before the init's pid is known, then exchanged."""
    if not os.path.exists("/proc/self/ns/time"):
        pytest.skip("no time namespaces")
    bundle.set_namespace("time")
    cid = "stw-" + os.urandom(3).hex()
    lines = _traced_create(rt, bundle, cid)
    renames_over, exchanges = _writes(lines, os.path.join(rt.root, cid, "state.json"))
    assert len(renames_over) == 1, lines  # the first write only: a new name in a new directory
    assert exchanges, lines  # the init's pid: exchanged in
    assert lines.index(renames_over[0]) < lines.index(exchanges[0])
    # the old content's temp name is gone; the record is the final one
    assert sorted(os.listdir(os.path.join(rt.root, cid))) == ["config.json", "start.sock", "state.json"]
    st = rt.state_json(cid)
    assert st["status"] == "created" and st["pid"] > 0
    assert rt.delete(cid, force=True).returncode == 0


def test_a_directly_forked_init_is_recorded_in_one_write(rt, bundle):
    """The CLI's create that forks the init itself knows its pid before it
    makes the cgroup: state.json is written once, with it, and neither
    renamed over nor exchanged; config.json is one file (the model and
    the original config), so the directory holds three names (each an
    inode made at create and freed at delete: docs/performance.md
    section 25)."""
    cid = "stw-" + os.urandom(3).hex()
    lines = _traced_create(rt, bundle, cid, "rename,renameat,renameat2,openat,clone,clone3,fork,vfork")
    d = os.path.join(rt.root, cid)
    renames_over, exchanges = _writes(lines, os.path.join(d, "state.json"))
    assert len(renames_over) == 1 and exchanges == [], lines
    clone = [i for i, ln in enumerate(lines) if re.match(r"(clone|clone3|fork)\(", ln)]
    assert clone and clone[0] < lines.index(renames_over[0]), lines  # written after the fork: with the pid
    created = [ln for ln in lines if "O_CREAT" in ln and ln.startswith("openat") and f'"{d}/' in ln]
    assert len(created) == 2, created  # config.json's and state.json's temp files
    assert sorted(os.listdir(d)) == ["config.json", "start.sock", "state.json"]
    st = rt.state_json(cid)
    assert st["status"] == "created" and st["pid"] > 0
    assert rt.delete(cid, force=True).returncode == 0
