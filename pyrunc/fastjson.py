"""JSON for the hot commands without the cost of importing ``json``.

``import json`` pulls in ``json.decoder``, which imports ``re`` (and with it
``enum``, ``functools``, ``collections``) and compiles four regular
expressions: several milliseconds on every ``state``, ``kill``, ``start`` and
``delete``, longer than the rest of those commands.  The C accelerator
``_json`` that ``json`` itself uses is a cheap extension module; this module
drives it directly and produces exactly what ``json.loads`` /
``json.dumps`` would:

- ``loads`` uses the C scanner with json's default settings; anything it
  does not accept (bad UTF-8, a BOM, trailing data, invalid JSON) is handed
  to ``json.loads``, which raises its usual ``ValueError``;
- ``scan`` is the fast path alone, for callers that explain errors their
  own way (config.json validation): the document, or ``UNDECIDED``;
  ``constants=False`` refuses NaN/Infinity as JSON (and Go) do;
- ``dumps`` uses the C encoder with json's defaults (ensure_ascii,
  allow_nan, insertion order) for compact output, and a small printer for
  ``indent`` whose output is byte-identical to ``json.dumps(indent=n)`` for
  dicts, lists, str, int, bool and None; other values go to ``json.dumps``.

In the container init after pivot_root only the fast paths may run (the
fallbacks import ``json``, which the sealed import hook refuses there): use
it there only for documents the runtime itself produced (the stage protocol).
"""

try:
    import _json
except ImportError:  # an interpreter without the accelerator: plain json
    _json = None  # type: ignore[assignment]  # checked before each use

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


UNDECIDED = object()  # scan(): json.loads must decide (and explain)


class _ScanContext:
    """The attributes the C scanner reads from a json.JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


def _no_constant(name):
    raise ValueError("%s is not a JSON value" % name)


class _StrictScanContext(_ScanContext):
    """json.loads' default settings, minus NaN/Infinity."""

    parse_constant = staticmethod(_no_constant)


def _default(obj):
    from json import JSONEncoder

    return JSONEncoder().default(obj)  # raises json's TypeError


if _json is not None:
    # the C scanner reads a JSONDecoder's attributes from any object;
    # typeshed types its argument as make_scanner itself
    _scanners = {
        True: _json.make_scanner(_ScanContext),  # type: ignore[arg-type]
        False: _json.make_scanner(_StrictScanContext),  # type: ignore[arg-type]
    }
    _encode_str = _json.encode_basestring_ascii


def scan(text: str, constants=True):
    """The document in ``text`` from the C scanner alone, or ``UNDECIDED``
    (no accelerator, invalid JSON, trailing data: json.loads decides)."""
    if _json is None:
        return UNDECIDED
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        doc, end = _scanners[constants](text, start)
    except Exception:  # noqa: BLE001 - StopIteration, ValueError, RecursionError, and
        # SystemError: 3.11's scanner fails that way on some malformed input
        # (e.g. an unquoted key after a float) when json.decoder is not loaded
        return UNDECIDED
    if text[end:].strip(_WHITESPACE):
        return UNDECIDED
    return doc


def loads(data):
    """``json.loads(data)`` for bytes or str."""
    if _json is not None:
        try:
            text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        except UnicodeDecodeError:
            text = None
        if isinstance(text, str):
            doc = scan(text)
            if doc is not UNDECIDED:
                return doc
    from json import loads as json_loads

    return json_loads(data)


class _Unsupported(Exception):
    pass


def _pretty(obj, indent, level, out):
    t = type(obj)
    if t is str:
        out.append(_encode_str(obj))
    elif obj is None:
        out.append("null")
    elif obj is True:
        out.append("true")
    elif obj is False:
        out.append("false")
    elif t is int:
        out.append(int.__repr__(obj))
    elif t is dict or t is list:
        if not obj:
            out.append("{}" if t is dict else "[]")
            return
        inner = "\n" + " " * (indent * (level + 1))
        out.append("{" if t is dict else "[")
        sep = inner
        if t is dict:
            for k, v in obj.items():
                if type(k) is not str:
                    raise _Unsupported
                out.append(sep)
                out.append(_encode_str(k))
                out.append(": ")
                _pretty(v, indent, level + 1, out)
                sep = "," + inner
        else:
            for v in obj:
                out.append(sep)
                _pretty(v, indent, level + 1, out)
                sep = "," + inner
        out.append("\n" + " " * (indent * level) + ("}" if t is dict else "]"))
    else:
        raise _Unsupported  # floats, tuples, subclasses: json's own rules


def dumps(obj, indent=None, compact=False):
    """``json.dumps(obj, indent=indent)``; ``compact`` means
    ``separators=(",", ":")`` (only without indent)."""
    if _json is not None:
        if indent is None:
            # a fresh encoder per call, as json does: its circular-reference
            # markers must not outlive a failed call
            key_sep, item_sep = (":", ",") if compact else (": ", ", ")
            encode = _json.make_encoder({}, _default, _encode_str, None, key_sep, item_sep, False, False, True)
            return "".join(encode(obj, 0))
        if type(indent) is int and indent >= 0:
            out: list[str] = []
            try:
                _pretty(obj, indent, 0, out)
                return "".join(out)
            except (_Unsupported, RecursionError):
                pass
    from json import dumps as json_dumps

    if compact and indent is None:
        return json_dumps(obj, separators=(",", ":"))
    return json_dumps(obj, indent=indent)
