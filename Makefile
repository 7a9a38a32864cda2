# agriland: `make run` serves the release models that ship with the package; `make test` runs the tests.
PYTHON ?= python3.11
VENV ?= .venv
PORT ?= 3000
PROFILE ?= quick
BIN := $(VENV)/bin

.PHONY: install run test test-fast bench build clean release-models

# The shipped release models (agriland/release): trained only on development data whose licence allows shipping a
# model (EuroSAT: MIT; the NAIP field polygons: US public domain imagery, MIT annotations). DATA=<folder holding
# eurosat-rgb/ and fields-naip-dev/>; MODELS=dec,unet (add fields to retrain the field model too).
DATA ?=
MODELS ?= dec,unet

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
	$(BIN)/python -m bench.run_all

build: install
	$(BIN)/bentoml build

release-models: install
	@test -n "$(DATA)" || { echo "usage: make release-models DATA=<folder with eurosat-rgb/ and fields-naip-dev/> [MODELS=dec,unet,fields] [REPLACE=1]"; exit 2; }
	$(BIN)/agriland release build --data $(DATA) --models $(MODELS) $(if $(REPLACE),--replace)

clean:
	rm -rf runs models data out
