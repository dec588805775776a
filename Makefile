# The two commands of the README, and what they need. Only Python >= 3.11 and make are assumed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv clean

## demo: run the example DAG against the bundled emulator (creates/refreshes .venv)
demo: $(STAMP)
	$(BIN)/python scripts/demo.py

## test: lint, type-check and run the whole test suite (creates/refreshes .venv)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy airflow_provider_arr
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy airflow_provider_arr

venv: $(STAMP)

# uv installs Airflow in seconds; it is itself installed from PyPI into the venv, so nothing but
# Python is needed beforehand. constraints.txt pins the versions we test with.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv>=0.4"
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c constraints.txt -e ".[dev]"
	touch $(STAMP)

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
