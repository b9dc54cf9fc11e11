"""Property test: whatever a config.json contains, validation answers with
ConfigError lines (never another exception, never a multi-line message),
and a document the official schema accepts is never refused by pyrunc's
schema layer."""

import copy
import json
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from pyrunc.config import schema, validate  # noqa: E402
from pyrunc.errors import ConfigError  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "validation"
BASES = [json.loads((DATA / name).read_text()) for name in ("runc-spec-default.json", "rich-config.json")]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.text(min_size=2000, max_size=3000),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)


def _paths(node, path=()):
    yield path
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, path + (i,))


@st.composite
def mutated_configs(draw):
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        path = draw(st.sampled_from(paths))
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add", "nest"]))
        if action == "replace":
            parent[path[-1]] = draw(json_values)
        elif action == "delete":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(json_values)
        elif action == "nest":
            value = parent[path[-1]]
            for _ in range(draw(st.integers(1, 50))):
                value = [value]
            parent[path[-1]] = value
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_configs())
def test_any_mutation_gives_one_line_errors_or_passes(doc):
    try:
        validate.validate_config(doc)
    except ConfigError as e:
        text = str(e)
        assert text.startswith("config.json: ") and "\n" not in text and len(text) < 400
    for line in validate.config_problems(doc):
        assert line.startswith("config.json: ") and "\n" not in line


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_load_or_fail_with_one_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_bytes(data)
    try:
        doc = validate.load_config(str(path))
    except ConfigError as e:
        assert str(e).startswith("config.json: ") and "\n" not in str(e)
        return
    for line in validate.config_problems(doc):
        assert line.startswith("config.json: ") and "\n" not in line


def test_deep_nesting_is_reported_not_crashed():
    doc = copy.deepcopy(BASES[0])
    value = "x"
    for _ in range(5000):
        value = [value]
    doc["annotations"] = {"deep": value}
    with pytest.raises(ConfigError, match=r"annotations.deep: \[\[\[.*is not of type string"):
        schema.validate(doc)
