# `make test` and `make demo` work on a fresh clone: the first use builds .venv.
# `make test` runs every tier (unit, integration, e2e, testkit) in parallel workers: most tests
# wait on sockets, timers and child processes, so more workers than cores pays off (measured on
# 2 cores: see README). `make test-fast` runs the unit tier alone, in one process.
PYTHON ?= python3
JOBS ?= 6
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test test-fast demo bench run migrate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) -m testkit.demo

# Issue 11's measures against the fakes (README "Performance"); e.g. BENCH_ARGS="--db postgres".
bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

run: $(STAMP)
	$(VENV)/bin/kiebot run

migrate: $(STAMP)
	$(VENV)/bin/kiebot migrate

clean:
	rm -rf $(VENV) .pytest_cache demo-output
