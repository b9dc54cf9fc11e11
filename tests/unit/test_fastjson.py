"""pyrunc.fastjson must behave exactly like json.loads / json.dumps (it only
skips importing json): same values, same bytes, same exceptions."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc import fastjson

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30), st.floats(allow_nan=False), st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=30,
)


def same_value(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) and type(a) is type(b)


@settings(max_examples=300, deadline=None)
@given(values)
def test_dumps_and_loads_match_json(value):
    for indent in (None, 0, 2, 4):
        assert fastjson.dumps(value, indent=indent) == json.dumps(value, indent=indent)
    assert fastjson.dumps(value, compact=True) == json.dumps(value, separators=(",", ":"))
    text = json.dumps(value)
    for data in (text, text.encode(), " \n" + text + "\r\n\t"):
        assert same_value(fastjson.loads(data), json.loads(data))


@pytest.mark.parametrize(
    "value",
    [
        {1: 2, None: 3, True: 4},  # noqa: F601 - non-str keys: json's conversion rules
        (1, (2, 3)),  # tuples are lists
        {"f": 1.5, "n": float("nan"), "i": float("-inf")},
        "top-level string \u2028 \x00",
        {"a": {"b": []}, "c": {}},
    ],
)
def test_unusual_values_match_json(value):
    for indent in (None, 2):
        assert fastjson.dumps(value, indent=indent) == json.dumps(value, indent=indent)


def test_nan_and_infinity_are_read_like_json():
    got = fastjson.loads("[NaN, Infinity, -Infinity]")
    assert math.isnan(got[0]) and got[1:] == [math.inf, -math.inf]


@pytest.mark.parametrize(
    "bad", ["", "  ", "{", "{} x", "[1,]", "\ufeff{}", b"\xff\xfe", b"{}\x00", '{"a": tru}', '"\\x"']
)
def test_invalid_input_raises_what_json_raises(bad):
    with pytest.raises(ValueError) as mine:
        fastjson.loads(bad)
    with pytest.raises(ValueError) as theirs:
        json.loads(bad)
    assert type(mine.value) is type(theirs.value) and str(mine.value) == str(theirs.value)


def test_unserializable_and_circular_raise_like_json():
    class Opaque:
        pass

    for indent in (None, 2):
        with pytest.raises(TypeError) as mine:
            fastjson.dumps({"x": [Opaque()]}, indent=indent)
        with pytest.raises(TypeError) as theirs:
            json.dumps({"x": [Opaque()]}, indent=indent)
        assert str(mine.value) == str(theirs.value)
    loop = []
    loop.append(loop)
    for indent in (None, 2):
        with pytest.raises(ValueError, match="Circular reference"):
            fastjson.dumps(loop, indent=indent)
    # a failed call leaves no state behind: the next one works
    assert fastjson.dumps([[1], [1]]) == "[[1], [1]]"


def test_hot_commands_do_not_import_json():
    """The reason the module exists: state/kill/start/delete stay off json/re."""
    import subprocess
    import sys

    code = (
        "import sys; sys.path.insert(0, %r); from pyrunc import fastjson, state; "
        "fastjson.loads(fastjson.dumps({'a': [1, 'x']}, indent=2)); "
        "import pyrunc.cli.lifecycle; "
        "print(sorted(m for m in ('json', 're', 'enum', 'signal', 'ctypes') if m in sys.modules))"
        % (__import__("os").path.dirname(__import__("os").path.dirname(fastjson.__file__)),)
    )
    out = subprocess.run([sys.executable, "-IS", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
