# Two entry points for a fresh machine: `make dev` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: dev test install lint

$(BIN)/reissue: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/reissue

install: $(BIN)/reissue

## Start the embedded stack (Temporal dev server + Web UI, PostgreSQL, worker) with demo cases.
dev: install
	$(BIN)/reissue dev --demo

## Set up and run the whole test suite (lint, type check, tests).
test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest
