"""The module cache (pyrunc/modcache.py): served only while each source is
exactly as it was built from; anything else goes the ordinary way.

Each test builds a cache of a small package in a fresh interpreter (the
cache is built by importing, and what a process imported stays imported),
then imports from it in another fresh interpreter.
"""

import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _python(code, tmp_path):
    prelude = f"import sys; sys.path.insert(0, {REPO!r}); sys.path.insert(0, {str(tmp_path)!r})\n"
    p = subprocess.run(
        [sys.executable, "-IS", "-c", prelude + textwrap.dedent(code)], capture_output=True, text=True, check=False
    )
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.fixture
def pkg(tmp_path):
    """A package ``demo`` with a submodule, a subpackage, and a cache of it."""
    d = tmp_path / "demo"
    (d / "sub").mkdir(parents=True)
    (d / "__init__.py").write_text("NAME = 'demo'\n")
    (d / "one.py").write_text("VALUE = 1\n")
    (d / "sub" / "__init__.py").write_text("")
    (d / "sub" / "two.py").write_text("from .. import one\nVALUE = one.VALUE + 1\n")
    (d / "late.py").write_text("VALUE = 'late'\n")  # not imported at build: not cached
    cache = tmp_path / "modules.cache"
    out = _python(
        f"""
        from pyrunc.modcache import build
        print(build({str(cache)!r}, ("demo.sub.two",)))
        """,
        tmp_path,
    )
    assert int(out) >= 4
    return d, cache


def _loaders(pkg_dir, cache, tmp_path, extra=""):
    """Import demo.sub.two (and demo.late) with the cache in use; print
    which loader served each and the values."""
    return _python(
        f"""
        from pyrunc.modcache import use
        finder = use({str(cache)!r})
        assert finder is not None
        {extra}
        import demo.sub.two, demo.late
        for name in ("demo", "demo.one", "demo.sub", "demo.sub.two", "demo.late"):
            m = sys.modules[name]
            print(name, "cache" if m.__loader__ is finder else "ordinary", m.__file__)
        print("values", demo.one.VALUE, demo.sub.two.VALUE, demo.late.VALUE)
        """,
        tmp_path,
    ).splitlines()


def test_unchanged_sources_are_served_from_the_cache(pkg, tmp_path):
    d, cache = pkg
    lines = _loaders(d, cache, tmp_path)
    assert lines[:4] == [
        f"demo cache {d}/__init__.py",
        f"demo.one cache {d}/one.py",
        f"demo.sub cache {d}/sub/__init__.py",
        f"demo.sub.two cache {d}/sub/two.py",
    ]
    # a module of a cached package that the cache lacks: found in the package's directory
    assert lines[4] == f"demo.late ordinary {d}/late.py"
    assert lines[5] == "values 1 2 late"


