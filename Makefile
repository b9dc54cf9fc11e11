# pyrunc - the two commands on a fresh machine are `make demo` and `make test`.
# Everything that creates containers or cgroups runs under the cgroup sandbox
# (../shared/tools/cgroup-sandbox) when it is present.

PY_SYS    ?= /usr/bin/python3
VENV      := $(CURDIR)/.venv
PY        := $(VENV)/bin/python3
PYRUNC    := $(VENV)/bin/pyrunc
SANDBOX   := $(firstword $(wildcard $(CURDIR)/../shared/tools/cgroup-sandbox))
APT_PKGS  := busybox-static libseccomp2 runc crun iproute2 python3-venv gcc libc6-dev strace
STAMP     := $(VENV)/.installed

.PHONY: all deps venv demo lint test test-unit test-integration test-cgroupv2 bench conformance clean

all: venv

# Debian packages the runtime and its tests need; installed only when missing.
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_FLAGS) $$missing) >/dev/null; fi

# The install path users take (docs/install.md): pip installs the package and
# its script, whose first call writes the fast launcher and the interpreter
# copy into the venv.  Editable (-e), so that the tests run the tree being
# edited without a reinstall per change; the launcher is the one a wheel gets
# plus the source tree first on sys.path (tests/integration/test_packaging.py
# installs the built wheel into a fresh venv and checks it against this one).
$(STAMP): pyproject.toml pyrunc/launcher.py
	@$(MAKE) --no-print-directory deps
	@[ -x $(PY) ] || $(PY_SYS) -m venv $(VENV)
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	@$(PYRUNC) --version >/dev/null
	@head -2 $(PYRUNC) | grep -q 'pyrunc fast launcher' || { echo "$(PYRUNC): the first call did not install the fast launcher" >&2; exit 1; }
	@touch $@

# the module cache (pyrunc/modcache.py) follows the tree: entries whose source
# changed are skipped, not served stale, and rebuilt here (~0.3 s)
venv: $(STAMP)
	@$(PY) -m pyrunc.launcher >/dev/null

demo: venv
	@$(if $(SANDBOX),$(SANDBOX)) $(PY) tools/demo.py $(PYRUNC)

test: venv
	@$(if $(SANDBOX),$(SANDBOX)) $(PY) -m pytest -q -p no:cacheprovider tests $(PYTEST_ARGS)

# tests/unit: pure logic, no containers, no root; run as `nobody` when make
# runs as root, so a unit test that needs privileges fails here; in the
# sandbox too, so the session check sees only this run's cgroups.
AS_UNPRIVILEGED := $(if $(filter 0,$(shell id -u)),setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp)
test-unit: venv
	@$(if $(SANDBOX),$(SANDBOX)) $(AS_UNPRIVILEGED) $(PY) -m pytest -q -p no:cacheprovider tests/unit $(PYTEST_ARGS)

# ruff (lint; pyproject.toml [tool.ruff]) and mypy (pyproject.toml [tool.mypy]);
# installed into the venv on first use, as the `lint` extra.
lint: venv
	@$(PY) -c 'import ruff, mypy' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check 'ruff>=0.6' 'mypy>=1.10'  # the lint extra, without reinstalling pyrunc
	@$(PY) -m ruff check pyrunc tests conformance tools bench
	@$(PY) -m ruff format --check -q pyrunc tests conformance tools bench
	@$(PY) -m mypy

test-integration: venv
	@$(if $(SANDBOX),$(SANDBOX)) $(PY) -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS)

