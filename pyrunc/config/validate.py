"""Entry points of config validation: load a config.json, judge it, list problems.

`create` calls :func:`load_config` and ``config.convert.build`` (which
runs :func:`validate_config`, the conversion and the model's rules; first
problem raises ConfigError, one line); ``pyrunc validate`` calls
:func:`check_bundle` or :func:`check_file` and prints every line they
return: every schema and semantic problem, and when there is none, the
verdict of ``build`` itself, so that validate and create cannot disagree.

Two layers run in order: the JSON schema (pyrunc.config.schema, shapes and
types) and the semantic rules (pyrunc.config.semantic, relations and prose
MUSTs).  Neither imports anything heavy: a well-formed config is decoded by
json's C scanner directly, and `json` itself (which imports `re`, several
milliseconds) is imported only to explain a malformed one.
"""

from __future__ import annotations

from .. import lightos as os  # os's calls without importing os (lightos.py)

from pyrunc import fastjson
from pyrunc.config import schema, semantic
from pyrunc.errors import ConfigError

__all__ = [
    "load_config",
    "validate_config",
    "config_problems",
    "config_warnings",
    "check_bundle",
    "check_file",
    "create_problems",
    "validate_state",
    "validate_features",
]

LABEL = "config.json"


def _reject_constant(name):
    # Python's json accepts NaN/Infinity; JSON (and Go's decoder) does not.
    raise ValueError("%s is not a JSON value" % name)


def _has_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _lone_surrogate(doc):
    """(path, string, is_key) of the first string in *doc* (key or value)
    holding a lone UTF-16 surrogate, or None.  Iterative: the document may
    be nested as deeply as the decoder allows."""
    stack: list[tuple[tuple, object]] = [((), doc)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, str):
            if _has_surrogate(node):
                return path, node, False
        elif isinstance(node, dict):
            for key, value in node.items():
                if _has_surrogate(key):
                    return path + (key,), key, True
                stack.append((path + (key,), value))
        elif isinstance(node, list):
            stack.extend((path + (i,), value) for i, value in enumerate(node))
    return None


def _check_surrogates(text: str, doc, label: str) -> None:
    """Refuse a "\\ud800"-style escape that is not half of a pair.

    JSON can spell such a string but it is no Unicode text: it has no UTF-8
    form, so it could be neither passed to the kernel (an env entry, an
    argument, a path, the hostname) nor written to the state files.  Go's
    decoder (runc) silently turns it into U+FFFD, i.e. runs something else
    than what the file says; pyrunc refuses it, naming the field.  UTF-8
    input cannot hold one (the decoder refuses encoded surrogates), so only
    documents with a \\u escape are walked."""
    if "\\u" in text:
        lowered = text.lower()
        escaped = any(("\\u" + hi) in lowered for hi in ("d8", "d9", "da", "db", "dc", "dd", "de", "df"))
    else:
        escaped = False
    # a str handed in by a caller (not decoded here) may hold one as is
    if not escaped and not _has_surrogate(text):
        return
    found = _lone_surrogate(doc)
    if found is None:
        return
    path, value, is_key = found
    bad = next(c for c in value if 0xD800 <= ord(c) <= 0xDFFF)
    what = "key %s" % schema.render_value(value) if is_key else schema.render_value(value)
    raise ConfigError(
        "%s: %s: %s contains a lone surrogate \\u%04x (half of a UTF-16 pair), "
        "which is not a character" % (label, schema.format_path(path), what, ord(bad))
    )


def parse_json(data: bytes | str, label: str = LABEL):
    """Decode a JSON document; errors become ConfigError naming line/column."""
    if isinstance(data, (bytes, bytearray)):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError("%s: not valid UTF-8 at byte %d" % (label, e.start)) from None
    doc = fastjson.scan(data, constants=False)
    if doc is fastjson.UNDECIDED:
        doc = _slow_loads(data, label)
    _check_surrogates(data, doc, label)
    return doc


