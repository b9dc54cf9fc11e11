"""Error lines, the schema interpreter's keywords, and the validate.py entry points."""

import json
import os
from pathlib import Path

import pytest

from pyrunc.config import schema, validate
from pyrunc.config.schema import format_path, render_value
from pyrunc.errors import ConfigError

DATA = Path(__file__).resolve().parents[1] / "data" / "validation"


@pytest.fixture
def default():
    return json.loads((DATA / "runc-spec-default.json").read_text())


def first_error(doc, kind="config"):
    with pytest.raises(ConfigError) as e:
        schema.validate(doc, kind)
    text = str(e.value)
    assert "\n" not in text
    return text


# --------------------------------------------------------------------------
# message format
# --------------------------------------------------------------------------


def test_enum_message(default):
    default["linux"]["namespaces"][2]["type"] = "foo"
    assert first_error(default) == (
        'config.json: linux.namespaces[2].type: "foo" is not one of pid, network, mount, ipc, uts, user, cgroup, time'
    )


def test_type_message(default):
    default["linux"]["resources"]["memory"] = {"limit": "1g"}
    assert first_error(default) == 'config.json: linux.resources.memory.limit: "1g" is not of type integer'


def test_required_message(default):
    # (a missing ociVersion is only warned about: runc runs such configs)
    del default["root"]["path"]
    assert first_error(default) == "config.json: root.path: required property is missing"


def test_range_message(default):
    default["process"]["user"]["uid"] = 2**32
    assert first_error(default) == "config.json: process.user.uid: 4294967296 is greater than the maximum 4294967295"
    default["process"]["user"]["uid"] = -1
    assert first_error(default) == "config.json: process.user.uid: -1 is less than the minimum 0"


def test_pattern_message(default):
    default["process"]["rlimits"][0]["type"] = "NOFILE"
    assert (
        first_error(default) == 'config.json: process.rlimits[0].type: "NOFILE" does not match pattern ^RLIMIT_[A-Z]+$'
    )


def test_min_items_message(default):
    default["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": [], "action": "SCMP_ACT_LOG"}],
    }
    assert first_error(default) == "config.json: linux.seccomp.syscalls[0].names: [] has fewer than 1 item"


def test_bool_is_not_integer_and_float_is_not_integer(default):
    default["process"]["user"]["uid"] = True
    assert first_error(default) == "config.json: process.user.uid: true is not of type integer"
    default["process"]["user"]["uid"] = 1.0
    assert first_error(default) == "config.json: process.user.uid: 1.0 is not of type integer"


def test_document_root_message():
    assert first_error([]) == "config.json: (document): [] is not of type object"
    assert first_error("x", "state") == 'state: (document): "x" is not of type object'


def test_odd_keys_are_quoted(default):
    default["annotations"] = {"org.example.key": 5}
    assert first_error(default) == 'config.json: annotations["org.example.key"]: 5 is not of type string'
    default["annotations"] = {"a\nb": 5}
    assert first_error(default) == 'config.json: annotations["a\\nb"]: 5 is not of type string'


def test_long_and_multiline_values_stay_on_one_short_line(default):
    default["hostname"] = ["x" * 10000]
    text = first_error(default)
    assert len(text) < 160 and text.endswith("... is not of type string")
    default["hostname"] = ["line1\u2028line2\nline3"]
    text = first_error(default)
    assert "\n" not in text and "\u2028" not in text and "line3" in text


def test_render_and_path_helpers():
    assert format_path(()) == "(document)"
    assert format_path(("linux", "sysctl", "net.ipv4.ip_forward")) == 'linux.sysctl["net.ipv4.ip_forward"]'
    assert format_path(("process", "env", 3)) == "process.env[3]"
    assert format_path(("a-b",)) == '["a-b"]'
    assert render_value({"k": [1, None, True]}) == '{"k": [1, null, true]}'


def test_problems_lists_every_violation(default):
    default["hostname"] = 1
    default["process"]["cwd"] = 2
    del default["root"]["path"]
    lines = schema.problems(default)
    assert lines == [
        "config.json: process.cwd: 2 is not of type string",
        "config.json: root.path: required property is missing",
        "config.json: hostname: 1 is not of type string",
    ]


def test_single_branch_any_of_reports_the_inner_error(default):
    # linux.namespaces items are an anyOf of one branch in the spec's schema
    default["linux"]["namespaces"][0] = {"path": "/proc/1/ns/pid"}
    assert first_error(default) == "config.json: linux.namespaces[0].type: required property is missing"


# --------------------------------------------------------------------------
# interpreter keywords on small synthetic schemas
# --------------------------------------------------------------------------


def compile_schema(tmp_path, main, **others):
    for name, content in others.items():
        (tmp_path / name).write_text(json.dumps(content))
    (tmp_path / "main.json").write_text(json.dumps(main))
    compiler = schema._Compiler(str(tmp_path))
    check = compiler.target(("main.json", ""))

    def run(doc):
        errs = []
        check(doc, (), errs)
        return [(format_path(p.path), p.message) for p in errs]

    return run


