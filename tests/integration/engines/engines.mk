# Engine tests: podman, containerd (ctr and CRI) and Docker driving pyrunc,
# side by side with Debian's runc.  The tests install the engines' Debian
# packages when missing and keep all engine state in temporary directories.
# Included by the top-level Makefile.

ENGINE_TEST_ARGS ?=

.PHONY: test-engines
test-engines: venv
	@$(PY) -c 'import grpc' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check grpcio
	@PYRUNC_ENGINE_TESTS=1 PYRUNC=$(PYRUNC) $(if $(SANDBOX),$(SANDBOX)) $(PY) -m pytest -q -p no:cacheprovider \
	    -o faulthandler_timeout=600 tests/integration/engines $(ENGINE_TEST_ARGS)
