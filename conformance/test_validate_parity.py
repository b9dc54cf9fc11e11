"""`pyrunc validate` agrees with opencontainers/runtime-tools' validate library
(what `oci-runtime-tool validate` runs) on the validation corpus, except for
the documented differences (issue 8 item 3; conformance/validate_corpus.py,
docs/spec-conformance.md "Bundle validation parity").

Needs golang-go and golang-github-opencontainers-runtime-tools-dev to build
build/rtvalidate/rtvalidate (`make rtvalidate`); skipped otherwise.  It checks
pyrunc's validator, whatever RUNTIME the rest of the suite runs against.
"""

import os
import shutil
import subprocess

import pytest

import validate_corpus as corpus

meta = pytest.mark.meta


@pytest.fixture(scope="module")
def rtvalidate():
    if shutil.which("go") is None:
        pytest.skip("Go is not installed (apt-get install golang-go golang-github-opencontainers-runtime-tools-dev)")
    if not os.path.isdir("/usr/share/gocode/src/github.com/opencontainers/runtime-tools/validate"):
        pytest.skip("golang-github-opencontainers-runtime-tools-dev is not installed")
    proc = subprocess.run(
        ["make", "-s", "-C", str(corpus.REPO), "rtvalidate"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    return corpus.RTVALIDATE


@pytest.fixture(scope="module")
def rows(rtvalidate, tmp_path_factory):
    return corpus.compare(corpus.build(tmp_path_factory.mktemp("validate-corpus")))


@meta
def test_verdicts_agree_except_documented_differences(rows):
    unexpected = []
    for name, ours, theirs, expected, why_ours, why_theirs in rows:
        if expected is None:
            if ours != theirs:
                unexpected.append(f"{name}: pyrunc {ours} {why_ours[:2]}, runtime-tools {theirs} {why_theirs[:2]}")
        elif (ours, theirs) != expected[:2]:
            unexpected.append(
                f"{name}: documented as pyrunc {expected[0]} / runtime-tools {expected[1]}, "
                f"now pyrunc {ours} {why_ours[:2]} / runtime-tools {theirs} {why_theirs[:2]}"
            )
    assert not unexpected, "\n".join(unexpected)


@meta
def test_every_documented_difference_is_a_case():
    names = set(corpus.cases())
    stale = [
        n
        for n in corpus.KNOWN_DIFFERENCES
        if n not in names and not (n.startswith("fixture-") and not corpus.SPEC_FIXTURES.is_dir())
    ]
    assert not stale, stale
    for name, (ours, theirs, why) in corpus.KNOWN_DIFFERENCES.items():
        assert ours != theirs and why, name


@meta
def test_corpus_has_both_verdicts_in_agreement(rows):
    """The agreement is not vacuous: many valid and many invalid bundles agree."""
    agreed = [(ours, name) for name, ours, theirs, expected, *_ in rows if expected is None and ours == theirs]
    assert sum(1 for v, _ in agreed if v == "valid") >= 10, agreed
    assert sum(1 for v, _ in agreed if v == "invalid") >= 25, agreed


@meta
def test_reference_tool_sees_what_it_checks(rtvalidate, tmp_path):
    """The Go program really runs the library: a MUST violation it knows is
    reported with its level, a SHOULD one as a warning, the version limit as
    an unlevelled error that normalisation drops."""
    import json

    cfg = corpus.base_config()
    cfg["ociVersion"] = "1.3.0"
    cfg["process"]["cwd"] = "rel"
    cfg["annotations"] = {"nodots": "x"}
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    out = subprocess.run([str(rtvalidate), str(tmp_path)], capture_output=True, text=True, check=True).stdout
    report = json.loads(out)
    levels = {(p["check"], p["level"]) for p in report["problems"]}
    assert ("CheckProcess", "MUST") in levels, report
    assert ("CheckAnnotations", "SHOULD") in levels, report
    assert any(p["message"].startswith(corpus.TOOL_VERSION_LIMIT) and p["level"] == "" for p in report["problems"])
    verdict = corpus.reference_verdicts({"x": tmp_path}, rtvalidate)["x"]
    assert verdict[0] == "invalid" and len(verdict[1]) == 1 and "cwd" in verdict[1][0], verdict


@meta
def test_readme_documents_every_difference():
    text = (corpus.HERE / "README.md").read_text()
    missing = [n for n in corpus.KNOWN_DIFFERENCES if f"| `{n}` |" not in text]
    assert not missing, "conformance/README.md lacks (python3 conformance/validate_corpus.py --markdown): " + ", ".join(
        missing
    )
