# agriland: `make run` builds the quickstart models (first time) and serves them; `make test` runs the tests.
PYTHON ?= python3.11
VENV ?= .venv
PORT ?= 3000
PROFILE ?= quick
BIN := $(VENV)/bin

.PHONY: install run test test-fast bench build clean release-fields

# The shipped field model (agriland/release/fields): trained on field polygons whose licence allows shipping a model
# (the NAIP development set: US public-domain imagery, MIT annotations). FIELDS=<folder with images/ and a VIA json>.
FIELDS ?=

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

release-fields: install
	@test -n "$(FIELDS)" || { echo "usage: make release-fields FIELDS=<folder with images/ and via_annotations.json>"; exit 2; }
	$(BIN)/agriland train-fields --polygons $(FIELDS)/via_annotations.json --images $(FIELDS)/images --run runs/fields-release --profile quick
	$(BIN)/agriland export fields --run runs/fields-release --models agriland/release

clean:
	rm -rf runs models data out
