# Rollcall: `make run` serves a demo district, `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test conformance lint bench clean

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

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info
