"""pyrunc/lightos.py: os's Python parts that the light commands use, checked
against os itself (posixpath's rules) on many paths."""

import itertools
import os
import posixpath

import pytest

from pyrunc import lightos

PIECES = ["", "/", "//", "///", ".", "..", "a", "b/", "/c", "a//b", "./x", "../y", "d/.", "e/..", "/f/../g", "h//"]
PATHS = sorted({"".join(p) for n in (1, 2, 3) for p in itertools.product(PIECES, repeat=n)})


def test_there_are_paths_enough():
    assert len(PATHS) > 2000


@pytest.mark.parametrize("name", ["dirname", "basename", "isabs", "normpath"])
def test_one_path_functions_match_posixpath(name):
    ours, theirs = getattr(lightos.path, name), getattr(posixpath, name)
    wrong = [(p, ours(p), theirs(p)) for p in PATHS if ours(p) != theirs(p)]
    assert wrong == []


def test_join_matches_posixpath():
    wrong = []
    for a, b in itertools.product(PIECES + ["x/y", "/x/y/"], repeat=2):
        for rest in ((), (b,), (b, a)):
            if lightos.path.join(a, *rest) != posixpath.join(a, *rest):
                wrong.append((a, rest))
    assert wrong == []


def test_abspath_matches_posixpath():
    assert [p for p in PATHS if lightos.path.abspath(p) != posixpath.abspath(p)] == []


def test_relpath_matches_posixpath():
    starts = ["/", "/a", "/a/b", "a", "a/c", ".", "..", "/x/../a/b/"]
    wrong = [
        (p, start)
        for p in PATHS
        if p
        for start in starts
        if lightos.path.relpath(p, start) != posixpath.relpath(p, start)
    ]
    assert wrong == []
    assert lightos.path.relpath("a/b") == posixpath.relpath("a/b")
    with pytest.raises(ValueError):
        lightos.path.relpath("")


def test_realpath_matches_posixpath(tmp_path, monkeypatch):
    """On a tree of links: relative and absolute targets, chains, links to
    links' parents, dangling links, loops of one and two (and one with a path below the link
    that closes it), ``..`` through a link; absolute and relative inputs."""
    root = tmp_path
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "e" / "f").write_text("")
    links = {
        "rel": "d/e",
        "abs": str(root / "d"),
        "chain": "rel",
        "up": "d/e/..",
        "dangling": "nowhere/x",
        "self": "self",
        "ping": "pong",
        "pong": "ping",
        "into": "into/x/../y",
        "d/e/back": "../../rel",
        "d/root": "/",
        "d/parent": "..",
    }
    for name, target in links.items():
        (root / name).symlink_to(target)
    tails = ["", "/", "/f", "/..", "/../e", "/./f/", "/x/..", "//f"]
    inputs = [n + t for n in list(links) + ["d", "d/e", "missing", ".", ".."] for t in tails]
    monkeypatch.chdir(root)
    wrong = []
    for p in inputs:
        for given in (p, str(root / p), "./" + p, "d/../" + p):
            if lightos.path.realpath(given) != posixpath.realpath(given):
                wrong.append((given, lightos.path.realpath(given), posixpath.realpath(given)))
    assert wrong == []
    assert lightos.path.realpath("/") == "/" and lightos.path.realpath("") == posixpath.realpath("")


def test_fsencode_and_fsdecode_are_os_own_rules():
    for name in ("plain", "välue", "bad\udcff", b"bytes\xff"):
        assert lightos.fsencode(name) == os.fsencode(name)
    for name in (b"plain", "välue".encode(), b"bad\xff", "str"):
        assert lightos.fsdecode(name) == os.fsdecode(name)


def test_makedirs_as_os(tmp_path):
    deep = tmp_path / "a" / "b" / "c"
    lightos.makedirs(str(deep), 0o700)
    assert deep.is_dir() and deep.stat().st_mode & 0o777 == 0o700
    lightos.makedirs(str(deep), exist_ok=True)
    lightos.makedirs(str(deep) + "/", exist_ok=True)
    with pytest.raises(FileExistsError):
        lightos.makedirs(str(deep))
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError):
        lightos.makedirs(str(tmp_path / "file"), exist_ok=True)  # not a directory: os raises too
    with pytest.raises(NotADirectoryError):
        lightos.makedirs(str(tmp_path / "file" / "x"))


