# Two entry points for a fresh machine with Python 3.11+:
#   make demo   — install, then run lawful's main job on the embedded SQLite default
#   make test   — install with test tools, then run the whole test suite and the linter
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint install dev taxonomy clean

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

test: install
	$(BIN)/python -m pytest
	$(BIN)/ruff check lawful tests scripts bench examples

lint: install
	$(BIN)/ruff check lawful tests scripts bench examples
	$(BIN)/ruff format --check lawful tests scripts bench examples

# Regenerate lawful/policy/data/fideslang_taxonomy.json from the fideslang package. It
# lives in its own environment: fideslang pins an older pydantic than lawful uses.
taxonomy:
	$(PYTHON) -m venv $(VENV)-taxonomy
	$(VENV)-taxonomy/bin/python -m pip install --quiet fideslang
	$(VENV)-taxonomy/bin/python scripts/snapshot_taxonomy.py

clean:
	rm -rf $(VENV) $(VENV)-taxonomy *.egg-info .pytest_cache .ruff_cache
