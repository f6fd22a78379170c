# costwatch: `make run` starts the product, `make test` runs the whole suite.
# Both create .venv on first use with the Python found below (3.11+).

PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DATA_DIR ?= $(or $(COSTWATCH_DATA_DIR),.data)
# stop-db and clean-data need no .venv: they only signal a running server.
ANY_PY = $(if $(wildcard $(PY)),$(PY),$(or $(PYTHON),python3))

.PHONY: run test lint bench soak stop-db clean-data help

help:
	@echo "make run    - start costwatch (web + Celery worker + beat) on http://127.0.0.1:8000 with demo data"
	@echo "make test   - run the whole test suite (real PostgreSQL, Redis, Celery worker, Chromium)"
	@echo "make bench  - ingest, dashboard and rule benchmarks (prints figures)"
	@echo "make soak   - a longer ingest + refresh + rules soak run"
	@echo "make stop-db - stop the embedded PostgreSQL that make run leaves running (data kept)"
	@echo "make clean-data - stop it and delete .data (database, broker, saved secrets, logs)"

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "costwatch needs Python 3.11 or newer on PATH (python3.11/python3.12/python3.13)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]' -e ./costwatch_client
	@touch $(STAMP)

run: $(STAMP)
	$(PY) scripts/run_dev.py

test: $(STAMP)
	$(PY) scripts/run_tests.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) scripts/run_bench.py $(ARGS)

soak: $(STAMP)
	$(PY) scripts/run_bench.py --soak $(ARGS)

stop-db:
	@$(ANY_PY) scripts/services.py stop-db $(DATA_DIR)

clean-data: stop-db
	rm -rf $(DATA_DIR)
