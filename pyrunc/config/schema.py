"""A small, fast JSON-Schema (draft-04 subset) validator for pyrunc's own schemas.

Why not jsonschema: importing it costs tens of milliseconds and `create`
runs on every container start.  Our schemas (in ``<repo>/schemas``) use a
known subset of draft-04, so each schema node is compiled once into a
Python closure ``check(instance, path, problems)`` that appends
:class:`Problem` records; a valid document produces none.  ``$ref`` targets
are compiled on first use, so validating a config only pays for the parts
of the schemas that the document actually reaches.

Supported keywords: type, enum, pattern, minLength/maxLength, minimum/maximum
(with draft-04 boolean exclusiveMinimum/exclusiveMaximum), multipleOf,
properties, required, additionalProperties, patternProperties,
minProperties/maxProperties, items (single schema or tuple), additionalItems,
minItems/maxItems, uniqueItems, allOf, anyOf, oneOf, not, $ref (same file or
sibling file, JSON pointer fragment) and format (date-time, ipv4, ipv6 are
checked; unknown formats are ignored as draft-04 allows).
As in draft-04, keywords next to ``$ref`` are ignored.

Error lines look like::

    config.json: linux.namespaces[2].type: "foo" is not one of pid, network, ...
"""

from __future__ import annotations

from .. import lightos as os  # os's calls without importing os (lightos.py)

from pyrunc import fastjson
from pyrunc.errors import ConfigError

__all__ = ["validate", "problems", "Problem", "format_path", "render_value", "problem_line", "schema_dir", "KINDS"]


class Problem:
    """One violation: where (path of keys/indexes) and what (message text).

    ``type_ok`` is False for "wrong type" errors: when choosing the most
    telling error of a failed anyOf/oneOf, a branch that got past the type
    check wins.  (A plain class: typing.NamedTuple would cost milliseconds
    of import time on every `create`.)
    """

    __slots__ = ("path", "message", "type_ok")

    def __init__(self, path: tuple, message: str, type_ok: bool = True):
        self.path = path
        self.message = message
        self.type_ok = type_ok

    def __repr__(self):
        return "Problem(%r, %r)" % (self.path, self.message)

    def __eq__(self, other):
        return isinstance(other, Problem) and (self.path, self.message) == (other.path, other.message)

    # no __hash__: a class that defines __eq__ alone is unhashable (__hash__ None)


TYPE_CHECKING = False  # typing is for the checker only: not imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Literal, TypeAlias

    # A compiled schema node: check(instance, path, problems) -> None
    Check: TypeAlias = Callable[[object, tuple, list[Problem]], None]

# kind -> (schema file, label that starts every error line)
KINDS = {
    "config": ("config.json", "config.json"),
    "state": ("state.json", "state"),
    "features": ("features.json", "features"),
}

_VALUE_MAX = 80


# --------------------------------------------------------------------------
# Rendering of paths and values (shared with the semantic checks)
# --------------------------------------------------------------------------


