# The two front-door commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test test-deps lint bench clean services services-stop

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## make run: the embedded pipeline with demo data on http://127.0.0.1:8000
run: install
	$(VENV)/bin/safeguard run --demo

## make test: every tier (unit, integration, kafka, browser); fails if any test is skipped
test: install test-deps
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest

# What the browser and service tiers need from Debian's packages (installed once; a no-op after).
test-deps:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing Debian's chromium for the browser tests" >&2; \
		apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }

lint: install
	$(PY) -m ruff check .
	$(PY) -m mypy

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

-include scripts/services/services.mk
