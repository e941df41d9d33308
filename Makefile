# Everything a new user or CI needs, from a fresh clone with only python3 (>= 3.11) and make.
#   make test                          lint + type check + every test on Airflow $(AIRFLOW_VERSION)
#   make test AIRFLOW_VERSION=2.11.2   the same on Airflow 2
#   make constraints                   regenerate the locks in constraints/ (on purpose; see below)
#   make azurite                       the Azure Storage emulator (npm) for the object-storage tests (make test-airflow)
#   make soak                          thousands of generated fault histories (make test runs a fast profile)
#   make demo                          an end-to-end run against the bundled simulator (no token needed)
#   make demo-object-storage           the demo ingesting s3:// paths from a loopback S3 server, checked before upload
#   make demo-events                   the event-driven example pair (AssetWatcher, Airflow 3) against the simulator
#   make bench                         the benchmarks (see benchmarks/README.md)
#   make e2e-browser                   the demo, then its UI checked in headless Chromium (screenshots)
#   make docs                          the documentation site (Sphinx) into docs/_build/html, warnings as errors
#   make docs-browser                  the built site opened in headless Chromium (screenshots)
#   make e2e-distributed               Airflow 3.3.2 with Celery, PostgreSQL, Redis, two workers and two
#                                      triggerers, through fault drills (see docs/scale.md)
# Each Airflow version gets its own virtualenv holding exactly its lock, rebuilt when the lock or
# pyproject.toml changes.

PYTHON ?= python3
AIRFLOW_VERSION ?= 3.3.2
VENV ?= .venv-airflow-$(AIRFLOW_VERSION)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test lint typecheck standalone test-airflow soak demo demo-object-storage demo-events bench clean venv check-lock constraints \
	e2e-distributed distributed-venv e2e-browser docs docs-browser azurite

# uv (from PyPI, into a venv of its own) creates the virtualenvs and installs into them.
UV_VERSION := 0.13.10
UV_VENV := .venv-uv
UV := $(UV_VENV)/bin/uv
# Never download an interpreter: every venv uses $(PYTHON).
export UV_PYTHON_DOWNLOADS := never

