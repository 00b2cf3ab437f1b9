# Everything runs from .venv, created on demand; `make serve` is the whole set-up.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install serve cluster migrate test test-fast lint format typecheck schema check bench clean mutation

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	@bash scripts/install-system-deps.sh || echo "warning: bubblewrap/libseccomp not installed; the sandbox will use the layers it finds (docs/sandbox.md)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# PYTHONWARNINGS reaches the build backend: setuptools' notice about editable installs is noise.
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

migrate: install
	$(PY) -m server migrate

serve: install migrate
	$(PY) -m server

# The multi-machine set-up on this machine: the API and two queue workers against the local
# PostgreSQL and Redis (docs/scaling.md). DATABASE_URL, REDIS_URL and PORT override.
cluster: install
	bash scripts/cluster.sh

test: install
	@test -x "$${CHROMIUM_PATH:-/usr/bin/chromium}" || echo "note: the GraphiQL browser test will skip: install Chromium (apt-get install chromium) or set CHROMIUM_PATH"
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The inner loop: everything but the tests that start programs of their own (marker
# `process`: the server, the CLI, code generators, a browser). `make test` runs them all.
test-fast: install
	$(PY) -m pytest -q -m "not process" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install
	$(VENV)/bin/mypy

schema: install
	$(PY) -m server export-schema > schema.graphql

check: lint typecheck test

# Every bench script (the job and optimisation benches alone take about ten minutes each), then docs/benchmarks.md regenerated:
# the only way that file changes. BENCH_ARGS passes options to bench/run_all.py.
bench: install
	$(PY) bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Mutation testing (docs/testing.md): slow, so outside `make test` and CI. Niced; resumes where
# it stopped. MUTANTS narrows it (e.g. MUTANTS='services.accounts*'); the report section of
# docs/testing.md is then rewritten from mutmut's results.
MUTANTS ?=
mutation: install
	nice -n 10 $(VENV)/bin/mutmut run --max-children 2 $(MUTANTS)
	$(PY) scripts/mutation_report.py