# cgroup v2 only, in ONE boot of a small pure-v2 VM: the cgroup managers'
# tests and containers end to end (leaf cgroup, cgroup mounts, eBPF devices,
# pause, ps, events, update, OOM, pids, delete, the 512 KiB footprint).
# Bundles live on the guest's root filesystem (--basetemp): the session leak
# check finds container processes by their root mount's source, which must
# be on the filesystem mounted at "/".
# One boot of the pure cgroup v2 VM: the v2 tests, then the conformance
# suite's cgroup clauses (the whole suite takes 12 minutes there).
V2_CONFORMANCE := cgroup or pids_limit or unified_missing or delete_undoes or failed_create_leaves
# tests/integration/test_apparmor.py loads a profile in the VM (its kernel enables
# AppArmor) with Debian's apparmor_parser, unpacked here, not installed.
APPARMOR_PARSER := build/apparmor/sbin/apparmor_parser
$(APPARMOR_PARSER):
	@rm -rf build/apparmor build/apparmor-deb && mkdir -p build/apparmor-deb
	@cd build/apparmor-deb && apt-get download -q apparmor >/dev/null 2>&1 \
	    || { apt-get update -qq && apt-get download -q apparmor; } >/dev/null
	@dpkg-deb -x build/apparmor-deb/apparmor_*.deb build/apparmor && rm -rf build/apparmor-deb

test-cgroupv2: venv $(APPARMOR_PARSER)
	@$(CURDIR)/../shared/tools/v2vm --timeout 1500 --share $(CURDIR) --env RUNTIME=$(PYRUNC) -- /bin/sh -c '\
	    $(PY) -m pytest -q -p no:cacheprovider --basetemp=/root/pytest-v2 -k "not record_other" \
	      tests/integration/test_cgroups_v2.py tests/unit/test_cgroups_unit.py tests/integration/test_v2_containers.py \
	      tests/integration/test_memory_footprint.py tests/integration/test_apparmor.py tests/integration/test_fork_into_cgroup.py \
	      tests/integration/test_stages_before_cgroup.py $(PYTEST_ARGS); unit=$$?; \
	    $(PY) -m pytest -q -p no:cacheprovider -k "$(V2_CONFORMANCE)" conformance; conf=$$?; \
	    [ $$unit -eq 0 ] && [ $$conf -eq 0 ]'

# The systemd cgroup driver (--systemd-cgroup), in ONE boot of the VM with
# systemd as PID 1: pyrunc and Debian's runc side by side on the same bundles
# (units, slices, limits in files and in systemctl show, daemon-reload,
# update, delete, failed create), and podman with cgroup_manager=systemd
# (hence the engines image).
.PHONY: test-systemd
test-systemd: venv
	@$(CURDIR)/../shared/tools/v2vm --systemd --image engines --timeout 1500 --share $(CURDIR) --env RUNTIME=$(PYRUNC) -- \
	    $(PY) -m pytest -q -p no:cacheprovider --basetemp=/root/pytest-sd tests/integration/test_systemd.py $(PYTEST_ARGS)

# The systemd driver on cgroup v1/hybrid, on this host under the sandbox: the
# host's systemd boots as PID 1 of a pyrunc container with a private cgroup
# namespace (tests/integration/systemd_box.py), and test_systemd.py's systemd
# tests run in it, pyrunc and Debian's runc side by side (~20 s).
.PHONY: test-systemd-v1
test-systemd-v1: venv
	@$(if $(SANDBOX),$(SANDBOX)) env PYRUNC_SYSTEMD_BOX=1 $(PY) -m pytest -q -p no:cacheprovider -rs \
	    tests/integration/test_systemd_v1.py $(PYTEST_ARGS)

