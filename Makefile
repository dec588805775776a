# The two commands of the README, and what they need. Only Python >= 3.11 and make are assumed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test e2e lint venv clean bench bench-billed compat docs

## demo: run the example DAG against the bundled emulator (creates/refreshes .venv)
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

## test: lint, type-check and run the whole test suite (creates/refreshes .venv)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy airflow_provider_arr example_dags docs/examples/project/dags
	$(BIN)/python -m pytest -q

## e2e: the provider on a real Airflow deployment (PostgreSQL, separate components, Local and Celery
## executors). Installs PostgreSQL and Redis with apt-get when missing, so run it as root. See docs/development.md.
e2e: $(STAMP)
	bash scripts/e2e.sh

## bench-billed: billed idle seconds per life cycle of arr_render_pipeline on a real deployment (like
## make e2e: installs PostgreSQL when missing, run as root). About 5 minutes. Not part of make bench.
bench-billed: $(STAMP)
	bash scripts/e2e.sh --bench-billed

## bench: the performance benchmarks of tests/benchmarks (not part of the test suite): prints the
## tables, writes .bench/results.json and docs/benchmarks.png. About 16 minutes. They run in their own
## venv, .bench-venv, which adds the benchmark-only packages; `wrk` is used when installed.
BENCH_VENV := .bench-venv
BENCH_STAMP := $(BENCH_VENV)/.installed
bench: $(BENCH_STAMP)
	env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(CURDIR)/.bench/pycache $(BENCH_VENV)/bin/python tests/benchmarks/run.py

$(BENCH_STAMP): $(STAMP) pyproject.toml constraints.txt
	test -x $(BENCH_VENV)/bin/python || $(BIN)/uv venv --quiet --python $(BIN)/python $(BENCH_VENV)
	$(BIN)/uv pip install --quiet --python $(BENCH_VENV)/bin/python -c constraints.txt -e . \
		"apache-airflow-providers-dbt-cloud==4.11.1" matplotlib
	touch $(BENCH_STAMP)

## compat: the unit and dag.test suites and the demo on each older supported Airflow minor, each in its own
## venv (.venv-af31, .venv-af32) resolved as of its release's date; the minors in parallel, with each
## one's wall time (scripts/compat.sh). Not part of make test; CI runs it. One minor: make compat MINORS=3.1
MINORS ?= 3.1 3.2
compat: $(STAMP)
	bash scripts/compat.sh $(MINORS)

## docs: build the documentation site into docs/_build/html with Sphinx, every warning an error (a broken
## internal link or anchor, a missing include, a docstring Sphinx cannot read). Offline. About 20 s.
docs: $(STAMP)
	rm -rf docs/_build
	$(BIN)/sphinx-build --fail-on-warning --keep-going --quiet --builder html docs docs/_build/html
	@echo "docs: open docs/_build/html/index.html"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy airflow_provider_arr example_dags docs/examples/project/dags

venv: $(STAMP)

# uv installs Airflow in seconds; it is itself installed from PyPI into the venv, so nothing but
# Python is needed beforehand. constraints.txt pins the versions we test with.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.4"
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt -e ".[dev,docs]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) .venv-af3? .compat .demo .pytest_cache .mypy_cache .ruff_cache docs/_build
