#!/usr/bin/env python3
"""Run the conformance suite against several runtimes and write the ledger.

    ledger.py [--out docs/spec-conformance.md] [--results-dir DIR]
              [--render-only] NAME=PATH [NAME=PATH ...]

Each runtime gets its own pytest run (and so its own fresh --root and bundles);
results land in DIR/NAME.json.  With --render-only the existing result files
are used.  A runtime that is missing, crashes or times out simply shows
failures/"no result" in its column; the ledger is always written.
Run it under the cgroup sandbox (the `conformance-ledger` make target does).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
import untestable  # noqa: E402

RUN_TIMEOUT = 900

# Clauses where a runtime deliberately (or knowingly) differs, keyed by a quote
# of the sentence.  Shown under "Deliberate differences".
DELIBERATE = {
    "Attempting to `delete` a container that is not `stopped`": "runc, crun and youki delete a *created* container without `--force` (they kill it first); "
    "callers such as containerd and podman rely on that (cli-contract.md §8 item 8). "
    "pyrunc does the same, so `test_delete_created_container` fails for all three by design; "
    "`delete` of a *running* container is still refused (`test_delete_running_container`).",
    "If any `poststart` hook fails": "Spec 1.3.0 turned a failing poststart hook from a warning into an error that stops the container. "
    "runc 1.1.5 runs poststart hooks inside `create`; crun 1.8.1 only warns.",
    "If any `poststop` hook fails, the runtime MUST log a warning": "runc 1.1.5 stops at the first failing poststop hook instead of running the rest.",
}


# Every place where pyrunc knowingly behaves unlike runc 1.1.5 outside the
# spec's clauses: each is played against both in tests/integration/compat/ or
# tests/integration/adversarial/ (the test names the case).  Shown after the clauses.
RUNC_DIFFERENCES = [
    (
        "Hooks get fds 0, 1, 2 only",
        "runc gives createContainer hooks its init's sync pipes and exec.fifo, and poststop hooks the "
        "caller's fds (tests/integration/adversarial/test_fds.py).",
    ),
    (
        "The created init's fds are closed to a container without CAP_SYS_PTRACE",
        "runc's created init lists its fds, exec.fifo's host path included (test_fds.py).",
    ),
    (
        "createContainer hooks get the init's host pid",
        "runc gives 1, its pid in the container (the spec: the pid as seen by the host; "
        "tests/integration/adversarial/test_isolation.py).",
    ),
    (
        "A config without a mount namespace is refused",
        "runc runs it and leaves the rootfs bind, /proc and /dev mounted in its own mount namespace "
        "after delete; pyrunc would put mounts on the host that outlive the container.",
    ),
    (
        "create under a frozen parent cgroup is refused at once",
        "runc 1.1.5 hangs (tests/integration/compat/test_cli_behaviour.py).",
    ),
    (
        "HOME when /etc/passwd is a FIFO or a magic link",
        "runc hangs on the FIFO and follows the link (reading its own stdin); pyrunc uses / "
        "(tests/integration/compat/test_home.py).",
    ),
    (
        "`rootfsPropagation: rshared` makes the new / shared",
        "runc 1.1.5 leaves it a slave (tests/integration/compat/test_config_acceptance.py).",
    ),
    (
        "`exec -t` without a terminal of its own",
        "runc refuses (open /dev/tty); pyrunc allocates and relays the pty (tests/integration/compat/test_terminal.py).",
    ),
    (
        "Only the pty is given to the process user",
        "runc also chowns the caller's stdio pipes and files to the process uid.",
    ),
    ("linux.devices with a bind-mounted /dev", "runc creates none of them; pyrunc still creates them."),
    ("`list` with no state root", "runc creates the root; pyrunc prints the same empty list without creating it."),
    (
        "Spec MUSTs that runc does not check",
        "non-SemVer ociVersion, empty annotation keys, relative masked/readonly paths, errnoRet on an action "
        "without errno, listenerMetadata without listenerPath, seccomp rules without names: refused as the "
        "spec says (the conformance suite pins them); every other rule runc does not enforce is a warning "
        "(docs/validation.md, 'Refuse, warn or accept').",
    ),
    (
        "Lone surrogates and invalid UTF-8 in config.json",
        "runc replaces them with U+FFFD and runs; pyrunc refuses with one line naming the field "
        "(tests/integration/adversarial/test_input.py).",
    ),
    (
        "JSON nested deeper than ~1000 levels",
        "refused (runc's decoder goes to 10000); unknown members nested deeper than 64 levels are ignored "
        "with a warning.",
    ),
    (
        "Rootless: a read-only sysfs the user namespace may not mount",
        "becomes a read-only bind of the host's /sys (crun and newer runc do this; runc 1.1.5 fails; tests/integration/test_rootless.py).",
    ),
    ("Rootless: `ps` of a container without a cgroup", "lists nothing; runc errors."),
    ("Rootless: `--log` to a path the caller cannot write", "falls back to stderr; runc fails."),
]


def run_suite(name: str, path: str, results: Path) -> None:
    env = dict(os.environ, RUNTIME=path)
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        str(HERE),
        "--conformance-results",
        str(results),
    ]
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, cwd=HERE.parent)
        tail = (p.stdout.strip().splitlines() or [""])[-1]
        print(f"{name}: {tail} ({time.monotonic() - t0:.0f}s)", file=sys.stderr)
        if not results.exists():
            print(p.stdout[-3000:], p.stderr[-3000:], file=sys.stderr)
    except subprocess.TimeoutExpired:
        print(f"{name}: timed out after {RUN_TIMEOUT}s", file=sys.stderr)


def clause_status(tests: list[dict]) -> str:
    if not tests:
        return "none"
    outcomes = {t["outcome"] for t in tests}
    if "failed" in outcomes:
        return "fail"
    if outcomes == {"skipped"}:
        return "skip"
    return "pass"


SYMBOL = {"pass": "✅", "fail": "❌", "skip": "⏭️", "none": "—", "n/a": "n/a"}


def load_results(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def render(names: list[str], results: dict[str, dict | None]) -> str:
    clauses = harness.load_clauses()
    by_clause: dict[str, dict[str, list]] = {n: {} for n in names}
    cited = set()
    for n in names:
        for t in (results[n] or {}).get("tests", []):
            for cid in t["clauses"]:
                by_clause[n].setdefault(cid, []).append(t)
                cited.add(cid)

    rows, totals = [], {n: {"pass": 0, "fail": 0, "skip": 0, "none": 0} for n in names}
    untested = []
    for c in clauses:
        disp = None if c["id"] in cited else untestable.disposition(c)
        if disp:
            untested.append((c, disp))
            continue
        cells = []
        for n in names:
            s = clause_status(by_clause[n].get(c["id"], [])) if results[n] else "none"
            totals[n][s] += 1
            cells.append(SYMBOL[s])
        where = f"{c['file']} § {c['heading']}" + (f" (`{c['context']}`)" if c["context"] else "")
        sentence = c["sentence"].replace("|", "\\|")
        if len(sentence) > 160:
            sentence = sentence[:157] + "…"
        rows.append(f"| {where} | {'/'.join(c['keywords'])} | {sentence} | " + " | ".join(cells) + " |")

    out = [
        "# OCI runtime-spec v1.3.0 conformance ledger",
        "",
        "Generated by `make conformance-ledger` (`conformance/ledger.py`) from the suite in `conformance/`:",
        "every MUST/SHOULD sentence of runtime.md, runtime-linux.md, config.md and config-linux.md",
        "(`conformance/clauses.json`), the same tests run against each runtime, each with its own",
        "fresh state directory and bundles. ✅ all tests citing the clause passed, ❌ at least one failed,",
        "⏭️ skipped here, — no result. See `conformance/README.md` for how to run and read it.",
        "",
        "## Runtimes",
        "",
        "| Runtime | Binary | Version | Run finished |",
        "|---|---|---|---|",
    ]
    for n in names:
        r = results[n]
        out.append(
            f"| {n} | `{r['runtime'] if r else '?'}` | {r['version'] if r else 'no result'} | "
            f"{r['finished'] if r else '—'} |"
        )
    out += ["", "## Totals (tested clauses)", "", "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for k in ("pass", "fail", "skip", "none"):
        out.append(f"| {SYMBOL[k]} {k} | " + " | ".join(str(totals[n][k]) for n in names) + " |")
    out.append(f"| clauses not tested (reasons below) | {len(untested)} " + "| " * (len(names) - 1) + "|")
    out += ["", "## Deliberate and known differences", ""]
    for quote, why in DELIBERATE.items():
        out.append(f"- **“{quote}…”** — {why}")
    disagreements = []
    for c in clauses:
        if c["id"] not in cited:
            continue
        st = {n: clause_status(by_clause[n].get(c["id"], [])) for n in names if results[n]}
        if len(set(st.values())) > 1:
            disagreements.append(
                f"- {c['file']} § {c['heading']}: “{c['sentence'][:110]}” — "
                + ", ".join(f"{n} {v}" for n, v in st.items())
            )
    out += ["", "### Clauses where the runtimes' results differ", ""] + (disagreements or ["(none)"])
    out += ["", "### Differences from runc outside the clauses", ""]
    out += [f"- **{what}.** {why}" for what, why in RUNC_DIFFERENCES]
    out += [
        "",
        "## Clause by clause",
        "",
        "| Clause | Keyword | Sentence | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ] + rows
    out += [
        "",
        "## Clauses not tested, with the reason",
        "",
        "| Clause | Sentence | Category | Reason |",
        "|---|---|---|---|",
    ]
    for c, (cat, why) in untested:
        s = c["sentence"].replace("|", "\\|")
        out.append(f"| {c['file']} § {c['heading']} | {s[:140]} | {cat} | {why} |")
    out.append("")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runtimes", nargs="+", metavar="NAME=PATH")
    ap.add_argument("--out", default=str(HERE.parent / "docs" / "spec-conformance.md"))
    ap.add_argument("--results-dir", default=str(HERE.parent / "build" / "conformance"))
    ap.add_argument("--render-only", action="store_true")
    a = ap.parse_args()
    rdir = Path(a.results_dir)
    rdir.mkdir(parents=True, exist_ok=True)
    names, results = [], {}
    for spec in a.runtimes:
        name, _, path = spec.partition("=")
        names.append(name)
        res = rdir / f"{name}.json"
        if not a.render_only:
            res.unlink(missing_ok=True)
            run_suite(name, path, res)
        results[name] = load_results(res)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(render(names, results))
    print(f"ledger -> {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