def test_an_edited_source_is_never_served_stale(pkg, tmp_path):
    d, cache = pkg
    st = os.stat(d / "one.py")
    (d / "one.py").write_text("VALUE = 7\n")  # same size
    # a later mtime: the ordinary import validates its .pyc by whole seconds
    os.utime(d / "one.py", ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    lines = _loaders(d, cache, tmp_path)
    assert lines[1] == f"demo.one ordinary {d}/one.py"
    assert lines[-1] == "values 7 8 late"
    # same size and the old mtime put back: the cache serves it again (as pyc validation would)
    os.utime(d / "one.py", ns=(st.st_atime_ns, st.st_mtime_ns))
    (d / "one.py").write_text("VALUE = 1\n")
    os.utime(d / "one.py", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _loaders(d, cache, tmp_path)[1] == f"demo.one cache {d}/one.py"


def test_a_removed_source_is_not_imported_from_the_cache(pkg, tmp_path):
    d, cache = pkg
    os.unlink(d / "one.py")
    out = subprocess.run(
        [
            sys.executable,
            "-IS",
            "-c",
            f"import sys; sys.path[:0] = [{REPO!r}, {str(tmp_path)!r}]\n"
            f"from pyrunc.modcache import use; use({str(cache)!r})\n"
            "import demo.one",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 1 and "ModuleNotFoundError: No module named 'demo.one'" in out.stderr


@pytest.mark.parametrize("damage", ["missing", "empty", "truncated", "foreign magic"])
def test_an_unusable_cache_changes_nothing(pkg, tmp_path, damage):
    d, cache = pkg
    data = cache.read_bytes()
    if damage == "missing":
        cache.unlink()
    elif damage == "empty":
        cache.write_bytes(b"")
    elif damage == "truncated":
        cache.write_bytes(data[:20])
    else:
        import marshal

        n = int.from_bytes(data[:8], "little")
        _, index = marshal.loads(data[8 : 8 + n])
        head = marshal.dumps((b"\0\0\r\n", index))
        cache.write_bytes(len(head).to_bytes(8, "little") + head + data[8 + n :])
    out = _python(
        f"""
        from pyrunc.modcache import use
        print(use({str(cache)!r}))
        import demo.sub.two
        print(demo.sub.two.VALUE, type(demo.sub.two.__loader__).__name__)
        """,
        tmp_path,
    ).splitlines()
    assert out == ["None", "2 SourceFileLoader"]


def test_the_launcher_uses_the_cache_next_to_the_copy():
    from pyrunc.launcher import launcher_text

    text = launcher_text("/opt/p/sealed/python3", "/opt/p/lib/site-packages", None)
    assert "use('/opt/p/sealed/modules.cache')" in text
    # the cache is consulted only after sys.path is complete, before the CLI is imported
    lines = text.splitlines()
    by_path = (
        "    use = _load(spec_from_file_location('pyrunc.modcache', '/opt/p/lib/site-packages/pyrunc/modcache.py')).use"
    )
    assert lines.index("sys.path.append('/opt/p/lib/site-packages')") < lines.index(by_path)
    assert lines.index(by_path) < lines.index("    from pyrunc.modcache import use")  # the fallback
    use = next(i for i, line in enumerate(lines) if line.startswith("use('/opt/p/sealed/modules.cache')"))
    assert (
        lines.index("    from pyrunc.modcache import use") < use < lines.index("from pyrunc.cli import main, exit_now")
    )


def test_an_extension_module_is_loaded_by_its_recorded_path(tmp_path):
    """_json (a shared object in Debian's Python) comes from the recorded
    file, and the path finder lists no sys.path directory for it; with a
    different size or mtime recorded, the ordinary import takes over."""
    import importlib.machinery

    import _json

    if not isinstance(getattr(_json, "__loader__", None), importlib.machinery.ExtensionFileLoader):
        pytest.skip("_json is built into this interpreter")
    cache = tmp_path / "modules.cache"
    _python(f"from pyrunc.modcache import build; build({str(cache)!r}, ('_json',))", tmp_path)
    probe = """
        from pyrunc.modcache import use
        finder = use({cache!r})
        before = set(sys.path_importer_cache)
        import _json
        print(type(_json.__loader__).__name__, _json.__file__ == {origin!r}, sorted(set(sys.path_importer_cache) - before))
        """
    out = _python(probe.format(cache=str(cache), origin=_json.__file__), tmp_path).split()
    assert out == ["ExtensionFileLoader", "True", "[]"]
    # the same cache with the entry's recorded size changed: not used
    import marshal

    data = cache.read_bytes()
    n = int.from_bytes(data[:8], "little")
    magic, index = marshal.loads(data[8 : 8 + n])
    entry = index["_json"]
    index["_json"] = (entry[0], entry[1], entry[2] + 1, *entry[3:])
    head = marshal.dumps((magic, index))
    cache.write_bytes(len(head).to_bytes(8, "little") + head + data[8 + n :])
    out = _python(probe.format(cache=str(cache), origin=_json.__file__), tmp_path)
    assert "ExtensionFileLoader True []" not in out and "ExtensionFileLoader True [" in out
