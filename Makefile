# Rollcall: `make run` serves a demo district, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test conformance lint typecheck bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Rollcall needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Browser tests drive Debian's Chromium through Playwright (never a downloaded browser build);
# without it they are skipped with the reason.
/usr/bin/chromium:
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get install -y -qq chromium >/dev/null 2>&1 \
	  || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1) \
	  || echo "note: Chromium could not be installed: the browser tests will be skipped"; \
	else echo "note: install Debian's chromium to run the browser tests (they are skipped without it)"; fi

# OneRoster clients that cannot live in .venv (timeback-oneroster needs Python 3.12 or newer)
# get their own virtualenv, pinned in conformance/oneroster/clients.txt; the conformance tests
# run them as subprocesses. Without a Python 3.12+ or PyPI the reason goes to .unavailable and
# those tests are skipped with it.
CLIENTS := .venv-clients
CLIENT_PYTHONS := python3.13 python3.12 $(wildcard $(HOME)/.pyenv/versions/3.1[2-9]*/bin/python)
CLIENT_PYTHON ?= $(shell for p in $(CLIENT_PYTHONS); do \
  $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null && echo $$p && break; done)

$(CLIENTS)/.installed: conformance/oneroster/clients.txt
	@rm -f $(CLIENTS)/.unavailable
	@if [ -z "$(CLIENT_PYTHON)" ]; then mkdir -p $(CLIENTS); \
	  echo "no Python 3.12 or newer found (set CLIENT_PYTHON)" > $(CLIENTS)/.unavailable; \
	elif ( test -x $(CLIENTS)/bin/python || $(CLIENT_PYTHON) -m venv $(CLIENTS) ) \
	  && $(CLIENTS)/bin/python -m pip install --quiet -r conformance/oneroster/clients.txt; then \
	  touch $@; \
	else echo "pip could not install conformance/oneroster/clients.txt (is PyPI reachable?)" \
	  > $(CLIENTS)/.unavailable; fi
	@if [ -f $(CLIENTS)/.unavailable ]; then echo "note: $$(cat $(CLIENTS)/.unavailable)"; fi

run: $(STAMP)
	$(BIN)/rollcall serve --demo

# The suite runs on every core (pytest-xdist); each worker has its own database (tests/workers.py)
# and takes whole files, since some files replay a documented sequence in order.
PYTEST_WORKERS ?= auto
test: $(STAMP) /usr/bin/chromium $(CLIENTS)/.installed
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

conformance: $(STAMP) $(CLIENTS)/.installed
	$(BIN)/python -m pytest conformance $(PYTEST_ARGS)

lint: $(STAMP) typecheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy: default checks everywhere, strict on server/domain and the adapters (pyproject.toml).
typecheck: $(STAMP)
	$(BIN)/mypy

# QUICK=1: smaller sizes, fewer requests (under 3 minutes); see bench/README.md.
bench: $(STAMP)
	$(BIN)/python -m bench $(if $(QUICK),--quick)

# The long runs `make test` keeps short: Schemathesis over the three OpenAPI documents (single
# operations and Link chains) and the property tests with a fresh seed and SOAK_SCALE times the
# examples, then the two-process load on PostgreSQL (ROLLCALL_TEST_DATABASE_URL; skipped without).
SOAK_SCALE ?= 20
SOAK_REQUESTS ?= 20000
SOAK_TESTS := tests/web/test_generated_requests.py tests/oneroster/test_generated_requests.py \
	conformance/oneroster/test_oneroster_robustness.py tests/scim/test_filter_properties.py \
	tests/oneroster/test_filter_properties.py tests/imports/test_reader_properties.py

soak: $(STAMP)
	ROLLCALL_FUZZ_SEED=fresh ROLLCALL_SOAK_SCALE=$(SOAK_SCALE) \
	  $(BIN)/python -m pytest $(SOAK_TESTS) -p no:cacheprovider --timeout 0 $(PYTEST_ARGS)
	$(BIN)/python -m bench.load --requests $(SOAK_REQUESTS) --clients 50

clean:
	rm -rf $(VENV) $(CLIENTS) build *.egg-info
