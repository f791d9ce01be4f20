# Thin targets over scripts/: run `make help` for the list.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
MANAGE := cd Web/lampisite && ../../$(PY) manage.py

.PHONY: help setup test lint lock up down status demo capacity

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup:  ## Install what is missing: Debian packages, uv, the locked .venv
	@bash scripts/setup.sh

test: setup  ## The linters, then the whole test suite in each profile: baseline, then tuned
	$(VENV)/bin/ruff check .
	LAMPI_PROFILE=baseline $(VENV)/bin/pytest
	LAMPI_PROFILE=tuned $(VENV)/bin/pytest

lint: setup  ## ruff check and ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

up:  ## Start the server stack on loopback (LAMPI_PROFILE, LAMPI_HTTP_PORT, LAMPI_SERVER_CPUS...)
	@PYTHONPATH=scripts $(PY) -m lampi_stack up

down:  ## Stop what `make up` started
	@PYTHONPATH=scripts $(PY) -m lampi_stack down

status:  ## Say which parts of the local stack run, and where
	@PYTHONPATH=scripts $(PY) -m lampi_stack status

demo:  ## Set up, start the stack, seed, find the largest HTTP and MQTT loads served without error, stop (DEMO_SCALE=smoke: 3 min)
	@bash scripts/demo.sh

capacity:  ## The capacity study: baseline, each change alone, tuned; compared (CAPACITY_ARGS)
	@bash scripts/setup.sh
	cd loadtesting && ../$(PY) -m lampi_load.runs.capacity $(CAPACITY_ARGS)

lock:  ## Re-resolve uv.lock after editing pyproject.toml
	UV_PROJECT_ENVIRONMENT=$(VENV) .cache/uv/bin/uv lock --python python3.11