def _slow_loads(data: str, label: str):
    import json

    try:
        return json.loads(data, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise ConfigError("%s: invalid JSON at line %d, column %d: %s" % (label, e.lineno, e.colno, e.msg)) from None
    except ValueError as e:  # from _reject_constant
        raise ConfigError("%s: invalid JSON: %s" % (label, e)) from None
    except RecursionError:
        raise ConfigError("%s: invalid JSON: nested too deeply" % label) from None


def load_config(path: str) -> dict:
    """Read and decode config.json at *path* (not yet validated).

    Raises ConfigError for a missing or unreadable file and for malformed
    JSON (the message names line and column).
    """
    try:
        data = os.read_file(path)
    except FileNotFoundError:
        raise ConfigError("%s: %s does not exist" % (LABEL, path)) from None
    except IsADirectoryError:
        raise ConfigError("%s: %s is a directory" % (LABEL, path)) from None
    except OSError as e:
        raise ConfigError("%s: cannot read %s: %s" % (LABEL, path, e.strerror)) from None
    doc = parse_json(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("process", {}), (dict, type(None))):
        # callers read fields before validating (run looks at
        # process.terminal): they get an object with an object process (or
        # none), or this line, the schema's
        raise ConfigError(schema.problems(doc, "config")[0])
    cut = _cut_deep(doc) if data.count(b"[") + data.count(b"{") > MAX_DEPTH else []
    dropped = _drop_null_members(doc) if b"null" in data else []
    if cut or dropped:
        semantic.note_dropped(doc, nulls=dropped, cut=cut)
    return doc


# No field of a config nests deeper than about ten levels.  Anything deeper
# (only possible in members the spec does not define, which MUST be ignored)
# is cut here: every later step (the state files, the stage protocol)
# decodes and encodes the document again with Python's recursion limit,
# shared with the runtime's own call depth, and a 990-level unknown member
# made create fail with a RecursionError.  runc ignores such members too.
MAX_DEPTH = 64


def _cut_deep(doc: dict) -> list[tuple]:
    """Replace every object or array found at depth MAX_DEPTH by null (a
    member is then dropped with the other nulls); return their paths."""
    cut: list[tuple] = []
    stack: list[tuple[tuple, dict | list, int]] = [((), doc, 0)]
    while stack:
        path, node, depth = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in list(items):
            if isinstance(value, (dict, list)):
                if depth + 1 >= MAX_DEPTH:
                    node[key] = None
                    cut.append(path + (key,))
                else:
                    stack.append((path + (key,), value, depth + 1))
    return cut


def _drop_null_members(doc: dict) -> list[tuple]:
    """Remove the object members whose value is null; return their paths.

    Go's decoder (runc's) leaves a field untouched for null, so
    ``"seccomp": null`` means no seccomp there, as if the member were
    absent; generated configs do contain such members.  pyrunc takes them
    the same way, and the semantic layer warns about each one.  (A null
    inside an array is not a missing member: the schema judges it.)"""
    dropped: list[tuple] = []
    stack: list[tuple[tuple, dict | list]] = [((), doc)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, dict):
            nulls = [key for key, value in node.items() if value is None]
            for key in nulls:
                del node[key]
                dropped.append(path + (key,))
            stack.extend((path + (key,), value) for key, value in node.items() if isinstance(value, (dict, list)))
        elif isinstance(node, list):
            stack.extend((path + (i,), value) for i, value in enumerate(node) if isinstance(value, (dict, list)))
    dropped.sort(key=lambda p: [str(x) for x in p])
    return dropped


def validate_config(doc: dict, *, require_process: bool = True, warn=None) -> None:
    """Schema, then semantic rules; raise ConfigError with the first problem.

    *warn* (optional) is called with each warning line: what pyrunc accepts
    because runc does (docs/validation.md, "Refuse, warn or accept")."""
    schema.validate(doc, "config")
    semantic.check(doc, require_process=require_process, warn=warn)


def config_warnings(doc) -> list[str]:
    """The warning lines of a decoded config (accepted, but worth saying)."""
    return semantic.warnings(doc)


def config_problems(doc, *, require_process: bool = True) -> list[str]:
    """Every schema and semantic problem of a decoded config, one line each."""
    found = schema.problems(doc, "config")
    found.extend(semantic.problems(doc, require_process=require_process))
    return found


def _root_problems(doc, bundle_dir: str) -> list[str]:
    """The bundle rule the document alone cannot show: root.path is a directory."""
    root = doc.get("root") if isinstance(doc, dict) else None
    path = root.get("path") if isinstance(root, dict) else None
    if not isinstance(path, str) or not path or "\0" in path:
        return []
    full = os.path.join(bundle_dir, path)
    if not os.path.exists(full):
        return ["%s: root.path: %s does not exist (looked for %s)" % (LABEL, schema.render_value(path), full)]
    if not os.path.isdir(full):
        return ["%s: root.path: %s is not a directory" % (LABEL, schema.render_value(path))]
    return []


def _log_warning(line: str) -> None:
    from pyrunc.log import log

    log.warning(line)


def check_file(path: str, *, bundle_dir: str | None = None, warn=_log_warning) -> list[str]:
    """Every problem of the config file at *path* (empty list: valid).

    *bundle_dir* is where ``root.path`` is resolved; by default the file's
    own directory.  The warnings `create` would give are passed to *warn*
    (by default the log, as `create` does: one line each, and they do not
    make the file invalid).
    """
    try:
        doc = load_config(path)
    except ConfigError as e:
        return [str(e)]
    bundle_dir = bundle_dir or os.path.dirname(os.path.abspath(path))
    found = config_problems(doc)
    found.extend(_root_problems(doc, bundle_dir))
    if warn is not None:
        for line in config_warnings(doc):
            warn(line)
    if not found:
        found.extend(create_problems(doc, bundle_dir))
    return found


def create_problems(doc, bundle_dir: str) -> list[str]:
    """What `create` would refuse in a config the schema and the semantic
    rules accept: its whole judgement (config.convert.build: conversion,
    seccomp compilation, resource values, the model's rules), one line, as
    create prints it.  Empty: create accepts the config."""
    from pyrunc.config.convert import build
    from pyrunc.errors import PyruncError

    try:
        build(doc, os.path.abspath(bundle_dir))
    except PyruncError as e:
        return [str(e)]
    return []


def check_bundle(bundle_dir: str, *, warn=_log_warning) -> list[str]:
    """Every problem of the bundle at *bundle_dir* (its config.json and root)."""
    if not os.path.isdir(bundle_dir):
        return ["bundle %s is not a directory" % bundle_dir]
    return check_file(os.path.join(bundle_dir, "config.json"), bundle_dir=bundle_dir, warn=warn)


# --------------------------------------------------------------------------
# state and features documents (pyrunc's own outputs)
# --------------------------------------------------------------------------


def state_problems(doc) -> list[str]:
    found = schema.problems(doc, "state")
    if not isinstance(doc, dict):
        return found
    label = "state"
    version = doc.get("ociVersion")
    if isinstance(version, str) and semantic.parse_semver(version) is None:
        found.append(
            schema.problem_line(
                label, ("ociVersion",), "%s is not a SemVer 2.0.0 version" % schema.render_value(version)
            )
        )
    if doc.get("status") in ("created", "running") and "pid" not in doc:
        found.append(schema.problem_line(label, ("pid",), "required property is missing (status %s)" % doc["status"]))
    bundle = doc.get("bundle")
    if isinstance(bundle, str) and not bundle.startswith("/"):
        found.append(
            schema.problem_line(label, ("bundle",), "%s is not an absolute path" % schema.render_value(bundle))
        )
    return found


def validate_state(doc) -> None:
    """Raise ConfigError unless *doc* is a valid runtime-spec state document."""
    found = state_problems(doc)
    if found:
        raise ConfigError(found[0])


def features_problems(doc) -> list[str]:
    found = schema.problems(doc, "features")
    if not isinstance(doc, dict):
        return found
    versions = {}
    for field in ("ociVersionMin", "ociVersionMax"):
        value = doc.get(field)
        if isinstance(value, str):
            parsed = semantic.parse_semver(value)
            if parsed is None:
                found.append(
                    schema.problem_line(
                        "features", (field,), "%s is not a SemVer 2.0.0 version" % schema.render_value(value)
                    )
                )
            else:
                versions[field] = parsed[:3]
    if len(versions) == 2 and versions["ociVersionMin"] > versions["ociVersionMax"]:
        found.append(
            schema.problem_line(
                "features",
                ("ociVersionMin",),
                "%s is newer than ociVersionMax %s"
                % (schema.render_value(doc["ociVersionMin"]), schema.render_value(doc["ociVersionMax"])),
            )
        )
    return found


def validate_features(doc) -> None:
    """Raise ConfigError unless *doc* is a valid runtime-spec features document."""
    found = features_problems(doc)
    if found:
        raise ConfigError(found[0])
