# The two front-door commands: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install assets run test test-deps lint bench clean services services-stop

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The web app's static files, from npm at the versions pinned in package-lock.json (no CDN): GOV.UK
# Frontend's script, its stylesheet compiled with our own font stack (this is not a GOV.UK service, so no
# GDS Transport), Swagger UI for /docs. axe-core stays in node_modules for the browser tests. Any failure
# (npm unreachable, a build error) stops make, and so `make test` and `make run`.
STATIC := pipeline/web/static
ASSETS_STAMP := $(STATIC)/.built
GOVUK := node_modules/govuk-frontend/dist/govuk
$(ASSETS_STAMP): package.json package-lock.json $(wildcard pipeline/web/assets/*)
	@command -v npm >/dev/null 2>&1 || { \
		echo "installing Debian's nodejs and npm for the web app's assets" >&2; \
		apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >/dev/null; }
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	rm -rf $(STATIC) && mkdir -p $(STATIC)/govuk $(STATIC)/swagger
	cp $(GOVUK)/govuk-frontend.min.js $(GOVUK)/govuk-frontend.min.js.map $(STATIC)/govuk/
	node_modules/.bin/sass --load-path=node_modules/govuk-frontend/dist --style=compressed --no-source-map \
		--quiet-deps pipeline/web/assets/app.scss $(STATIC)/app.css
	cp pipeline/web/assets/app.mjs $(STATIC)/app.mjs
	cp node_modules/swagger-ui-dist/swagger-ui.css node_modules/swagger-ui-dist/swagger-ui-bundle.js \
		pipeline/web/assets/docs.js $(STATIC)/swagger/
	@test -f node_modules/axe-core/axe.min.js
	@touch $@

assets: $(ASSETS_STAMP)

## make run: the embedded pipeline with demo data on http://127.0.0.1:8000
run: install assets
	$(VENV)/bin/safeguard run --demo

## make test: every tier (unit, integration, kafka, browser); fails if any test is skipped
test: install assets test-deps
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
	rm -rf var .pytest_cache .mypy_cache .ruff_cache node_modules $(STATIC) tests/browser/screenshots

-include scripts/services/services.mk
