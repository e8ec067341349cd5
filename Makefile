# Rollcall: `make run` serves a demo district, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test conformance lint bench soak clean

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

run: $(STAMP)
	$(BIN)/rollcall serve --demo

test: $(STAMP) /usr/bin/chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

conformance: $(STAMP)
	$(BIN)/python -m pytest conformance $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

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
	rm -rf $(VENV) build *.egg-info
