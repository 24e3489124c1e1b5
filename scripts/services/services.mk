# Local real Kafka (KRaft) + PostgreSQL for development and tests; included by the top-level Makefile.
#   make -s services        start both (safe to run twice); prints ONLY the `export SAFEGUARD_...` lines
#   eval "$(make -s services)"
#   make services-stop      stop both and delete their data
# Progress and errors go to stderr. State lives in $(SAFEGUARD_SERVICES_DIR), default <repo>/.services.
SERVICES_SCRIPTS := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
SERVICES_REPO := $(abspath $(SERVICES_SCRIPTS)/../..)
PYTHON ?= python3
SERVICES_PYTHON := $(firstword $(wildcard $(SERVICES_REPO)/.venv/bin/python) $(PYTHON) python3)
SERVICES_PY := $(SERVICES_PYTHON) $(SERVICES_SCRIPTS)/services.py

.PHONY: services services-stop services-status

services:
	@$(SERVICES_PY) start >&2
	@$(SERVICES_PY) env

services-stop:
	@$(SERVICES_PY) stop >&2

services-status:
	@$(SERVICES_PY) status
