"""StateStore.save's ``unless_written`` (pyrunc/state.py): create's final
save skips the write when this store wrote exactly those bytes last, and
writes whenever anything differs -- checked by the file's inode, since
every write puts a new file in place."""

import os

from pyrunc import state as st


def _inode(store, cid):
    return os.stat(os.path.join(store.dir(cid), st.STATE_FILE)).st_ino


def test_unless_written_skips_only_an_identical_write(tmp_path):
    store = st.StateStore(str(tmp_path / "root"))
    store.create_dir("c1")
    state = st.ContainerState(id="c1", bundle="/b", init_pid=10)
    store.save(state)
    first = _inode(store, "c1")
    store.save(state, unless_written=True)
    assert _inode(store, "c1") == first  # the same bytes: not written again
    state.init_pid = 11
    store.save(state, unless_written=True)
    second = _inode(store, "c1")
    assert second != first  # changed: written
    assert store.load("c1").init_pid == 11
    store.save(state)
    assert _inode(store, "c1") != second  # the default always writes


def test_unless_written_remembers_the_last_container_only(tmp_path):
    """Another container's write in between: the first one is written
    again (a library's store lives long; it keeps one state's bytes)."""
    store = st.StateStore(str(tmp_path / "root"))
    a = st.ContainerState(id="a", bundle="/b")
    b = st.ContainerState(id="b", bundle="/b")
    for s in (a, b):
        store.create_dir(s.id)
    store.save(a)
    before = _inode(store, "a")
    store.save(b)
    store.save(a, unless_written=True)
    assert _inode(store, "a") != before
