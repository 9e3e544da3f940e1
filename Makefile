# `make test` and `make demo` work on a fresh clone: the first use builds .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo run migrate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) -m testkit.demo

run: $(STAMP)
	$(VENV)/bin/kiebot run

migrate: $(STAMP)
	$(VENV)/bin/kiebot migrate

clean:
	rm -rf $(VENV) .pytest_cache demo-output
