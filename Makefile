# agriland: `make run` builds the quickstart models (first time) and serves them; `make test` runs the tests.
PYTHON ?= python3.11
VENV ?= .venv
PORT ?= 3000
PROFILE ?= quick
BIN := $(VENV)/bin

.PHONY: install run test test-fast bench build clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[train,serve,geo,batch,dev]"
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/agriland quickstart --profile $(PROFILE) --port $(PORT)

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

bench: install
	$(BIN)/python bench/run_all.py

build: install
	$(BIN)/bentoml build

clean:
	rm -rf runs models data out
