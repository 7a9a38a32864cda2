#!/usr/bin/env bash
# The benchmarks' own tools: wrk (a C HTTP load generator, from the Debian archive) and py-spy (the dev extra).
set -euo pipefail
if ! command -v wrk >/dev/null 2>&1; then
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq wrk
fi
wrk --version 2>&1 | head -1 || true
VENV="${VENV:-$(dirname "$0")/../.venv}"
if [ ! -x "$VENV/bin/py-spy" ]; then
  "$VENV/bin/pip" install -q "py-spy==0.4.3"
fi
