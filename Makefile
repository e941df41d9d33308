# Everything a new user or CI needs, from a fresh clone with only python3 (>= 3.11) and make.
#   make test                          lint + type check + tests on Airflow $(AIRFLOW_VERSION)
#   make test AIRFLOW_VERSION=2.11.2   the same on Airflow 2
#   make demo                          an end-to-end run against the bundled simulator (no token needed)
#   make bench                         the benchmarks (see benchmarks/README.md)
# Each Airflow version gets its own virtualenv, (re)built when pyproject.toml changes.

PYTHON ?= python3
AIRFLOW_VERSION ?= 3.3.2
VENV ?= .venv-airflow-$(AIRFLOW_VERSION)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test lint typecheck unit demo bench clean venv

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test]"
	@touch $@

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collects nothing; make treats every non-zero exit as a failure.
unit: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck unit

# Extra arguments for scripts/demo.py, e.g. DEMO_ARGS='--timeout 300' (all of them: DEMO_ARGS=--help).
DEMO_ARGS ?=

demo: $(STAMP)
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[bench]"
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf .venv-airflow-* build dist *.egg-info
