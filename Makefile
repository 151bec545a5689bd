# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Every install is pinned by constraints.txt, so a fresh machine gets what CI tested.
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt
# `make run PORT=8010 HOST=0.0.0.0`: links in SMS and emails follow, unless
# PARIS_AVENIR_BASE_URL is set (paris-avenir serve).
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-dev lint typecheck pytest messages lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP_INSTALL) -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## make run: install, migrate the SQLite database under ./var, load the demo, serve :$(PORT)
run: install
	$(BIN)/paris-avenir migrate
	$(BIN)/paris-avenir demo
	$(BIN)/paris-avenir serve --host $(HOST) --port $(PORT)

## make test: install the dev tools, then lint, type checks and the whole test suite
test: install-dev lint typecheck pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/pytest

## make messages: extract the texts to translate and update every catalog
messages: install-dev
	$(BIN)/pybabel extract -F babel.cfg -k N_ -k lazy_gettext -o paris_avenir/locale/messages.pot --no-location --sort-output --width 100 .
	$(BIN)/pybabel update -i paris_avenir/locale/messages.pot -d paris_avenir/locale --ignore-obsolete --no-fuzzy-matching --width 100

## make lock: re-pin every dependency after changing pyproject.toml
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --disable-pip-version-check -e '.[dev]'
	.lock-venv/bin/pip freeze --exclude-editable --disable-pip-version-check | grep -v '^paris-avenir' > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
