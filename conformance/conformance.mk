# OCI runtime-spec conformance suite (conformance/README.md).  Included by the
# top-level Makefile, which defines VENV, PY, PYRUNC and SANDBOX.
#
#   RUNTIME=/abs/path make conformance     run the suite against one runtime
#   make conformance-ledger                pyrunc, runc and crun -> docs/spec-conformance.md

CONFORMANCE_RUNTIME := $(or $(RUNTIME),$(CURDIR)/.venv/bin/pyrunc)
CONFORMANCE_RESULTS ?= $(CURDIR)/build/conformance

.PHONY: conformance conformance-ledger conformance-clauses

conformance: venv
	@mkdir -p $(CONFORMANCE_RESULTS)
	@RUNTIME=$(CONFORMANCE_RUNTIME) $(if $(SANDBOX),$(SANDBOX)) $(PY) -m pytest -q -p no:cacheprovider \
	    conformance --conformance-results $(CONFORMANCE_RESULTS)/last.json $(PYTEST_ARGS)

conformance-ledger: venv
	@$(if $(SANDBOX),$(SANDBOX)) $(PY) conformance/ledger.py --results-dir $(CONFORMANCE_RESULTS) \
	    pyrunc=$(CURDIR)/.venv/bin/pyrunc runc=$$(command -v runc) crun=$$(command -v crun)

# regenerate conformance/clauses.json from the spec text (needs the reference copy)
conformance-clauses:
	@$(PY) conformance/extract_clauses.py $(or $(OCI_SPEC_DIR),$(CURDIR)/../shared/reference/runtime-spec-v1.3.0)
