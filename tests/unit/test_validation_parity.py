"""pyrunc's schemas judge documents exactly as the runtime-spec's official schemas do.

The official JSON schemas (under ../shared/reference) are run through
jsonschema.Draft4Validator; pyrunc's own schemas through its own compiled
validator.  Compared on every official fixture and on a deterministic
corpus of mutations of valid configs.  Skipped when ../shared is absent.
"""

import copy
import json
import os
import random
from pathlib import Path

import pytest

from pyrunc.config import schema
from pyrunc.config.schema import format_path

HERE = Path(__file__).resolve().parents[1]  # tests/
DATA = HERE / "data" / "validation"
OFFICIAL = (
    Path(os.environ.get("PYRUNC_SPEC_DIR", HERE.parent.parent / "shared" / "reference" / "runtime-spec-v1.3.0"))
    / "schema"
)
if not OFFICIAL.is_dir():
    OFFICIAL = Path("/work/shared/reference/runtime-spec-v1.3.0/schema")

pytestmark = pytest.mark.skipif(not OFFICIAL.is_dir(), reason="official runtime-spec schemas not present")

ENTRY = {"config": "config-schema.json", "state": "state-schema.json", "features": "features-schema.json"}


@pytest.fixture(scope="module")
def official():
    """kind -> function(doc) -> bool (True: valid) using the official schemas."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    resources = [
        (p.name, Resource.from_contents(json.loads(p.read_text()), default_specification=DRAFT4))
        for p in OFFICIAL.glob("*.json")
    ]
    registry = Registry().with_resources(resources)
    validators = {kind: jsonschema.Draft4Validator({"$ref": name}, registry=registry) for kind, name in ENTRY.items()}

    def judge(kind, doc):
        return validators[kind].is_valid(doc)

    return judge


def fixture_files():
    if not OFFICIAL.is_dir():
        return []
    return sorted((OFFICIAL / "test").glob("*/*/*.json"))


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: "/".join(p.parts[-3:]))
def test_official_fixture_verdict(path, official):
    kind, expected = path.parts[-3], path.parts[-2]
    try:
        doc = json.loads(path.read_text())
    except ValueError:
        # invalid-json fixtures: there is no document for a schema to judge
        assert expected == "bad"
        return
    official_ok = official(kind, doc)
    assert official_ok == (expected == "good"), "fixture disagrees with the official schema itself"
    mine = schema.problems(doc, kind)
    assert (not mine) == official_ok, mine


def test_fixture_count():
    """A broken path to the fixtures must not turn into a silent pass."""
    files = fixture_files()
    assert len(files) >= 15
    assert {p.parts[-3] for p in files} == {"config", "state", "features"}


# --------------------------------------------------------------------------
# Generated corpus
# --------------------------------------------------------------------------


def _walk(node, path=()):
    """Every (path, value) in a JSON document, parents first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, path + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, path + (i,))


def _replace(doc, path, value):
    doc = copy.deepcopy(doc)
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


def _delete(doc, path):
    doc = copy.deepcopy(doc)
    node = doc
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    return doc


def _type_swaps(value):
    if isinstance(value, bool):
        return ["true", 1]
    if isinstance(value, int):
        return [str(value), float(value) + 0.5, True, None]
    if isinstance(value, str):
        return [7, [value], None]
    if isinstance(value, list):
        return [{}, "list"]
    if isinstance(value, dict):
        return [[], 0]
    return ["x"]


def _mutations(doc):
    """(description, mutated path, mutated doc) for every node of *doc*."""
    for path, value in _walk(doc):
        if not path:
            continue
        for swapped in _type_swaps(value):
            yield "type", path, _replace(doc, path, swapped)
        if isinstance(path[-1], str):
            yield "missing", path, _delete(doc, path)
        if isinstance(value, str):
            yield "enum", path, _replace(doc, path, "NOT_A_KNOWN_VALUE")
            yield "pattern", path, _replace(doc, path, value + "\n!")
            yield "empty", path, _replace(doc, path, "")
        if isinstance(value, int) and not isinstance(value, bool):
            for number in (-1, -(2**63) - 1, 2**31, 2**32, 2**63, 2**64, 0, 512):
                yield "range", path, _replace(doc, path, number)
        if isinstance(value, list):
            yield "emptylist", path, _replace(doc, path, [])
        if isinstance(value, dict):
            extra = dict(value)
            extra["zzUnknownField"] = {"x": 1}
            yield "extra", path, _replace(doc, path, extra)


def _bases():
    bases = [json.loads((DATA / name).read_text()) for name in ("runc-spec-default.json", "rich-config.json")]
    for name in (
        "spec-example.json",
        "linux-rdma.json",
        "linux-netdevice.json",
        "zos-example.json",
        "freebsd-example.json",
    ):
        path = OFFICIAL / "test" / "config" / "good" / name
        if path.is_file():
            bases.append(json.loads(path.read_text()))
    return bases


def corpus(size=1500, seed=20251104):
    """A deterministic sample of mutations of the valid base configs."""
    everything = [m for base in _bases() for m in _mutations(base)]
    rng = random.Random(seed)
    rng.shuffle(everything)
    return everything[:size]


