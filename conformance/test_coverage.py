"""Meta checks: every clause of clauses.json is tested or has a stated reason."""

import pytest

import harness
import untestable

meta = pytest.mark.meta


def all_cited(request):
    modules = {p.name for p in harness.HERE.glob("test_spec_*.py")}
    if not modules <= request.config._oc_all_modules:
        pytest.skip("only part of the suite was collected")
    return request.config._oc_all_cited


@meta
def test_every_clause_is_tested_or_explained(request):
    cited = all_cited(request)
    missing = [c for c in harness.load_clauses() if c["id"] not in cited and untestable.disposition(c) is None]
    assert not missing, "clauses with neither a test nor a reason:\n" + "\n".join(
        f"  {c['file']} § {c['heading']} [{c['context']}]: {c['sentence'][:120]}" for c in missing
    )
