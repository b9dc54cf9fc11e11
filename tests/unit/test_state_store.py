"""StateStore.save's ``unless_written`` (pyrunc/state.py): create's final
save skips the write when this store wrote exactly those bytes last, and
writes whenever anything differs -- checked by the file's inode, since
every write puts a new file in place."""

import os

from pyrunc import state as st


def _inode(store, cid):
    return os.stat(os.path.join(store.dir(cid), st.STATE_FILE)).st_ino


def _saved_once(tmp_path, init_pid=10):
    """A store with container c1's state written once: (store, state)."""
    store = st.StateStore(str(tmp_path / "root"))
    store.create_dir("c1")
    state = st.ContainerState(id="c1", bundle="/b", init_pid=init_pid)
    store.save(state)
    return store, state


def test_unless_written_skips_only_an_identical_write(tmp_path):
    store, state = _saved_once(tmp_path)
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


# --- write_atomic's exchange (create's saves once state.json exists) -------


def _names(store, cid):
    return sorted(os.listdir(store.dir(cid)))


def test_exchange_swaps_the_new_file_in_and_unlinks_the_old(tmp_path):
    from pyrunc.linux import syscalls as sc

    store, state = _saved_once(tmp_path)
    old = _inode(store, "c1")
    calls = []

    def exchange(a, b):
        calls.append((os.path.basename(a), os.path.basename(b)))
        sc.rename_exchange(a, b)

    state.init_pid = 11
    store.save(state, exchange=exchange)
    assert calls == [(f"state.json.{os.getpid()}.tmp", "state.json")]
    assert _names(store, "c1") == ["state.json"]  # the old content's name is gone
    assert _inode(store, "c1") != old
    assert store.load("c1").init_pid == 11


def test_exchange_refused_falls_back_to_rename(tmp_path):
    """No old file (ENOENT from the kernel) or a file system without the
    exchange (EINVAL): the rename, and the same result."""
    import errno

    from pyrunc.linux import syscalls as sc

    store = st.StateStore(str(tmp_path / "root"))
    store.create_dir("c1")
    state = st.ContainerState(id="c1", bundle="/b", init_pid=10)
    store.save(state, exchange=sc.rename_exchange)  # the first write: nothing to exchange with
    assert _names(store, "c1") == ["state.json"]
    assert store.load("c1").init_pid == 10

    def refuse(a, b):
        raise OSError(errno.EINVAL, "renameat2: Invalid argument", b)

    state.init_pid = 12
    store.save(state, exchange=refuse)
    assert _names(store, "c1") == ["state.json"]
    assert store.load("c1").init_pid == 12


def test_a_reader_never_misses_the_file_while_it_is_exchanged(tmp_path):
    """The exchange keeps rename's promise: at every moment the name holds
    a whole file, the old one or the new one."""
    import threading

    from pyrunc.linux import syscalls as sc

    store, state = _saved_once(tmp_path, init_pid=1)
    path = os.path.join(store.dir("c1"), st.STATE_FILE)
    stop, failures, reads = threading.Event(), [], [0]

    def reader():
        while not stop.is_set():
            try:
                with open(path, "rb") as f:
                    if b'"init_pid"' not in f.read():
                        failures.append("partial")
            except OSError as e:
                failures.append(repr(e))
            reads[0] += 1

    t = threading.Thread(target=reader)
    t.start()
    try:
        for pid in range(2, 400):
            state.init_pid = pid
            store.save(state, exchange=sc.rename_exchange)
    finally:
        stop.set()
        t.join()
    assert failures == []
    assert reads[0] > 0
    assert store.load("c1").init_pid == 399
    assert _names(store, "c1") == ["state.json"]


def _config():
    from pyrunc.config.model import Config, Hook

    return Config(
        format=Config.FORMAT, root_path="/r", hooks={"poststop": [Hook(path="/bin/true", args=["true", "a\nb"])]}
    )


def test_config_json_holds_the_model_then_the_original(tmp_path):
    """One file (an inode fewer per container): the model on the first
    line, what start and delete read (container.py reads the hooks from it),
    the original document on the second, for inspect; a newline inside a
    value stays escaped."""
    store = st.StateStore(str(tmp_path / "root"))
    store.create_dir("c1")
    doc = {"ociVersion": "1.3.0", "process": {"args": ["sh", "-c", "echo 'x\ny'"]}}
    store.save_config("c1", _config(), doc)
    assert os.listdir(store.dir("c1")) == [st.CONFIG_FILE]
    with open(os.path.join(store.dir("c1"), st.CONFIG_FILE), "rb") as f:
        data = f.read()
    assert data.count(b"\n") == 1
    assert store.load_config("c1") == _config()
    assert store.load_spec("c1") == doc
    from pyrunc.container import _persisted_hooks

    assert [h.args for h in _persisted_hooks(store, "c1", "poststop")] == [["true", "a\nb"]]
    # update rewrites the model and keeps the original
    store.save_config("c1", _config().replace(root_path="/other"))
    assert store.load_config("c1").root_path == "/other"
    assert store.load_spec("c1") == doc


def test_a_directory_of_the_two_file_layout_still_reads(tmp_path):
    """A container created by a pyrunc before the one-file layout (config.json
    the model alone, spec.json beside it) is read, and updated, as it was."""
    from pyrunc import fastjson

    store = st.StateStore(str(tmp_path / "root"))
    store.create_dir("c1")
    doc = {"ociVersion": "1.2.0"}
    d = store.dir("c1")
    with open(os.path.join(d, st.CONFIG_FILE), "w") as f:
        f.write(fastjson.dumps(_config().to_dict(), compact=True))
    with open(os.path.join(d, st.SPEC_FILE), "w") as f:
        f.write(fastjson.dumps(doc))
    assert store.load_config("c1") == _config()
    assert store.load_spec("c1") == doc
    store.save_config("c1", _config().replace(root_path="/other"))
    assert store.load_config("c1").root_path == "/other" and store.load_spec("c1") == doc
    store.remove("c1")
    assert not os.path.exists(d)