def _one_line(text: str) -> str:
    """Escape anything that could break the one-line guarantee."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else "\\u%04x" % ord(c) for c in text)


def render_value(value: object) -> str:
    """JSON rendering of *value* on one line, shortened when long.

    Renders only about as much as is shown, so a huge or deeply nested
    value costs no more than a small one.
    """
    parts: list[str] = []
    _render(value, parts, [_VALUE_MAX + 1], 0)
    text = _one_line("".join(parts))
    if len(text) > _VALUE_MAX:
        text = text[: _VALUE_MAX - 3] + "..."
    return text


def _render(value, parts: list, budget: list, depth: int) -> None:
    if budget[0] <= 0:
        return
    if depth > _VALUE_MAX:
        piece = "..."
    elif isinstance(value, dict):
        parts.append("{")
        budget[0] -= 1
        for i, (key, item) in enumerate(value.items()):
            if budget[0] <= 0:
                return
            piece = (", " if i else "") + _dumps(str(key), ensure_ascii=False) + ": "
            parts.append(piece)
            budget[0] -= len(piece)
            _render(item, parts, budget, depth + 1)
        piece = "}"
    elif isinstance(value, list):
        parts.append("[")
        budget[0] -= 1
        for i, item in enumerate(value):
            if budget[0] <= 0:
                return
            if i:
                parts.append(", ")
                budget[0] -= 2
            _render(item, parts, budget, depth + 1)
        piece = "]"
    elif isinstance(value, str):
        piece = _dumps(value[: budget[0] + 1], ensure_ascii=False)
    else:
        try:
            piece = _dumps(value)
        except (TypeError, ValueError):
            piece = repr(value)
    parts.append(piece)
    budget[0] -= len(piece)


def format_path(path: tuple) -> str:
    """``("linux", "namespaces", 2, "type")`` -> ``linux.namespaces[2].type``.

    Keys that are not plain identifiers (sysctl names, annotation keys) are
    shown quoted in brackets: ``linux.sysctl["net.ipv4.ip_forward"]``.
    """
    if not path:
        return "(document)"
    out = []
    for part in path:
        if isinstance(part, int):
            out.append("[%d]" % part)
        elif part.isascii() and part.isidentifier():
            out.append("." + part if out else part)
        else:
            out.append("[%s]" % _one_line(_dumps(part, ensure_ascii=False)))
    return "".join(out)


def problem_line(label: str, path: tuple, message: str) -> str:
    return "%s: %s: %s" % (label, format_path(path), message)


# --------------------------------------------------------------------------
# Schema location and loading
# --------------------------------------------------------------------------


def schema_dir() -> str:
    """``pyrunc/schemas``, the package's own copy: in the source tree (where
    the top-level ``schemas`` is a link to it) as in an installed wheel."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schemas")


# --------------------------------------------------------------------------
# Type predicates (draft-04: booleans are not numbers, 1.0 is not an integer)
# --------------------------------------------------------------------------


