# The two quick-start commands: `make demo` and `make test`.
# Each creates .venv if needed and installs what it needs (python3, pip and make suffice).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEPS   := $(VENV)/.deps-installed

.PHONY: demo test lint typecheck unit browser screenshot bench lab clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall when pyproject.toml changes.
$(DEPS): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The quick-start notebook, executed headless against the embedded emulator.
demo: $(DEPS)
	$(BIN)/python -m cms_magic.quickstart

# JupyterLab on notebooks/ (Jupyter refuses root without --allow-root).
lab: $(DEPS)
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

lint: $(DEPS)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEPS)
	$(BIN)/mypy

unit: $(DEPS)
	$(BIN)/python -m pytest

# Debian's Chromium for the real-browser panel test (installs nothing when present).
browser:
	bash tools/install-browser.sh

test: lint typecheck browser unit

# Refresh docs/panel.png (the README's screenshot) from the real-browser test.
screenshot: $(DEPS) browser
	CMS_MAGIC_SCREENSHOT=docs/panel.png $(BIN)/python -m pytest -q tests/browser

bench: $(DEPS)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache build dist *.egg-info