def official_verdict(tmp_path, doc):
    jsonschema = pytest.importorskip("jsonschema")
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    resources = [
        (p.name, Resource.from_contents(json.loads(p.read_text()), default_specification=DRAFT4))
        for p in tmp_path.glob("*.json")
    ]
    registry = Registry().with_resources(resources)
    return jsonschema.Draft4Validator(
        {"$ref": "main.json"}, registry=registry, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    ).is_valid(doc)


KEYWORD_CASES = [
    ({"type": ["string", "null"]}, [None, "a", 1]),
    ({"enum": [1, "a", None, [1]]}, [1, 1.0, True, "a", None, [1], [True], 2]),
    ({"minimum": 0, "exclusiveMinimum": True, "maximum": 10, "exclusiveMaximum": True}, [0, 1, 9.5, 10, "x"]),
    ({"multipleOf": 3}, [9, 10, 1.5, "x"]),
    ({"minLength": 2, "maxLength": 3}, ["a", "ab", "abcd", 5]),
    ({"properties": {"a": {"type": "integer"}}, "additionalProperties": False}, [{"a": 1}, {"b": 1}, {"a": "x"}]),
    (
        {"patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": {"type": "integer"}},
        [{"x-a": "s", "b": 1}, {"x-a": 1}, {"b": "s"}],
    ),
    ({"minProperties": 1, "maxProperties": 2}, [{}, {"a": 1}, {"a": 1, "b": 2, "c": 3}]),
    (
        {"items": [{"type": "string"}, {"type": "integer"}], "additionalItems": False},
        [["a", 1], ["a"], [1], ["a", 1, 2]],
    ),
    ({"items": [{"type": "string"}], "additionalItems": {"type": "boolean"}}, [["a", True], ["a", 1]]),
    ({"uniqueItems": True}, [[1, 2], [1, 1], [1, True], [{"a": 1}, {"a": 1}], [1, 1.0]]),
    ({"maxItems": 1}, [[], [1], [1, 2]]),
    ({"anyOf": [{"type": "string"}, {"minimum": 5}]}, ["a", 6, 1]),
    ({"oneOf": [{"type": "integer"}, {"minimum": 5}]}, [1, 6, 5.5, "x"]),
    ({"allOf": [{"type": "integer"}, {"minimum": 5}]}, [6, 4, "x"]),
    ({"not": {"type": "string"}}, [1, "a"]),
    ({"format": "ipv4"}, ["10.0.0.1", "10.0.0.256", 5]),
    (
        {
            "definitions": {"n": {"type": "integer"}},
            "properties": {"a": {"$ref": "#/definitions/n"}, "b": {"$ref": "other.json#/definitions/s"}},
        },
        [{"a": 1, "b": "s"}, {"a": "x"}, {"b": 1}],
    ),
]


@pytest.mark.parametrize("main,docs", KEYWORD_CASES, ids=[json.dumps(c[0])[:40] for c in KEYWORD_CASES])
def test_keyword_verdicts_match_jsonschema(tmp_path, main, docs):
    other = {"definitions": {"s": {"type": "string"}}}
    run = compile_schema(tmp_path, main, **{"other.json": other})
    for doc in docs:
        errs = run(doc)
        assert (not errs) == official_verdict(tmp_path, doc), (doc, errs)
        for _path, message in errs:
            assert "\n" not in message


def test_any_of_picks_the_branch_that_got_furthest(tmp_path):
    run = compile_schema(
        tmp_path,
        {
            "anyOf": [
                {"type": "string"},
                {"type": "object", "required": ["kind"], "properties": {"kind": {"enum": ["a", "b"]}}},
            ]
        },
    )
    assert run({"kind": "c"}) == [("kind", '"c" is not one of a, b')]
    # no branch got past its type check: the first type error stands
    assert run(5) == [("(document)", "5 is not of type string")]


def test_one_of_reports_ambiguity(tmp_path):
    run = compile_schema(tmp_path, {"oneOf": [{"type": "integer"}, {"minimum": 0}]})
    assert run(3) == [("(document)", "3 matches more than one of the allowed forms")]
    assert run(-1) == []


def test_missing_ref_target_is_a_config_error(tmp_path):
    run = compile_schema(tmp_path, {"properties": {"a": {"$ref": "#/definitions/nope"}}})
    with pytest.raises(ConfigError, match="missing"):
        run({"a": 1})


# --------------------------------------------------------------------------
# validate.py entry points
# --------------------------------------------------------------------------


def test_load_config_reports_line_and_column(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "ociVersion": "1.3.0",\n  "root": {"path": "rootfs",}\n}\n')
    with pytest.raises(ConfigError) as e:
        validate.load_config(str(path))
    assert str(e.value).startswith("config.json: invalid JSON at line 3, column 29: ")


