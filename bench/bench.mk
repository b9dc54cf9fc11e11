# make bench: runc, crun and the installed pyrunc side by side (the shared
# harness ../shared/bench/lifecycle.py when present, else bench/mini.py),
# then docs/benchmarks.md (command, table, targets) and docs/benchmarks.png.
# BENCH_ROUNDS=N (default 20); BENCH_ARGS=... go to the harness.
# matplotlib is a bench-only dependency, installed into the venv on first use.

BENCH_ROUNDS ?= 20
BENCH_ARGS   ?=

bench: venv
	@$(PY) -c 'import matplotlib' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check matplotlib
	@$(if $(SANDBOX),$(SANDBOX)) /usr/bin/python3 bench/run.py --rounds $(BENCH_ROUNDS) --pyrunc $(PYRUNC) $(BENCH_ARGS)
	@$(PY) bench/report.py bench/results docs

# make bench-scale: 10, 100, 250, 500 and 1000 containers created and not
# started (pyrunc and runc together): time of state, list and list --format
# json, memory per container (bench/scale.py; SCALE_ARGS="--counts ...");
# the table lands in bench/results/scale.md and, at the next `make bench`
# or `make bench-report`, in docs/benchmarks.md.
bench-scale: venv
	@$(if $(SANDBOX),$(SANDBOX)) /usr/bin/python3 bench/scale.py $(SCALE_ARGS)
	@$(PY) bench/report.py bench/results docs

bench-report: venv
	@$(PY) bench/report.py bench/results docs

.PHONY: bench-scale bench-report

# make bench-engines: end to end through the engines, `run --rm IMAGE true`
# of the engine tests' busybox image with podman, Docker and containerd's
# ctr, pyrunc and runc interleaved (bench/engines.py; the engines are set up
# by tests/integration/engines/conftest.py's fixtures, all torn down after).
# ENGINES_ARGS="--rounds N --engines podman,docker --per-call ..."; the
# table lands in bench/results/engines.md (engines-calls.md with --per-call)
# and, through bench/report.py, in docs/benchmarks.md.
ENGINES_ARGS ?=

bench-engines: venv
	@$(PY) -c 'import matplotlib' 2>/dev/null || $(PY) -m pip install -q --disable-pip-version-check matplotlib
	@$(if $(SANDBOX),$(SANDBOX)) $(PY) bench/engines.py --pyrunc $(PYRUNC) $(ENGINES_ARGS)
	@$(PY) bench/report.py bench/results docs

.PHONY: bench-engines