$(UV):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Every venv installs exactly one lock (constraints/*.txt: every package pinned, for Python 3.11 on Linux),
# compiled by `make constraints` from constraints/inputs/*.in (the pins that matter, each with its reason)
# and pyproject.toml, from releases uploaded before LOCK_DATE. To move on: change an input or LOCK_DATE,
# run `make constraints`, then `.ci/run`; commit the locks with the run they passed.
LOCK_DATE := 2026-12-07T00:00:00Z
LOCK := constraints/airflow-$(AIRFLOW_VERSION).txt

constraints: $(UV)
	$(PYTHON) scripts/locks.py compile --uv $(UV) --exclude-newer $(LOCK_DATE)

constraints/%.txt:
	@echo "No lock $@: add constraints/inputs/$*.in and run make constraints." >&2
	@exit 1

# $(call install-locked,VENV,LOCK): the venv holds the lock and the project (editable, built by the lock's
# hatchling), nothing else; scripts/locks.py check fails on any package or version outside the lock.
define install-locked
	$(UV) venv --quiet --clear --python $(PYTHON) $(1)
	$(UV) pip sync --quiet --python $(1)/bin/python $(2)
	$(UV) pip install --quiet --python $(1)/bin/python --no-deps --no-build-isolation -e .
	$(1)/bin/python scripts/locks.py check $(2)
	@touch $(1)/.installed
endef

$(STAMP): pyproject.toml $(LOCK) | $(UV)
	$(call install-locked,$(VENV),$(LOCK))

venv: $(STAMP)

check-lock: $(STAMP)
	$(BIN)/python scripts/locks.py check $(LOCK)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Two tiers (tests/tiers.py): tests/standalone imports no Airflow and runs once, on both cores; the rest
# runs on every Airflow version, in three xdist workers (most of its time is waiting on simulated videos
# and analyses; a module's tests stay in one worker, so a real-Airflow run starts once). The files go out in
# the order tests/tiers.py sorts them, the real-Airflow runs first (--no-loadscope-reorder keeps that order).
# pytest exits 5 when it collects nothing: make fails on it like any error.
standalone: $(STAMP)
	$(BIN)/python -m pytest --tier standalone -n 2 $(PYTEST_ARGS)

AIRFLOW_TIER_ARGS ?= -n 3 --dist loadfile --no-loadscope-reorder
test-airflow: $(STAMP) azurite
	$(BIN)/python -m pytest --tier airflow $(AIRFLOW_TIER_ARGS) $(PYTEST_ARGS)

test: lint typecheck standalone test-airflow

# Thousands of generated fault histories of create → wait → results (tests/system/test_histories.py; make test runs
# a fast profile of the same). A failure prints the seed: AIB_HISTORY_SEED=<seed> make soak replays it.
soak: $(STAMP)
	AIB_HISTORIES=soak $(BIN)/python -m pytest --tier airflow tests/system/test_histories.py $(PYTEST_ARGS)

# Extra arguments for scripts/demo.py, e.g. DEMO_ARGS='--timeout 300' (all of them: DEMO_ARGS=--help).
DEMO_ARGS ?=

demo: $(STAMP)
	$(BIN)/python scripts/demo.py $(DEMO_ARGS)

# The event-driven example pair: the start DAG creates videos and analyses and ends; the results DAG runs
# when the watcher's asset reports an analysis done. Needs Airflow 3 (exits with a message on Airflow 2).
# Its own arguments, e.g. DEMO_EVENTS_ARGS='--poll-interval 10' (all of them: DEMO_EVENTS_ARGS=--help).
DEMO_EVENTS_ARGS ?=

# The demo ingesting from object storage: the matches are real MP4 files in moto's S3 server on loopback, given
# as s3:// paths; the create operator presigns them through aws_default and checks each before its POST, and the
# summary shows what the checks measured (scripts/demo.py --source s3). Needs the amazon provider and moto[server]
# (in the 2.11.2 and 3.3.2 locks). DEMO_ARGS as for make demo.
demo-object-storage: $(STAMP)
	$(BIN)/python scripts/demo.py --source s3 $(DEMO_ARGS)

demo-events: $(STAMP)
	$(BIN)/python scripts/demo_events.py $(DEMO_EVENTS_ARGS)

# The demo with the web UI, then the connection form and the extra link checked in headless Chromium
# (Debian's chromium, driven by the locked playwright package: no browser download). Where Chromium cannot
# be installed the check is skipped with a message saying so.
e2e-browser: $(STAMP)
	@if scripts/install-browser.sh; then \
		$(BIN)/python scripts/demo.py --browser-check $(DEMO_ARGS); \
	else \
		echo "SKIPPED make e2e-browser: Chromium could not be installed on this machine (see above)."; \
	fi

# The documentation site (docs/: MyST Markdown pages, code samples included from example_dags/, the API
# reference by autodoc), built with this venv. -W: every warning fails the build; -n: so does every
# cross-reference that does not resolve (docs/conf.py lists the few it does not check, and why).
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -n -b html docs docs/_build/html

# The built site in headless Chromium (Debian's chromium, driven by the locked playwright package): the
# index, the connection page and a how-to open with their titles and rendered code blocks; screenshots go
# to docs/_build/screenshots/. Where Chromium cannot be installed the check is skipped with a message.
docs-browser: docs
	@if scripts/install-browser.sh; then \
		$(BIN)/python scripts/docs_browser_check.py docs/_build/html docs/_build/screenshots; \
	else \
		echo "SKIPPED make docs-browser: Chromium could not be installed on this machine (see above)."; \
	fi

# Azurite, the Azure Storage emulator (npm), for the Azure tests of videos in object storage
# (tests/unit/test_sources.py starts it on a free loopback port). 3.35.0: the newest release whose engines accept
# the Node.js 20 of Debian's nodejs package (3.36 asks for Node >= 21, 3.37 for >= 22). Without npm the tests that
# need it skip, naming this target. The tests start it in memory, on loopback, with --disableTelemetry.
AZURITE_VERSION := 3.35.0
AZURITE := .azurite/node_modules/.bin/azurite-blob

$(AZURITE):
	@if command -v npm >/dev/null; then \
		npm install --silent --no-audit --no-fund --prefix .azurite azurite@$(AZURITE_VERSION); \
	else \
		echo "SKIPPED make azurite: npm is not installed (apt-get install nodejs npm); the Azure tests will skip."; \
	fi

azurite: $(AZURITE)

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# The production-shaped run: its own virtualenv (Airflow with the celery and postgres extras, its own lock),
# and PostgreSQL and Redis from Debian's packages, installed when missing. The script starts and stops them.
DISTRIBUTED_AIRFLOW_VERSION ?= 3.3.2
DIST_VENV ?= .venv-distributed-$(DISTRIBUTED_AIRFLOW_VERSION)
DIST_STAMP := $(DIST_VENV)/.installed
DIST_LOCK := constraints/distributed-$(DISTRIBUTED_AIRFLOW_VERSION).txt
# Extra arguments for scripts/e2e_distributed.py (all of them: E2E_ARGS=--help).
E2E_ARGS ?=

$(DIST_STAMP): pyproject.toml $(DIST_LOCK) | $(UV)
	$(call install-locked,$(DIST_VENV),$(DIST_LOCK))

distributed-venv: $(DIST_STAMP)

e2e-distributed: $(DIST_STAMP)
	scripts/install-services.sh
	$(DIST_VENV)/bin/python scripts/e2e_distributed.py $(E2E_ARGS)

clean:
	rm -rf .venv-airflow-* .venv-distributed-* $(UV_VENV) .azurite build dist *.egg-info