@pytest.mark.parametrize(
    "content,phrase",
    [
        (b'{"a": NaN}', "NaN is not a JSON value"),
        (b'{"a": "\xff"}', "not valid UTF-8 at byte 7"),
        (b"", "invalid JSON at line 1, column 1"),
        (b"[" * 100000 + b"]" * 100000, "invalid JSON"),
    ],
)
def test_load_config_rejects_non_json(tmp_path, content, phrase):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="^config.json: ") as e:
        validate.load_config(str(path))
    assert phrase in str(e.value)
    assert "\n" not in str(e.value)


def test_load_config_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        validate.load_config(str(tmp_path / "config.json"))
    with pytest.raises(ConfigError, match="is a directory"):
        validate.load_config(str(tmp_path))


def make_bundle(tmp_path, doc, rootfs=True):
    (tmp_path / "config.json").write_text(json.dumps(doc))
    if rootfs:
        (tmp_path / "rootfs").mkdir()
    return str(tmp_path)


def test_check_bundle_valid(tmp_path, default):
    assert validate.check_bundle(make_bundle(tmp_path, default)) == []


def test_check_bundle_lists_schema_semantic_and_root_problems(tmp_path, default):
    default["process"]["cwd"] = "relative"
    default["process"]["user"]["uid"] = "0"
    default["linux"]["namespaces"].append({"type": "pid"})
    problems = validate.check_bundle(make_bundle(tmp_path, default, rootfs=False))
    assert problems == [
        'config.json: process.user.uid: "0" is not of type integer',
        'config.json: process.cwd: "relative" is not an absolute path',
        'config.json: linux.namespaces[5].type: "pid" duplicates namespaces[0]',
        'config.json: root.path: "rootfs" does not exist (looked for %s)' % os.path.join(str(tmp_path), "rootfs"),
    ]


def test_check_bundle_bad_json_and_missing_dir(tmp_path):
    (tmp_path / "config.json").write_text("{")
    [line] = validate.check_bundle(str(tmp_path))
    assert line.startswith("config.json: invalid JSON at line 1")
    assert validate.check_bundle(str(tmp_path / "nope")) == ["bundle %s is not a directory" % (tmp_path / "nope")]


def test_check_file_resolves_root_next_to_the_file(tmp_path, default):
    make_bundle(tmp_path, default)
    assert validate.check_file(str(tmp_path / "config.json")) == []
    (tmp_path / "rootfs").rmdir()
    (tmp_path / "rootfs").write_text("")
    assert validate.check_file(str(tmp_path / "config.json")) == ['config.json: root.path: "rootfs" is not a directory']


def test_validate_config_schema_before_semantic(default):
    default["process"]["cwd"] = 5
    default["linux"]["namespaces"].append({"type": "pid"})
    with pytest.raises(ConfigError, match=r"^config.json: process.cwd: 5 is not of type string$"):
        validate.validate_config(default)
    default["process"]["cwd"] = "/"
    with pytest.raises(ConfigError, match="duplicates"):
        validate.validate_config(default)


STATE = {
    "ociVersion": "1.3.0",
    "id": "c1",
    "status": "running",
    "pid": 42,
    "bundle": "/run/b",
    "annotations": {"k": "v"},
}


def test_validate_state():
    validate.validate_state(STATE)
    validate.validate_state(dict(STATE, status="paused") | {"status": "stopped"})
    for change, phrase in [
        ({"status": "paused"}, 'status: "paused" is not one of creating, created, running, stopped'),
        ({"pid": -1}, "pid: -1 is less than the minimum 0"),
        ({"bundle": "rel"}, 'bundle: "rel" is not an absolute path'),
        ({"ociVersion": "1.x"}, "ociVersion"),
    ]:
        with pytest.raises(ConfigError, match="^state: ") as e:
            validate.validate_state(dict(STATE, **change))
        assert phrase in str(e.value)
    no_pid = dict(STATE)
    del no_pid["pid"]
    with pytest.raises(ConfigError, match="state: pid: required property is missing"):
        validate.validate_state(no_pid)


def test_validate_features():
    good = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": ["prestart"],
        "linux": {
            "namespaces": ["pid", "time"],
            "capabilities": ["CAP_CHOWN"],
            "seccomp": {"enabled": True, "actions": ["SCMP_ACT_ALLOW"]},
        },
    }
    validate.validate_features(good)
    with pytest.raises(ConfigError, match=r"^features: ociVersionMax: required property is missing$"):
        validate.validate_features({"ociVersionMin": "1.0.0"})
    with pytest.raises(ConfigError, match="newer than ociVersionMax"):
        validate.validate_features(dict(good, ociVersionMin="1.4.0"))
    with pytest.raises(ConfigError, match=r'linux.capabilities\[0\]: "chown" does not match'):
        validate.validate_features(dict(good, linux={"capabilities": ["chown"]}))


def test_unknown_kind():
    with pytest.raises(ValueError):
        schema.validate({}, "bogus")
