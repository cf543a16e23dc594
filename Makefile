# Two commands: `make demo` serves the Starlette example, `make test` runs every gate.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install services demo demo-flask test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# redis-server and memcached for the storage tests (installed when missing).
services:
	bash .ci/install-services

demo: install
	@echo "restfault demo: Starlette example on http://$(HOST):$(PORT) (memory storage)"
	HOST=$(HOST) PORT=$(PORT) RESTFAULT_STORAGE_URI=memory:// $(PY) examples/starlette_app/app.py

demo-flask: install
	HOST=$(HOST) PORT=5000 RESTFAULT_STORAGE_URI=memory:// $(PY) examples/flask_app/app.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

pytest: install services
	$(VENV)/bin/pytest --cov --cov-report=term --cov-branch

test: lint typecheck pytest

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
