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

# Bundle-validation parity with opencontainers/runtime-tools (conformance/validate_corpus.py):
# rtvalidate is built offline in GOPATH mode from Debian's golang-go and
# golang-github-opencontainers-runtime-tools-dev (/usr/share/gocode).
RTVALIDATE       := $(CURDIR)/build/rtvalidate/rtvalidate
DEBIAN_GOPATH    := /usr/share/gocode
RUNTIME_TOOLS_SRC := $(DEBIAN_GOPATH)/src/github.com/opencontainers/runtime-tools/validate

.PHONY: rtvalidate conformance-validate

rtvalidate: $(RTVALIDATE)

$(RTVALIDATE): conformance/rtvalidate/main.go
	@command -v go >/dev/null || { echo "rtvalidate: Go is not installed (apt-get install golang-go golang-github-opencontainers-runtime-tools-dev)" >&2; exit 1; }
	@[ -d $(RUNTIME_TOOLS_SRC) ] || { echo "rtvalidate: $(RUNTIME_TOOLS_SRC) missing (apt-get install golang-github-opencontainers-runtime-tools-dev)" >&2; exit 1; }
	@mkdir -p $(@D)
	@cd conformance/rtvalidate && GOPATH=$(DEBIAN_GOPATH) GO111MODULE=off GOFLAGS= GOPROXY=off \
	    GOCACHE=$(CURDIR)/build/rtvalidate/cache go build -o $@ .

# pyrunc validate vs runtime-tools on the corpus (skips when Go or the package is missing)
conformance-validate: venv
	@$(PY) -m pytest -q -p no:cacheprovider conformance/test_validate_parity.py $(PYTEST_ARGS)

# the Debian packages rtvalidate is built from (installed only when missing)
.PHONY: conformance-go-deps
conformance-go-deps:
	@for p in golang-go golang-github-opencontainers-runtime-tools-dev; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null; fi
