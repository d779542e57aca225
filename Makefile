# Every target creates its own virtual environment and installs what it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck schemas clean browser node-tools bench bench-quick bench-full

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lifecycle demo

# The dashboard test drives Debian's Chromium: installed here when missing (root and apt-get).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the dashboard test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "warning: cannot install chromium (needs root and apt-get): the dashboard test will skip"; \
	  fi; }

# The official AsyncAPI parser judges schemas/asyncapi.json and Node's regular expressions judge
# its patterns: Node from Debian, installed here when missing (root and apt-get), as chromium is;
# without it the tests skip, saying why.
NODE_TOOLS := .cache/node
$(NODE_TOOLS)/.installed:
	@command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's nodejs and npm for the schema tests"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null; } || true; \
	    command -v npm >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null || true; \
	  fi; }
	@if command -v npm >/dev/null 2>&1; then \
	  mkdir -p $(NODE_TOOLS) && \
	  npm install --silent --no-audit --no-fund --no-save --prefix $(NODE_TOOLS) @asyncapi/parser@3.6.6 && \
	  touch $@; \
	else \
	  echo "warning: no npm (needs root and apt-get to install): the AsyncAPI parser test will skip"; \
	fi

node-tools: $(NODE_TOOLS)/.installed

test: $(STAMP) browser node-tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest

# Benchmarks (not tests): ratios to the transport's raw limits, measured in the same run.
bench: $(STAMP)
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --sizes 3000 --no-api --e2e-seconds 5

# Adds the 1M-touchpoint run (about 17 minutes here: 15 for 1M alone).
bench-full: $(STAMP)
	$(BIN)/python -m bench.run --sizes 10000,100000,1000000

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

schemas: $(STAMP)
	$(BIN)/lifecycle schemas write

clean:
	rm -rf $(VENV) .lifecycle .pytest_cache .mypy_cache .ruff_cache test-artifacts .cache