# Where pyrunc's schemas accept on purpose what the official ones refuse,
# because runc 1.1.5 runs it (docs/validation.md, "Refuse, warn or accept:
# the decisions"); the semantic layer warns about the first two.
def _deliberate(kind_of_change, path, doc):
    """True if *doc* is refused by the official schemas only for one of
    pyrunc's deliberate divergences."""
    if kind_of_change == "missing" and path == ("ociVersion",):
        return True
    if kind_of_change == "missing" and (
        (len(path) == 5 and path[:3] == ("linux", "resources", "devices") and path[4] == "allow")
        or path == ("linux", "resources", "pids", "limit")
        or (
            len(path) == 7 and path[:3] == ("linux", "seccomp", "syscalls") and path[4] == "args" and path[6] == "value"
        )
        or path in (("process", "consoleSize", "height"), ("process", "consoleSize", "width"))
    ):
        return True
    if kind_of_change == "range" and len(path) == 4 and path[:2] == ("linux", "devices") and path[3] == "fileMode":
        node = doc["linux"]["devices"][path[2]]["fileMode"]
        return 511 < node <= 4294967295
    return False


DIVERGENCES = [
    ("ociVersion missing", lambda d: d.pop("ociVersion")),
    ("device fileMode beyond 0o777", lambda d: d["linux"]["devices"][0].__setitem__("fileMode", 0o4666)),
    ("device rule without allow", lambda d: d["linux"]["resources"]["devices"][0].pop("allow")),
    ("pids without limit", lambda d: d["linux"]["resources"].__setitem__("pids", {})),
    ("seccomp argument without value", lambda d: d["linux"]["seccomp"]["syscalls"][2]["args"][0].pop("value")),
    ("consoleSize without width", lambda d: d["process"].__setitem__("consoleSize", {"height": 1})),
    ("rootfsPropagation rslave", lambda d: d["linux"].__setitem__("rootfsPropagation", "rslave")),
    ("rootfsPropagation rprivate", lambda d: d["linux"].__setitem__("rootfsPropagation", "rprivate")),
    ("rootfsPropagation rshared", lambda d: d["linux"].__setitem__("rootfsPropagation", "rshared")),
    ("rootfsPropagation runbindable", lambda d: d["linux"].__setitem__("rootfsPropagation", "runbindable")),
]


@pytest.mark.parametrize("mutate", [m for _, m in DIVERGENCES], ids=[n for n, _ in DIVERGENCES])
def test_deliberate_divergences(mutate, official):
    """Each divergence is real (the official schemas refuse it) and is the
    only one (pyrunc's schemas accept it)."""
    doc = json.loads((DATA / "rich-config.json").read_text())
    mutate(doc)
    assert not official("config", doc)
    assert schema.problems(doc, "config") == []


@pytest.fixture(scope="module")
def judged_corpus(official):
    out = []
    for kind_of_change, path, doc in corpus():
        out.append((kind_of_change, path, doc, official("config", doc)))
    return out


def test_corpus_is_large_and_mixed(judged_corpus):
    assert len(judged_corpus) >= 200
    valid = sum(1 for *_, ok in judged_corpus if ok)
    invalid = len(judged_corpus) - valid
    # both verdicts must be well represented or the parity test proves little
    assert valid >= 100 and invalid >= 100, (valid, invalid)


def test_corpus_verdict_parity(judged_corpus):
    disagreements = []
    for kind_of_change, path, doc, official_ok in judged_corpus:
        mine = schema.problems(doc, "config")
        if not official_ok and not mine and _deliberate(kind_of_change, path, doc):
            continue
        if (not mine) != official_ok:
            disagreements.append((kind_of_change, format_path(path), official_ok, mine[:1]))
    assert not disagreements, disagreements[:10]


def test_corpus_errors_name_the_mutated_field(judged_corpus):
    """A wrong type or a missing required field is reported at its own path
    (or, through anyOf/oneOf, at the enclosing value), on one line."""
    checked = 0
    for kind_of_change, path, doc, official_ok in judged_corpus:
        if official_ok or kind_of_change not in ("type", "missing") or _deliberate(kind_of_change, path, doc):
            continue
        lines = schema.problems(doc, "config")
        assert all("\n" not in line and line.startswith("config.json: ") for line in lines)
        shown = format_path(path)
        assert any(line.startswith("config.json: %s: " % shown) for line in lines), (shown, lines)
        checked += 1
    assert checked >= 50


def test_corpus_with_semantic_layer_never_crashes(judged_corpus):
    """The semantic layer sees schema-invalid documents in check_bundle: it
    must skip wrong types, never raise anything but report lines."""
    from pyrunc.config import validate

    for _, _, doc, _ in judged_corpus:
        for line in validate.config_problems(doc):
            assert line.startswith("config.json: ") and "\n" not in line


@pytest.mark.parametrize(
    "kind,doc",
    [
        ("state", {"ociVersion": "1.3.0", "id": "c1", "status": "paused", "bundle": "/b"}),
        ("state", {"ociVersion": "1.3.0", "id": "c1", "status": "running", "pid": -1, "bundle": "/b"}),
        (
            "state",
            {"ociVersion": "1.3.0", "id": "c1", "status": "running", "pid": 4, "bundle": "/b", "annotations": {"a": 1}},
        ),
        ("state", {"ociVersion": "1.3.0", "id": "c1", "status": "stopped", "bundle": "/b", "x": 1}),
        ("state", {"id": "c1", "status": "stopped", "bundle": "/b"}),
        ("features", {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0", "linux": {"namespaces": ["net"]}}),
        ("features", {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0", "linux": {"capabilities": ["chown"]}}),
        (
            "features",
            {
                "ociVersionMin": "1.0.0",
                "ociVersionMax": "1.3.0",
                "linux": {"seccomp": {"actions": ["SCMP_ACT_ALLOW"], "supportedFlags": []}},
            },
        ),
        ("features", {"ociVersionMin": "1.0.0", "ociVersionMax": 1}),
    ],
)
def test_state_and_features_parity(kind, doc, official):
    assert (not schema.problems(doc, kind)) == official(kind, doc)
