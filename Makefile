# Everything a new user or CI needs, from a fresh clone with only python3 (>= 3.11) and make.
#   make test                          lint + type check + tests on Airflow $(AIRFLOW_VERSION)
#   make test AIRFLOW_VERSION=2.11.2   the same on Airflow 2
#   make demo                          an end-to-end run against the bundled simulator (no token needed)
#   make demo-events                   the event-driven example pair (AssetWatcher, Airflow 3) against the simulator
#   make bench                         the benchmarks (see benchmarks/README.md)
#   make e2e-browser                   the demo, then its UI checked in headless Chromium (screenshots)
#   make e2e-distributed               Airflow 3.3.2 with Celery, PostgreSQL, Redis, two workers and two
#                                      triggerers, through fault drills (see docs/scale.md)
# Each Airflow version gets its own virtualenv, (re)built when pyproject.toml changes.

PYTHON ?= python3
AIRFLOW_VERSION ?= 3.3.2
VENV ?= .venv-airflow-$(AIRFLOW_VERSION)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test lint typecheck unit demo demo-events bench clean venv e2e-distributed distributed-venv e2e-browser

# Airflow's own constraints files cannot be downloaded here: the pins that matter for a version, with
# where they came from, are in constraints/airflow-X.Y.Z.txt (none needed for 3.3.2 and 2.11.2).
CONSTRAINTS := $(wildcard constraints/airflow-$(AIRFLOW_VERSION).txt)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) \
		"apache-airflow==$(AIRFLOW_VERSION)" -e ".[test,openlineage]"
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

# The event-driven example pair: the start DAG creates videos and analyses and ends; the results DAG runs
# when the watcher's asset reports an analysis done. Needs Airflow 3 (exits with a message on Airflow 2).
# Its own arguments, e.g. DEMO_EVENTS_ARGS='--poll-interval 10' (all of them: DEMO_EVENTS_ARGS=--help).
DEMO_EVENTS_ARGS ?=

demo-events: $(STAMP)
	$(BIN)/python scripts/demo_events.py $(DEMO_EVENTS_ARGS)

# The demo with the web UI, then the connection form and the extra link checked in headless Chromium
# (Debian's chromium, driven by the playwright package: no browser download). Where Chromium cannot be
# installed the check is skipped with a message saying so.
PLAYWRIGHT_VERSION ?= 1.65.2

e2e-browser: $(STAMP)
	@if scripts/install-browser.sh; then \
		$(BIN)/python -m pip install --quiet --disable-pip-version-check "playwright==$(PLAYWRIGHT_VERSION)" && \
		$(BIN)/python scripts/demo.py --browser-check $(DEMO_ARGS); \
	else \
		echo "SKIPPED make e2e-browser: Chromium could not be installed on this machine (see above)."; \
	fi

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[bench]"
	$(BIN)/python benchmarks/run_all.py

# The production-shaped run: its own virtualenv (Airflow with the celery and postgres extras), and
# PostgreSQL and Redis from Debian's packages, installed when missing. The script starts and stops them.
DISTRIBUTED_AIRFLOW_VERSION ?= 3.3.2
DIST_VENV ?= .venv-distributed-$(DISTRIBUTED_AIRFLOW_VERSION)
DIST_BIN := $(DIST_VENV)/bin
DIST_STAMP := $(DIST_VENV)/.installed
# Extra arguments for scripts/e2e_distributed.py (all of them: E2E_ARGS=--help).
E2E_ARGS ?=

DIST_CONSTRAINTS := constraints/distributed-$(DISTRIBUTED_AIRFLOW_VERSION).txt

$(DIST_STAMP): pyproject.toml $(DIST_CONSTRAINTS)
	@test -x $(DIST_BIN)/python || $(PYTHON) -m venv $(DIST_VENV)
	$(DIST_BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(DIST_BIN)/python -m pip install --quiet --disable-pip-version-check -c $(DIST_CONSTRAINTS) \
		"apache-airflow[celery,postgres]==$(DISTRIBUTED_AIRFLOW_VERSION)" -e ".[test]"
	@touch $@

distributed-venv: $(DIST_STAMP)

e2e-distributed: $(DIST_STAMP)
	scripts/install-services.sh
	$(DIST_BIN)/python scripts/e2e_distributed.py $(E2E_ARGS)

clean:
	rm -rf .venv-airflow-* .venv-distributed-* build dist *.egg-info