# Rootless mode (issue 20): tests/integration/test_rootless.py on this host, as
# the test user pyrunc-rl under the cgroup sandbox (the setup below installs
# uidmap and podman when missing and makes the user with /etc/subuid and
# /etc/subgid ranges, once: tools/rootless-user-setup, docs/rootless.md "The
# test user"; PYRUNC_REQUIRE_ROOTLESS turns a missing user, helper, range or
# podman into failures instead of skips), then in ONE boot of
# the cgroup v2 VM with systemd, run by a logged-in unprivileged user
# (newuidmap, /etc/subuid ranges, a systemd user session; the engines image
# for rootless podman): pyrunc and runc side by side on the same bundles.
# In the VM also the systemd driver through the user's systemd instance
# (tests/integration/test_systemd.py -k rootless: the scope in the user manager's
# user.slice, and rootless podman with --cgroup-manager systemd).
.PHONY: test-rootless
ROOTLESS_USER     := pyrunc-rl
# newuidmap/newgidmap; podman as tests/integration/engines installs it (no recommends)
ROOTLESS_APT_PKGS := uidmap podman conmon golang-github-containers-common
test-rootless: venv
	@$(MAKE) --no-print-directory deps APT_PKGS="$(ROOTLESS_APT_PKGS)" APT_FLAGS=--no-install-recommends
	@tools/rootless-user-setup $(ROOTLESS_USER)
	@$(if $(SANDBOX),$(SANDBOX)) env PYRUNC_ROOTLESS_USER=$(ROOTLESS_USER) PYRUNC_REQUIRE_ROOTLESS=1 \
	    $(PY) -m pytest -q -p no:cacheprovider tests/integration/test_rootless.py $(PYTEST_ARGS)
	@$(CURDIR)/../shared/tools/v2vm --systemd --image engines --user rootless --cpus 1 --timeout 1800 \
	    --share $(CURDIR) \
	    --env RUNTIME=$(PYRUNC) -- /bin/sh -c '\
	    $(PY) -m pytest -q -p no:cacheprovider --basetemp=/tmp/pytest-rl tests/integration/test_rootless.py $(PYTEST_ARGS); rl=$$?; \
	    $(PY) -m pytest -q -p no:cacheprovider --basetemp=/tmp/pytest-rlsd -k rootless \
	      tests/integration/test_systemd.py $(ROOTLESS_SYSTEMD_ARGS); sd=$$?; \
	    [ $$rl -eq 0 ] && [ $$sd -eq 0 ]'

# checkpoint and restore with criu, in ONE boot of the engines VM (criu is in
# it; criu check needs the tun module): pyrunc and Debian's runc side by side
# on the same bundles.  PYRUNC_REQUIRE_CRIU turns "criu cannot run" into a
# failure instead of skipped tests.
# CI: everything that needs systemd as PID 1 in ONE boot of the engines VM
# (a boot and the image cost minutes each), pyrunc and Debian's runc side by
# side: the systemd driver's tests (the manager, podman, ctr); the
# conformance suite's cgroup clauses under --systemd-cgroup (pyrunc must
# pass; runc's run is shown for comparison); the engine checklist with the
# engines on the systemd driver (Docker with daemon.json
# native.cgroupdriver=systemd, containerd's CRI with SystemdCgroup = true and
# kubelet's kubepods slices); then checkpoint/restore.
SYSTEMD_ENGINE_TESTS := tests/integration/engines/test_cli_engines.py tests/integration/engines/test_cri.py
# the checklist (run, exit codes, limits, exec, pause, stats, stop, rm, 20 in
# a loop); the rest of tests/integration/engines does not depend on the cgroup driver
SYSTEMD_ENGINE_K     := (docker and (echo or limits or detached or pause or twenty or daemon_json)) \
                        or lifecycle
