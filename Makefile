# Two commands: `make demo` serves the Starlette example, `make test` runs every gate.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install services demo demo-flask demo-client test lint typecheck pytest test-py310 bench bench-instructions clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	# setuptools leaves its build metadata beside the package; the editable install keeps
	# its own in the venv, so src/ holds the source only.
	rm -rf src/*.egg-info
	touch $(STAMP)

install: $(STAMP)

# redis-server and memcached for the storage tests (installed when missing).
services:
	bash .ci/install-services

demo: install
	@echo "restfault demo: the Starlette example on http://$(HOST):$(PORT) (memory storage). Try:"
	@echo "  curl -i http://$(HOST):$(PORT)/api/v2/health"
	@echo "  curl -i http://$(HOST):$(PORT)/api/v2/db/_table/contacts -H 'X-API-Key: pk_demo'"
	@echo "  curl -i http://$(HOST):$(PORT)/api/v2/db/_table/Contacts -H 'X-API-Key: pk_demo'"
	@echo "  curl -i -X POST http://$(HOST):$(PORT)/api/v2/db/_table/contacts -H 'X-API-Key: pk_demo' -d '{bad'"
	@echo "  curl -i http://$(HOST):$(PORT)/api/v2/boom -H 'X-API-Key: pk_demo'"
	@echo "  curl -i http://$(HOST):$(PORT)/api/v2/user/session -H 'X-API-Key: pk_demo' -d '{\"email\": \"ada@example.com\", \"password\": \"lovelace\"}'"
	HOST=$(HOST) PORT=$(PORT) RESTFAULT_STORAGE_URI=memory:// $(PY) examples/starlette_app/app.py

demo-flask: install
	HOST=$(HOST) PORT=5000 RESTFAULT_STORAGE_URI=memory:// $(PY) examples/flask_app/app.py

# examples/client_demo.py against the Starlette example, started on a free loopback port
# with the settings the demo expects (shared/EXAMPLES.md, "The client") and stopped after.
demo-client: install
	@port=$$($(PY) -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'); \
	RESTFAULT_STYLE=bkend RESTFAULT_EMAIL_LIMITS=1/2seconds EXAMPLE_SESSION_TTL=2 \
		RESTFAULT_STORAGE_URI=memory:// EXAMPLE_DB= EXAMPLE_MAINTENANCE_FILE= \
		$(PY) -m uvicorn examples.starlette_app.app:app --host 127.0.0.1 --port $$port \
		--log-level warning & server=$$!; \
	trap 'kill $$server 2>/dev/null; wait $$server 2>/dev/null' EXIT; \
	$(PY) examples/client_demo.py http://127.0.0.1:$$port

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

# The whole suite, with branch coverage held to fail_under in pyproject.toml; two worker
# processes (PYTEST_WORKERS), as the machines it runs on have two cores.
PYTEST_WORKERS ?= 2
pytest: install services
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --cov --cov-report=term --cov-branch

# The unit tests (no real servers) on Python 3.10, the oldest Python restfault supports, in
# .venv310. .ci/test-py310 finds the interpreter (PY310=..., python3.10, pyenv's, uv's);
# without one it prints a note and passes.
test-py310: services
	bash .ci/test-py310

test: lint typecheck pytest test-py310

# Benchmarks (docs/benchmarks.md): `make bench`, or `make bench BENCH_ARGS=--quick`.
# Installs the peers (the `bench` extra), and wrk for the loopback runs when it is missing.
BENCH_ARGS ?=
bench: install services
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	rm -rf src/*.egg-info
	command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } \
		|| echo "bench: wrk is not installed; loopback runs will be skipped"
	$(PY) bench/run.py $(BENCH_ARGS)

# Instructions per request, counted by valgrind (installed when missing): bare, no limits,
# a limit, limits' own calls in the same request, and limits' calls in a tight loop.
bench-instructions: install
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	rm -rf src/*.egg-info
	command -v valgrind >/dev/null 2>&1 || { [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; } \
		|| echo "bench-instructions: valgrind is not installed"
	$(PY) -m bench.instructions asgi bare,restfault-none,restfault-limit,restfault-429,floor-in-request
	$(PY) -m bench.instructions wsgi bare,restfault-none,restfault-limit,restfault-429,floor-in-request

clean:
	rm -rf $(VENV) .venv310 .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
