# `make run` and `make test` are the two commands a new user needs; each sets
# up .venv on a fresh machine, so neither assumes the other ran first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test bench openapi clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/medkb validate content
	$(BIN)/medkb import --if-empty content
	$(BIN)/medkb serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	@# The console's browser tests drive Debian's Chromium; Playwright never downloads a browser.
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	@# The store tests also run on a throwaway PostgreSQL server started from Debian's binaries.
	command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq postgresql)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/store.py

openapi: $(STAMP)
	$(BIN)/medkb openapi

clean:
	rm -rf $(VENV) var .pytest_cache