def test_file_tests_match_os_path(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    (tmp_path / "l").symlink_to("missing")
    (tmp_path / "ld").symlink_to("d")
    names = ["f", "d", "l", "ld", "none", "f/x", "d/"]
    for name in names:
        p = str(tmp_path / name)
        for fn in ("exists", "lexists", "isdir", "isfile"):
            assert getattr(lightos.path, fn)(p) == getattr(os.path, fn)(p), (fn, name)
    assert lightos.path.exists("a\0b") is False  # ValueError from the kernel call's argument, as os.path


def test_environ_is_a_live_str_view(monkeypatch):
    monkeypatch.setenv("PYRUNC_LIGHTOS_TEST", "välue")
    assert lightos.environ.get("PYRUNC_LIGHTOS_TEST") == "välue"
    assert lightos.environ["PYRUNC_LIGHTOS_TEST"] == "välue"
    assert "PYRUNC_LIGHTOS_TEST" in lightos.environ
    monkeypatch.delenv("PYRUNC_LIGHTOS_TEST")
    assert lightos.environ.get("PYRUNC_LIGHTOS_TEST", "gone") == "gone"
    assert "PYRUNC_LIGHTOS_TEST" not in lightos.environ
    with pytest.raises(KeyError):
        lightos.environ["PYRUNC_LIGHTOS_TEST"]


def test_the_system_calls_are_os_own():
    for name in (
        "open",
        "read",
        "stat",
        "kill",
        "scandir",
        "pidfd_open",
        "_exit",
        "O_CLOEXEC",
        "strerror",
        "fork",
        "waitpid",
        "execve",
    ):
        assert getattr(lightos, name) is getattr(os, name), name


def test_tree_lists_like_os_walk(tmp_path):
    from pyrunc.cgroups import fs

    for d in ("a/b/c", "a/d", "e"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "a" / "file").write_text("")
    (tmp_path / "link").symlink_to("a")
    top = str(tmp_path)
    parents_first = fs.tree(top)
    assert sorted(parents_first) == sorted(d for d, _, _ in os.walk(top))
    assert parents_first[0] == top and str(tmp_path / "link") not in parents_first
    for i, d in enumerate(parents_first):  # every directory comes before all below it
        assert all(not other.startswith(d + "/") for other in parents_first[:i])
    deepest = fs.tree(top, deepest_first=True)
    assert sorted(deepest) == sorted(d for d, _, _ in os.walk(top, topdown=False))
    for i, d in enumerate(deepest):  # every directory comes after all below it
        assert all(not other.startswith(d + "/") for other in deepest[i + 1 :])
    assert fs.tree(str(tmp_path / "missing")) == []


def _modules_using_lightos():
    import ast
    from pathlib import Path

    pkg = Path(lightos.__file__).parent
    for p in sorted(pkg.rglob("*.py")):
        tree = ast.parse(p.read_text())
        aliased = any(
            isinstance(n, ast.ImportFrom) and any(a.name == "lightos" and a.asname == "os" for a in n.names)
            for n in ast.walk(tree)
        )
        if aliased:
            yield p, tree


def test_every_os_name_the_light_modules_use_is_there():
    """What those modules call as os.X (or os.path.X) exists in lightos: a
    name missing there would fail only when its line runs, maybe on an error
    path no test takes."""
    import ast

    missing, modules = [], 0
    for p, tree in _modules_using_lightos():
        modules += 1
        for n in ast.walk(tree):
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "os":
                if not hasattr(lightos, n.attr):
                    missing.append(f"{p.name}: os.{n.attr}")
            if (
                isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Attribute)
                and isinstance(n.value.value, ast.Name)
                and n.value.value.id == "os"
                and n.value.attr == "path"
                and not hasattr(lightos.path, n.attr)
            ):
                missing.append(f"{p.name}: os.path.{n.attr}")
    assert modules >= 10
    assert missing == []


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 300_000])
def test_read_file_reads_the_whole_file(tmp_path, size):
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    (tmp_path / "f").write_bytes(data)
    assert lightos.read_file(str(tmp_path / "f")) == data


def test_read_file_reads_a_kernel_file_as_open_does():
    # /proc files are made as they are read: a seq_file, in chunks
    with open("/proc/self/mountinfo", "rb") as f:
        first = f.read()
    assert lightos.read_file("/proc/self/mountinfo") == first


def test_read_file_errors_are_opens(tmp_path):
    with pytest.raises(FileNotFoundError):
        lightos.read_file(str(tmp_path / "missing"))
    with pytest.raises(IsADirectoryError):
        lightos.read_file(str(tmp_path))
    before = set(os.listdir("/proc/self/fd"))
    for _ in range(3):
        with pytest.raises(IsADirectoryError):
            lightos.read_file(str(tmp_path))
    assert set(os.listdir("/proc/self/fd")) == before  # the fd is closed on the error too