def _is_integer(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_PYTYPE = {"object": dict, "array": list, "string": str, "boolean": bool}


def _json_equal(a, b) -> bool:
    """Equality as JSON means it: true != 1, 1 == 1.0, deep for containers."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def _enum_text(values) -> str:
    return ", ".join(v if isinstance(v, str) else _dumps(v) for v in values)


def _dumps(value, **kw) -> str:
    from json import dumps  # only when rendering a problem: json (and re) cost milliseconds to import

    return dumps(value, **kw)


def _dollar_text(s: str) -> str:
    # Python's `$` (no MULTILINE) also matches just before a final newline.
    return s[:-1] if s.endswith("\n") else s


def _all_in(text: str, allowed: str) -> bool:
    return all(c in allowed for c in text)


_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_DIGITS = "0123456789"

# The patterns of pyrunc's schemas, as plain predicates with exactly the
# meaning of ``re.search(pattern, s) is not None``: a typical config reaches
# some of them (rlimit types), and importing `re` would cost more than the
# whole validation.  Any other pattern is compiled with `re`.
SIMPLE_PATTERNS = {
    "^RLIMIT_[A-Z]+$": lambda s: (lambda t: len(t) > 7 and t.startswith("RLIMIT_") and _all_in(t[7:], _UPPER))(
        _dollar_text(s)
    ),
    "^CAP_[A-Z_]+$": lambda s: (lambda t: len(t) > 4 and t.startswith("CAP_") and _all_in(t[4:], _UPPER + "_"))(
        _dollar_text(s)
    ),
    "^[cbup]$": lambda s: _dollar_text(s) in ("c", "b", "u", "p"),
    "^[1-9][0-9]*[KMG]B$": lambda s: (
        lambda t: len(t) >= 3 and t[0] in "123456789" and t[-1] == "B" and t[-2] in "KMG" and _all_in(t[1:-2], _DIGITS)
    )(_dollar_text(s)),
    "^[0-9, -]*$": lambda s: _all_in(_dollar_text(s), _DIGITS + ", -"),
    r"^MB:[^\n]*$": lambda s: (lambda t: t.startswith("MB:") and "\n" not in t)(_dollar_text(s)),
    ".{1,}": lambda s: any(c != "\n" for c in s),
}


def pattern_search(pattern: str):
    """A function s -> truthy iff ``re.search(pattern, s)`` finds a match."""
    simple = SIMPLE_PATTERNS.get(pattern)
    if simple is not None:
        return simple
    import re

    search = re.compile(pattern).search
    return lambda s: search(s) is not None


def _check_format(name: str):
    """Predicate for the string formats worth checking, or None."""
    if name == "ipv4":

        def ok(s):
            parts = s.split(".")
            return len(parts) == 4 and all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in parts)

        return ok
    if name == "ipv6":

        def ok(s):
            import ipaddress  # rare path: keep the import off the common one

            try:
                ipaddress.IPv6Address(s)
            except ValueError:
                return False
            return True

        return ok
    if name == "date-time":
        import re  # rare path: `re` costs milliseconds to import

        rx = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)\Z")
        return lambda s: rx.match(s) is not None
    return None


# --------------------------------------------------------------------------
# The compiler
# --------------------------------------------------------------------------


class _Compiler:
    def __init__(self, directory: str):
        self.directory = directory
        self.documents: dict[str, dict] = {}
        self.compiled: dict[tuple, Check] = {}
        self.type_guards: dict = {}

    def document(self, name: str) -> dict:
        doc = self.documents.get(name)
        if doc is None:
            path = os.path.join(self.directory, name)
            try:
                doc = fastjson.loads(os.read_file(path))
            except OSError as e:
                raise ConfigError("schema %s cannot be read: %s" % (path, e.strerror)) from None
            except ValueError as e:
                raise ConfigError("schema %s is not valid JSON: %s" % (path, e)) from None
            self.documents[name] = doc
        return doc

    def resolve(self, base: str, ref: str) -> tuple[str, str]:
        file_part, _, fragment = ref.partition("#")
        return (file_part or base), fragment

    def target(self, key: tuple) -> Check:
        """Compiled check for ``(file, json-pointer)``, compiled once."""
        check = self.compiled.get(key)
        if check is None:
            name, pointer = key
            node: Any = self.document(name)  # a JSON value
            for token in pointer.strip("/").split("/") if pointer.strip("/") else ():
                token = token.replace("~1", "/").replace("~0", "~")
                if isinstance(node, list):
                    node = node[int(token)]
                else:
                    try:
                        node = node[token]
                    except KeyError:
                        raise ConfigError("schema %s: $ref to missing #%s" % (name, pointer)) from None
            check = self.compile(node, name)
            self.compiled[key] = check
        return check

    def ref(self, base: str, ref: str) -> Check:
        key = self.resolve(base, ref)
        found = self.compiled.get(key)
        if found is not None:
            return found
        target = None

        def check_ref(inst, path, errs):
            nonlocal target
            if target is None:
                target = self.target(key)
            target(inst, path, errs)

        return check_ref

    def lazy(self, node: dict, base: str) -> Check:
        """A check for *node* that compiles it on first use.

        Most properties of a schema never occur in a given document, so
        compiling them only when met keeps the first validation cheap.
        """
        if "$ref" in node or len(node) == 1 or not isinstance(node, dict):
            return self.compile(node, base)
        target = None

        def check_lazy(inst, path, errs):
            nonlocal target
            if target is None:
                target = self.compile(node, base)
            target(inst, path, errs)

        return check_lazy

    # -- one schema node ---------------------------------------------------

    def compile(self, node: dict, base: str) -> Check:
        if "$ref" in node:
            return self.ref(base, node["$ref"])

        found = {_BUILDERS[k] for k in node if k in _BUILDERS}
        checks: list[Check] = []
        for _, builder in sorted(found, key=_rank) if len(found) > 1 else found:
            built = builder(self, node, base)
            if built is not None:
                checks.append(built)

        type_check = self.type_guard(node.get("type"))
        if type_check is None:
            if not checks:
                return _accept_all
            if len(checks) == 1:
                return checks[0]

            def check_all(inst, path, errs):
                for c in checks:
                    c(inst, path, errs)

            return check_all

        if not checks:
            return type_check
        is_type, type_error = type_check.is_type, type_check.error
        if len(checks) == 1:
            only = checks[0]

            def typed_one(inst, path, errs):
                if not is_type(inst):
                    errs.append(type_error(inst, path))
                    return
                only(inst, path, errs)

            return typed_one

        def typed_all(inst, path, errs):
            if not is_type(inst):
                errs.append(type_error(inst, path))
                return
            for c in checks:
                c(inst, path, errs)

        return typed_all

    def type_guard(self, spec):
        if spec is None:
            return None
        key = spec if isinstance(spec, str) else tuple(spec)
        guard = self.type_guards.get(key)
        if guard is None:
            guard = self.type_guards[key] = self.make_type_guard(spec)
        return guard

    def make_type_guard(self, spec):
        names = [spec] if isinstance(spec, str) else list(spec)
        preds = [_TYPES[n] for n in names if n in _TYPES]
        if len(names) == 1 and names[0] in _PYTYPE:
            pytype = _PYTYPE[names[0]]
            if pytype is bool:
                is_type = preds[0]
            else:

                def is_type(v, pytype=pytype):
                    return isinstance(v, pytype)
        elif len(preds) == 1:
            is_type = preds[0]
        else:

            def is_type(v):
                return any(p(v) for p in preds)

        wanted = " or ".join(names)

        def error(inst, path):
            return Problem(path, "%s is not of type %s" % (render_value(inst), wanted), False)

        def check_type(inst, path, errs):
            if not is_type(inst):
                errs.append(error(inst, path))

        # read back by the anyOf/oneOf builder; mypy does not model function attributes
        check_type.is_type = is_type  # type: ignore[attr-defined]
        check_type.error = error  # type: ignore[attr-defined]
        return check_type


def _rank(entry):
    return entry[0]


def _accept_all(inst, path, errs):
    return None


# -- keyword builders: (compiler, node, base file) -> check or None ---------


def _build_enum(comp, node, base):
    allowed = node["enum"]
    text = _enum_text(allowed)
    if all(isinstance(v, str) for v in allowed):
        allowed_set = frozenset(allowed)

        def check_enum(inst, path, errs):
            if not (isinstance(inst, str) and inst in allowed_set):
                errs.append(Problem(path, "%s is not one of %s" % (render_value(inst), text)))

        return check_enum

    def check_enum_any(inst, path, errs):
        if not any(_json_equal(inst, v) for v in allowed):
            errs.append(Problem(path, "%s is not one of %s" % (render_value(inst), text)))

    return check_enum_any


def _build_pattern(comp, node, base):
    pattern = node["pattern"]
    search = pattern_search(pattern)

    def check_pattern(inst, path, errs):
        if isinstance(inst, str) and not search(inst):
            errs.append(Problem(path, "%s does not match pattern %s" % (render_value(inst), pattern)))

    return check_pattern


def _build_format(comp, node, base):
    name = node["format"]
    ok = _check_format(name)
    if ok is None:
        return None

    def check_format(inst, path, errs):
        if isinstance(inst, str) and not ok(inst):
            errs.append(Problem(path, "%s is not a valid %s" % (render_value(inst), name)))

    return check_format


def _build_string_length(comp, node, base):
    low = node.get("minLength")
    high = node.get("maxLength")

    def check_length(inst, path, errs):
        if isinstance(inst, str):
            if low is not None and len(inst) < low:
                errs.append(Problem(path, "%s is shorter than %d characters" % (render_value(inst), low)))
            if high is not None and len(inst) > high:
                errs.append(Problem(path, "%s is longer than %d characters" % (render_value(inst), high)))

    return check_length


def _build_range(comp, node, base):
    low = node.get("minimum")
    high = node.get("maximum")
    low_excl = bool(node.get("exclusiveMinimum"))
    high_excl = bool(node.get("exclusiveMaximum"))

    def check_range(inst, path, errs):
        if isinstance(inst, bool) or not isinstance(inst, (int, float)):
            return
        if low is not None and (inst <= low if low_excl else inst < low):
            errs.append(
                Problem(
                    path,
                    "%s is less than the %s %s"
                    % (render_value(inst), "exclusive minimum" if low_excl else "minimum", low),
                )
            )
        elif high is not None and (inst >= high if high_excl else inst > high):
            errs.append(
                Problem(
                    path,
                    "%s is greater than the %s %s"
                    % (render_value(inst), "exclusive maximum" if high_excl else "maximum", high),
                )
            )

    return check_range


def _build_multiple_of(comp, node, base):
    step = node["multipleOf"]

    def check_multiple(inst, path, errs):
        if isinstance(inst, bool) or not isinstance(inst, (int, float)):
            return
        if isinstance(step, float) or isinstance(inst, float):
            quotient = inst / step
            bad = quotient != int(quotient)
        else:
            bad = inst % step != 0
        if bad:
            errs.append(Problem(path, "%s is not a multiple of %s" % (render_value(inst), step)))

    return check_multiple


def _build_object(comp, node, base):
    """properties, required, patternProperties, additionalProperties and
    min/maxProperties in one pass over the instance's keys."""
    props = {name: comp.lazy(sub, base) for name, sub in node.get("properties", {}).items()}
    patterns = [(pattern_search(p), comp.compile(sub, base)) for p, sub in node.get("patternProperties", {}).items()]
    required = list(node.get("required", ()))
    additional = node.get("additionalProperties", True)
    min_props = node.get("minProperties")
    max_props = node.get("maxProperties")
    if additional is True or additional == {}:
        extra = None
        forbid_extra = False
    elif additional is False:
        extra = None
        forbid_extra = True
    else:
        extra = comp.compile(additional, base)
        forbid_extra = False

    if not patterns and extra is None and not forbid_extra and min_props is None and max_props is None:
        # The common shape: a plain record.
        props_get = props.get

        def check_record(inst, path, errs):
            if not isinstance(inst, dict):
                return
            for name in required:
                if name not in inst:
                    errs.append(Problem(path + (name,), "required property is missing"))
            for name, value in inst.items():
                sub = props_get(name)
                if sub is not None:
                    sub(value, path + (name,), errs)

        return check_record

    def check_object(inst, path, errs):
        if not isinstance(inst, dict):
            return
        for name in required:
            if name not in inst:
                errs.append(Problem(path + (name,), "required property is missing"))
        if min_props is not None and len(inst) < min_props:
            errs.append(Problem(path, "%s has fewer than %d properties" % (render_value(inst), min_props)))
        if max_props is not None and len(inst) > max_props:
            errs.append(Problem(path, "%s has more than %d properties" % (render_value(inst), max_props)))
        for name, value in inst.items():
            here = None
            sub = props.get(name)
            if sub is not None:
                here = path + (name,)
                sub(value, here, errs)
            matched = False
            for search, psub in patterns:
                if search(name):
                    matched = True
                    psub(value, here or path + (name,), errs)
            if sub is None and not matched:
                if forbid_extra:
                    errs.append(Problem(path + (name,), "property is not allowed here"))
                elif extra is not None:
                    extra(value, path + (name,), errs)

    return check_object


def _build_array(comp, node, base):
    items = node.get("items")
    additional = node.get("additionalItems", True)
    min_items = node.get("minItems")
    max_items = node.get("maxItems")
    unique = node.get("uniqueItems", False)
    each = tuple_checks = None
    extra: Check | Literal[False] | None = None
    if isinstance(items, dict):
        each = comp.compile(items, base)
    elif isinstance(items, list):
        tuple_checks = [comp.compile(s, base) for s in items]
        if additional is False:
            extra = False
        elif isinstance(additional, dict):
            extra = comp.compile(additional, base)

    def check_array(inst, path, errs):
        if not isinstance(inst, list):
            return
        n = len(inst)
        if min_items is not None and n < min_items:
            errs.append(
                Problem(
                    path, "%s has fewer than %d item%s" % (render_value(inst), min_items, "" if min_items == 1 else "s")
                )
            )
        if max_items is not None and n > max_items:
            errs.append(Problem(path, "%s has more than %d items" % (render_value(inst), max_items)))
        if each is not None:
            for i, value in enumerate(inst):
                each(value, path + (i,), errs)
        elif tuple_checks is not None:
            for i, value in enumerate(inst):
                if i < len(tuple_checks):
                    tuple_checks[i](value, path + (i,), errs)
                elif extra is False:
                    errs.append(
                        Problem(
                            path + (i,),
                            "%s is an item beyond the %d allowed" % (render_value(value), len(tuple_checks)),
                        )
                    )
                    break
                elif extra is not None:
                    extra(value, path + (i,), errs)
        if unique:
            for i in range(n):
                for j in range(i + 1, n):
                    if _json_equal(inst[i], inst[j]):
                        errs.append(Problem(path + (j,), "%s repeats item %d" % (render_value(inst[j]), i)))
                        return

    return check_array


def _most_telling(branch_errors: list[list[Problem]]) -> list[Problem]:
    """Errors of the branch that came closest to matching: the one whose
    deepest error is deepest, preferring branches that passed the type check
    at that depth."""

    def score(errors):
        depth = max(len(e.path) for e in errors)
        typed = any(e.type_ok for e in errors if len(e.path) == depth)
        return (depth, typed, -len(errors))

    best = max(branch_errors, key=score)
    return best


def _build_all_of(comp, node, base):
    subs = [comp.compile(s, base) for s in node["allOf"]]

    def check_all_of(inst, path, errs):
        for sub in subs:
            sub(inst, path, errs)

    return check_all_of


def _build_any_of(comp, node, base):
    subs = [comp.compile(s, base) for s in node["anyOf"]]
    if len(subs) == 1:
        return subs[0]

    def check_any_of(inst, path, errs):
        failures = []
        for sub in subs:
            mine: list = []
            sub(inst, path, mine)
            if not mine:
                return
            failures.append(mine)
        errs.extend(_most_telling(failures))

    return check_any_of


def _build_one_of(comp, node, base):
    subs = [comp.compile(s, base) for s in node["oneOf"]]

    def check_one_of(inst, path, errs):
        failures = []
        matched = 0
        for sub in subs:
            mine: list = []
            sub(inst, path, mine)
            if mine:
                failures.append(mine)
            else:
                matched += 1
        if matched == 1:
            return
        if matched == 0:
            errs.extend(_most_telling(failures))
        else:
            errs.append(Problem(path, "%s matches more than one of the allowed forms" % render_value(inst)))

    return check_one_of


def _build_not(comp, node, base):
    sub = comp.compile(node["not"], base)

    def check_not(inst, path, errs):
        mine: list = []
        sub(inst, path, mine)
        if not mine:
            errs.append(Problem(path, "%s is a value that is not allowed here" % render_value(inst)))

    return check_not


_OBJECT_KEYWORDS = (
    "properties",
    "required",
    "patternProperties",
    "additionalProperties",
    "minProperties",
    "maxProperties",
)
_ARRAY_KEYWORDS = ("items", "additionalItems", "minItems", "maxItems", "uniqueItems")

# Keyword groups in the order their errors are reported within one node.
# A builder handles every keyword of its group at once.
_BUILDER_ORDER = (
    (("enum",), _build_enum),
    (("minimum", "maximum"), _build_range),
    (("multipleOf",), _build_multiple_of),
    (("pattern",), _build_pattern),
    (("format",), _build_format),
    (("minLength", "maxLength"), _build_string_length),
    (_OBJECT_KEYWORDS, _build_object),
    (_ARRAY_KEYWORDS, _build_array),
    (("allOf",), _build_all_of),
    (("anyOf",), _build_any_of),
    (("oneOf",), _build_one_of),
    (("not",), _build_not),
)
# keyword -> (rank, builder)
_BUILDERS = {kw: (rank, builder) for rank, (kws, builder) in enumerate(_BUILDER_ORDER) for kw in kws}


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------

_compiler: _Compiler | None = None
_entry_checks: dict[str, Check] = {}


def _entry(kind: str) -> tuple[Check, str]:
    global _compiler
    try:
        file_name, label = KINDS[kind]
    except KeyError:
        raise ValueError("unknown document kind %r (expected one of %s)" % (kind, ", ".join(KINDS))) from None
    check = _entry_checks.get(kind)
    if check is None:
        if _compiler is None:
            _compiler = _Compiler(schema_dir())
        check = _compiler.target((file_name, ""))
        _entry_checks[kind] = check
    return check, label


def problem_records(doc: object, kind: str = "config") -> list[Problem]:
    """Every schema violation of *doc* as Problem records (empty if valid)."""
    check, _ = _entry(kind)
    errs: list[Problem] = []
    check(doc, (), errs)
    return errs


def problems(doc: object, kind: str = "config") -> list[str]:
    """Every schema violation of *doc*, one formatted line each."""
    check, label = _entry(kind)
    errs: list[Problem] = []
    check(doc, (), errs)
    return [problem_line(label, p.path, p.message) for p in errs]


def validate(doc: object, kind: str = "config") -> None:
    """Raise ConfigError with one line naming the first violation."""
    check, label = _entry(kind)
    errs: list[Problem] = []
    check(doc, (), errs)
    if errs:
        first = errs[0]
        raise ConfigError(problem_line(label, first.path, first.message))
