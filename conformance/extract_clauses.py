#!/usr/bin/env python3
"""Extract the normative MUST/SHOULD sentences of the runtime-spec into clauses.json.

    extract_clauses.py SPEC_DIR [OUT]

Each clause records the spec file, the nearest heading above it, the keyword and
the sentence itself (markdown links reduced to their text).  The sentence text is
the clause's identity: tests cite a distinctive fragment of it, and the coverage
check (test_coverage.py) maps every citation back to exactly one clause.
The spec writes one sentence per line, which is what makes line-based
extraction reliable; a line holding several sentences is split on ". ".
"""

import hashlib
import json
import re
import sys
from pathlib import Path

SPEC_FILES = ("runtime.md", "runtime-linux.md", "config.md", "config-linux.md")
KEYWORD = re.compile(r"\b(MUST NOT|MUST|SHOULD NOT|SHOULD)\b")
LINK = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\[[^\]]*\])")
HEADING = re.compile(r"^(#+)\s*(.*?)\s*$")
ANCHOR = re.compile(r'<a name="[^"]*"\s*/>|<a name="[^"]*"></a>')


def clean(line: str) -> str:
    line = ANCHOR.sub("", line)
    line = LINK.sub(r"\1", line)
    line = re.sub(r"^\s*(?:[*-]|\d+\.)\s+", "", line)
    return " ".join(line.split())


def split_sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[a-z0-9`)\]])\.\s+(?=[A-Z`*])", text)
    return [p if p.endswith((".", ":", "?")) else p + "." if i < len(parts) - 1 else p for i, p in enumerate(parts)]


def clause_id(file: str, key: str) -> str:
    stem = file.removesuffix(".md")
    return f"{stem}#{hashlib.sha1(key.encode()).hexdigest()[:8]}"


LIST_ITEM = re.compile(r"^\s*(?:[*-]|\d+\.)\s+")


BOLD_FIELD = re.compile(r"^\s*(?:[*-]|\d+\.)\s+\*\*`?([^*`]+)`?\*\*")


def logical_lines(text: str):
    """Yield (heading, context, line) with wrapped lines joined back into one.

    context is the bold field name of the nearest enclosing list item (e.g.
    "prestart" for the sentences nested under **`prestart`**) or the first cell
    of a table row; it tells apart identical sentences under one heading.

    A physical line continues the previous one unless it is blank, a heading,
    a table row, a list item, or the previous line already ended a sentence.
    """
    heading, current, in_code = "", "", False
    fields: list[tuple[int, str]] = []  # (indent, field name) of open list items
    context = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("```"):
            in_code = not in_code
            if current:
                yield heading, context, current
            current = ""
            continue
        if in_code:
            continue
        m = HEADING.match(raw)
        table_row = raw.count("|") >= 2
        starts_new = (
            not raw.strip()
            or m
            or table_row
            or LIST_ITEM.match(raw)
            or not current
            or current.rstrip().endswith((".", ":", "|"))
            or current.count("|") >= 2
        )
        if starts_new:
            if current:
                yield heading, context, current
            current = ""
            if m:
                heading = clean(m.group(2))
                fields, context = [], ""
                continue
            if not raw.strip():
                current = ""
                continue
            indent = len(raw) - len(raw.lstrip())
            if LIST_ITEM.match(raw):
                while fields and fields[-1][0] >= indent:
                    fields.pop()
                f = BOLD_FIELD.match(raw)
                if f:
                    fields.append((indent, f.group(1)))
                context = ".".join(name for _, name in fields)
            elif table_row:
                context = raw.strip().strip("|").split("|")[0].strip().strip("`").strip()
            elif indent == 0:
                fields, context = [], ""
            current = raw.strip()
        else:
            current += " " + raw.strip()
    if current:
        yield heading, context, current


def extract(spec_dir: Path) -> list[dict]:
    clauses = []
    for name in SPEC_FILES:
        for heading, context, line in logical_lines((spec_dir / name).read_text()):
            for sentence in split_sentences(clean(line)):
                kw = KEYWORD.findall(sentence)
                if not kw:
                    continue
                clauses.append(
                    {
                        "id": clause_id(name, f"{heading}|{context}|{sentence}"),
                        "file": name,
                        "heading": heading,
                        "context": context,
                        "keywords": sorted(set(kw)),
                        "sentence": sentence,
                    }
                )
    return clauses


def main() -> int:
    spec_dir = Path(sys.argv[1])
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).with_name("clauses.json")
    clauses = extract(spec_dir)
    seen = set()
    for c in clauses:
        if c["id"] in seen:
            c["id"] += "-" + str(sum(1 for d in clauses if d["id"].startswith(c["id"])))
        seen.add(c["id"])
    out.write_text(json.dumps({"spec": spec_dir.name, "clauses": clauses}, indent=1) + "\n")
    print(f"{len(clauses)} clauses -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