# while iterating: a subset of the stages, e.g. SYSTEMD_VM_STAGES=engines
SYSTEMD_VM_STAGES    ?= systemd conformance engines checkpoint
.PHONY: test-systemd-vm
test-systemd-vm: venv
	@$(PY) -c 'import grpc' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check grpcio
	@$(CURDIR)/../shared/tools/v2vm --systemd --image engines --timeout 3000 --share $(CURDIR) \
	    --env RUNTIME=$(PYRUNC) --env PYRUNC_REQUIRE_CRIU=1 -- /bin/sh -c '\
	    t0=$$(date +%s); sd=0 conf=0 eng=0 ck=0; \
	    lap() { echo "== $$1: exit $$2, $$(( $$(date +%s) - t0 )) s since boot"; }; \
	    for stage in $(SYSTEMD_VM_STAGES); do case $$stage in \
	    systemd) $(PY) -m pytest -q -p no:cacheprovider --basetemp=/root/pytest-sd \
	        tests/integration/test_systemd.py $(PYTEST_ARGS); sd=$$?; lap systemd $$sd;; \
	    conformance) for rt in /usr/sbin/runc $(PYRUNC); do \
	        echo "== the conformance cgroup clauses with --systemd-cgroup: $$rt"; \
	        RUNTIME=$$rt CONFORMANCE_CGROUP_DRIVER=systemd $(PY) -m pytest -q -p no:cacheprovider -rs \
	          -k "$(V2_CONFORMANCE)" conformance; conf=$$?; lap "conformance $$rt" $$conf; done;; \
	    engines) PYRUNC_ENGINE_TESTS=1 PYRUNC_ENGINE_CGROUP_DRIVER=systemd PYRUNC=$(PYRUNC) \
	        $(PY) -m pytest -q -p no:cacheprovider -o timeout=900 -o faulthandler_timeout=600 --basetemp=/root/pytest-eng \
	        -k "$(SYSTEMD_ENGINE_K)" $(SYSTEMD_ENGINE_TESTS) $(PYTEST_ARGS); eng=$$?; lap engines $$eng;; \
	    checkpoint) modprobe tun && $(PY) -m pytest -q -p no:cacheprovider --basetemp=/root/pytest-ckpt \
	        tests/integration/test_checkpoint.py tests/unit/test_criu_rpc.py $(PYTEST_ARGS); ck=$$?; lap checkpoint $$ck;; \
	    esac; done; \
	    [ $$sd -eq 0 ] && [ $$conf -eq 0 ] && [ $$eng -eq 0 ] && [ $$ck -eq 0 ]'

.PHONY: test-checkpoint
test-checkpoint: venv
	@$(CURDIR)/../shared/tools/v2vm --systemd --image engines --timeout 1800 --share $(CURDIR) \
	    --env RUNTIME=$(PYRUNC) --env PYRUNC_REQUIRE_CRIU=1 -- /bin/sh -c 'modprobe tun && \
	    $(PY) -m pytest -q -p no:cacheprovider --basetemp=/root/pytest-ckpt \
	      tests/integration/test_checkpoint.py tests/unit/test_criu_rpc.py $(PYTEST_ARGS)'

include conformance/conformance.mk
-include tests/integration/engines/engines.mk
-include bench/bench.mk

# The created init's waiter (pyrunc/waiter.py): rebuild its bytes from
# pyrunc/waiter_x86_64.S with binutils (as, ld) after a change to the source;
# tests/unit/test_waiter_program.py checks that the two agree.
.PHONY: waiter
waiter: venv
	$(PY) -m pyrunc.waiter_build --write

# the interpreter copy's read-only view first: a mount point cannot be deleted
clean:
	@[ ! -x $(PY) ] || $(PY) -m pyrunc.launcher --remove >/dev/null
	rm -rf $(VENV) build *.egg-info

# Issue 21's memory and scale measurements, each under the cgroup sandbox:
# make bench-memory: 30 created containers alive at once (MEMORY_ARGS=
#   "--count N") for pyrunc, runc and crun: memcg charge (container and
#   caller), init USS/PSS, create peak RSS -> bench/results/memory.{md,json}.
# make bench-scale (bench/bench.mk): pyrunc and runc at 10 ... 1000 created
#   containers: state, list, list --format json, memory per container
#   (SCALE_ARGS="--counts 10,100") -> bench/results/scale.{md,json}.
MEMORY_ARGS ?=
.PHONY: bench-memory
bench-memory: venv
	@$(if $(SANDBOX),$(SANDBOX)) /usr/bin/python3 bench/memory.py $(MEMORY_ARGS)
