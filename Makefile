# Two entry points for a fresh machine with Python 3.11+:
#   make demo   — install, then run lawful's main job on the embedded SQLite default
#   make test   — install with test tools, then run the whole test suite and the linter
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint install dev taxonomy clean browsers

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit("lawful needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/lawful check examples/policies/*.yaml
	$(BIN)/lawful demo

test: install browsers
	$(BIN)/python -m pytest
	$(BIN)/ruff check lawful tests scripts bench examples

lint: install
	$(BIN)/ruff check lawful tests scripts bench examples
	$(BIN)/ruff format --check lawful tests scripts bench examples

# Headless Chromium for the notice's browser tests (tests/notice/test_browser.py), from
# Debian's `chromium` package. Never fails the build: without apt-get or root it says how
# to install it and the browser tests skip (they fail under CI=true, where it must be there).
BROWSER_NAMES := chromium chromium-browser google-chrome
browsers:
	@found=; for b in $(BROWSER_NAMES); do command -v $$b >/dev/null 2>&1 && found=$$b; done; \
	if [ -n "$$found" ]; then \
		:; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "browsers: no apt-get here; install Chromium yourself to run the browser tests (they skip without it)"; \
	elif [ "$$(id -u)" = 0 ]; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y --no-install-recommends chromium \
			|| (apt-get update -q && apt-get install -y --no-install-recommends chromium) \
			|| echo "browsers: apt-get could not install chromium; the browser tests will skip"; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
		sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
			|| echo "browsers: apt-get could not install chromium; the browser tests will skip"; \
	else \
		echo "browsers: run 'sudo apt-get install chromium' to run the browser tests (they skip without it)"; \
	fi

# Regenerate lawful/policy/data/fideslang_taxonomy.json from the fideslang package. It
# lives in its own environment: fideslang pins an older pydantic than lawful uses.
taxonomy:
	$(PYTHON) -m venv $(VENV)-taxonomy
	$(VENV)-taxonomy/bin/python -m pip install --quiet fideslang
	$(VENV)-taxonomy/bin/python scripts/snapshot_taxonomy.py

clean:
	rm -rf $(VENV) $(VENV)-taxonomy *.egg-info .pytest_cache .ruff_cache
