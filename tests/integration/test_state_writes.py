"""How create puts state.json in place (pyrunc/state.py, write_atomic).

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


def _traced_create(rt, bundle, cid):
    """create under strace (the runtime's own thread only: its stages are
    not followed, so strace ends with the command); returns the trace."""
    bundle.write()
    rt._track(cid)
    _, lines = run_traced(rt, ["-e", "trace=rename,renameat,renameat2"], "create", "--bundle", bundle.path, cid)
    return lines


def test_create_exchanges_state_json_in_once_it_exists(rt, bundle):
    cid = "stw-" + os.urandom(3).hex()
    lines = _traced_create(rt, bundle, cid)
    state_json = os.path.join(rt.root, cid, "state.json")
    renames_over = [ln for ln in lines if re.match(rf'rename\(".*", "{re.escape(state_json)}"\) = 0', ln)]
    exchanges = [
        ln for ln in lines if "RENAME_EXCHANGE" in ln and f'"{state_json}"' in ln and ln.rstrip().endswith("= 0")
    ]
    assert len(renames_over) == 1, lines  # the first write only: a new name in a new directory
    assert exchanges, lines  # the init's pid: exchanged in
    assert lines.index(renames_over[0]) < lines.index(exchanges[0])
    # the old content's temp name is gone; the record is the final one
    assert sorted(os.listdir(os.path.join(rt.root, cid))) == ["config.json", "spec.json", "start.sock", "state.json"]
    st = rt.state_json(cid)
    assert st["status"] == "created" and st["pid"] > 0
    assert rt.delete(cid, force=True).returncode == 0
