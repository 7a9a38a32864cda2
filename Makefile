# agriland: `make run` builds the quickstart models (first time) and serves them; `make test` runs the tests.
PYTHON ?= python3.11
VENV ?= .venv
PORT ?= 3000
PROFILE ?= quick
BIN := $(VENV)/bin

.PHONY: install run test test-fast bench build clean release-fields vendor-leaflet

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

# the map page's Leaflet, from the npm registry (pinned; the tarball's sha256 is checked), vendored with its licence
LEAFLET ?= 1.9.4
LEAFLET_SHA256 ?= 84c65a256e50657896f54c33bd857b6849ebe94c817803be818bf32a3dde0b77
vendor-leaflet:
	rm -rf build/leaflet && mkdir -p build/leaflet
	cd build/leaflet && npm pack --silent leaflet@$(LEAFLET) && echo "$(LEAFLET_SHA256)  leaflet-$(LEAFLET).tgz" | sha256sum -c -
	tar -xzf build/leaflet/leaflet-$(LEAFLET).tgz -C build/leaflet
	cp build/leaflet/package/dist/leaflet.js build/leaflet/package/dist/leaflet.css build/leaflet/package/LICENSE serving/static/vendor/leaflet/
	cp build/leaflet/package/dist/images/*.png serving/static/vendor/leaflet/images/
	cd serving/static/vendor/leaflet && sha256sum leaflet.js leaflet.css images/*.png LICENSE > SHA256SUMS

clean:
	rm -rf runs models data out
