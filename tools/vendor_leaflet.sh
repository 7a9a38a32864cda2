#!/usr/bin/env bash
# Vendor the map page's Leaflet from the npm registry: a pinned version, the tarball's sha256 checked, the dist files
# and the licence copied into serving/static/vendor/leaflet/ with their SHA256SUMS (checked by the test suite).
set -euo pipefail
cd "$(dirname "$0")/.."
LEAFLET="${LEAFLET:-1.9.4}"
LEAFLET_SHA256="${LEAFLET_SHA256:-84c65a256e50657896f54c33bd857b6849ebe94c817803be818bf32a3dde0b77}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "leaflet@$LEAFLET" >/dev/null && echo "$LEAFLET_SHA256  leaflet-$LEAFLET.tgz" | sha256sum -c -)
tar -xzf "$work/leaflet-$LEAFLET.tgz" -C "$work"
dest=serving/static/vendor/leaflet
mkdir -p "$dest/images"
cp "$work/package/dist/leaflet.js" "$work/package/dist/leaflet.css" "$work/package/LICENSE" "$dest/"
cp "$work"/package/dist/images/*.png "$dest/images/"
(cd "$dest" && sha256sum leaflet.js leaflet.css images/*.png LICENSE > SHA256SUMS)
echo "vendored leaflet $LEAFLET into $dest"
