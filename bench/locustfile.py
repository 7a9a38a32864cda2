"""Locust user for the service benchmark: closed loop, each user POSTs one 256 px PNG tile, no think time.

Environment: BENCH_ENDPOINT (/segment or /cluster), BENCH_TILES_DIR (folder of PNG tiles). Run headless
against loopback only, e.g. `locust -f bench/locustfile.py --headless -u 32 -r 32 -t 20s --host http://127.0.0.1:3000`.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from locust import FastHttpUser, constant, task

ENDPOINT = os.environ.get("BENCH_ENDPOINT", "/segment")
TILES = [
    p.read_bytes()
    for p in sorted(Path(os.environ.get("BENCH_TILES_DIR", "out/bench/calibration_tiles")).glob("*.png"))[:16]
]
if not TILES:
    raise SystemExit("BENCH_TILES_DIR holds no PNG tiles")
HEADERS = {"Content-Type": "image/png"}


class TileClient(FastHttpUser):
    """One client posting tiles back to back (the next request leaves when the answer arrives)."""

    wait_time = constant(0)
    network_timeout = 120.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        self._tiles = itertools.cycle(TILES)

    @task
    def post_tile(self) -> None:
        with self.client.post(
            ENDPOINT, data=next(self._tiles), headers=HEADERS, name=ENDPOINT, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:120]}")
