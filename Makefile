# Two entry points for a fresh machine: `make dev` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: dev test install lint system-packages

# Debian packages the tests need: Chromium (Playwright drives it; its own
# browser download is not used), a font with Chinese glyphs (also the documents'
# font), promtool (from prometheus) for the alert rules and dashboard in
# deploy/observability, and poppler-utils (pdftotext, pdftoppm) to read the PDFs.
SYSTEM_PACKAGES := chromium fonts-wqy-zenhei prometheus poppler-utils

$(BIN)/reissue: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/reissue

install: $(BIN)/reissue

## Start the embedded stack (Temporal dev server + Web UI, PostgreSQL, worker) with demo cases.
dev: install
	$(BIN)/reissue dev --demo

system-packages:
	@dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1 || { \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(SYSTEM_PACKAGES); }

# pytest's worker processes (pytest-xdist), each with its own dev server, PostgreSQL and
# partner simulators; `make test TEST_WORKERS=0` runs the tests in this process.
TEST_WORKERS ?= 2

## Set up and run the whole test suite (lint, type check, tests).
test: install system-packages
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal
