"""Run every benchmark (models, service, scene, memory) one after another, then write docs/benchmarks.md + PNG.

`make bench` runs `.venv/bin/python -m bench.run_all`; `--quick` shortens every point (smoke run); the 64 px
quickstart models are built and exported once (~2 minutes on 2 cores); `--runs DIR` benchmarks trained quickstart
runs (DIR/dec-quick, DIR/unet-quick) instead; `--only model_speed,service_load` runs a subset and re-renders.
Each benchmark runs in its own process so one's memory and threads never colour the next.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import PYTHON, ROOT, load_average, setup_logging

log = logging.getLogger(__name__)

BENCHMARKS = ("models", "model_speed", "service_load", "memory_coldstart")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short points (smoke run)")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help="comma-separated subset of " + ", ".join(BENCHMARKS)
    )
    parser.add_argument("--no-report", action="store_true", help="do not re-render docs/benchmarks.md")
    parser.add_argument(
        "--runs",
        type=Path,
        default=None,
        help="trained quickstart runs (dec-quick/, unet-quick/) to benchmark instead of building "
        "the same architectures (sets AGRILAND_BENCH_RUNS for every step)",
    )
    args = parser.parse_args(argv)
    setup_logging()
    chosen = [b for b in args.only.split(",") if b]
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(BENCHMARKS)}")
    python = str(PYTHON if PYTHON.exists() else Path(sys.executable))
    for name in BENCHMARKS:  # fixed order: models first (exports), then the measurements
        if name not in chosen:
            continue
        command = [python, "-m", f"bench.{name}"] + (["--quick"] if args.quick and name != "models" else [])
        log.info("== %s (load average %.2f): %s", name, load_average()[0], " ".join(command))
        started = time.monotonic()
        env = {**os.environ, **({"AGRILAND_BENCH_RUNS": str(args.runs.resolve())} if args.runs else {})}
        done = subprocess.run(command, cwd=ROOT, check=False, env=env)
        log.info("== %s finished in %.0f s with exit code %d", name, time.monotonic() - started, done.returncode)
        if done.returncode != 0:
            return done.returncode
    if not args.no_report:
        subprocess.run([python, "-m", "bench.report"], cwd=ROOT, check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
