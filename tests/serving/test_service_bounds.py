"""Bounds under abuse on real servers: decompression bombs, disconnects mid-upload, a stuck model session."""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import psutil
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

BOMBS = 64
RSS_BUDGET = 300 * 1024 * 1024


def _png(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


def _tile() -> bytes:
    return _png(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))


def _tree_rss(pid: int) -> int:
    """RSS of the server process and every process it started (the BentoML workers)."""
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


class PeakRss:
    """Samples the server tree's RSS in a thread until stopped; `peak` is the largest sample."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = _tree_rss(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _tree_rss(self.pid))
            time.sleep(0.01)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_many_concurrent_decompression_bombs_are_refused_from_the_header(server, fmt: str) -> None:
    """4096x4096 RGBA images of a few tens of KB: 413 each, without decoding them (worker RSS stays flat)."""
    bomb = _png(np.zeros((4096, 4096, 4), dtype=np.uint8), fmt)
    assert len(bomb) < 1_000_000  # tiny upload, 64 MB once decoded
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.post("/segment", files={"file": ("warm.png", _tile())}).status_code == 200
    before = _tree_rss(server.process.pid)

    async def flood() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=BOMBS)
        async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as http:
            return await asyncio.gather(
                *(http.post("/segment" if i % 2 else "/cluster", files={"file": ("bomb", bomb)}) for i in range(BOMBS))
            )

    with PeakRss(server.process.pid) as rss:
        responses = asyncio.run(flood())
    statuses = {r.status_code for r in responses}
    assert statuses <= {413, 429}, statuses
    assert 413 in statuses
    assert "4096x4096" in next(r for r in responses if r.status_code == 413).json()["error"]
    assert rss.peak - before <= RSS_BUDGET, f"RSS grew {(rss.peak - before) / 2**20:.0f} MB"
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.post("/segment", files={"file": ("after.png", _tile())}).status_code == 200


def test_disconnect_mid_upload_is_a_499_log_line_not_a_500(exported_models: Path, server_factory, poll_ready) -> None:
    server = server_factory(exported_models, env={"AGRILAND_ACCESS_LOG": "1"})  # the access log is off by default
    assert poll_ready(server.url) == 200, server.log()[-3000:]
    address = urlparse(server.url)
    body = b"x" * 10_000
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(
            b"POST /segment HTTP/1.1\r\nHost: test\r\nContent-Type: image/png\r\nContent-Length: 5000000\r\n\r\n" + body
        )
        time.sleep(0.5)  # let the server start reading the body before the client goes away
    deadline = time.monotonic() + 30
    while "length=5000000) (status=499" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    log = server.log()
    assert "length=5000000) (status=499" in log, log[-3000:]  # the access log line of the cut upload
    assert "length=5000000) (status=500" not in log
    assert "ClientDisconnect" not in log and "unexpected error on segment" not in log
    with httpx.Client(base_url=server.url, timeout=60) as http:
        assert http.post("/segment", files={"file": ("after.png", _tile())}).status_code == 200


SLEEPY_SITECUSTOMIZE = """
import os, time
import onnxruntime

_run = onnxruntime.InferenceSession.run


def _sleepy_run(self, *args, **kwargs):
    flag = os.environ.get("AGRILAND_TEST_SLEEP_FLAG")
    if flag and os.path.exists(flag):
        time.sleep(float(open(flag).read() or "0"))
    return _run(self, *args, **kwargs)


onnxruntime.InferenceSession.run = _sleepy_run
"""


def test_stuck_session_turns_not_ready_and_recovers(
    exported_models: Path, server_factory, poll_ready, tmp_path
) -> None:
    """A model run that sleeps past the run deadline: 503 for its request, /readyz 503 until it returns."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SLEEPY_SITECUSTOMIZE)
    flag = tmp_path / "sleep-seconds"
    running = server_factory(
        exported_models,
        env={
            "AGRILAND_RUN_TIMEOUT_MS": "1000",
            "AGRILAND_HUNG_AFTER_MS": "1000",
            "AGRILAND_TEST_SLEEP_FLAG": str(flag),
        },
        pythonpath=str(shim),
    )
    assert poll_ready(running.url) == 200, running.log()[-3000:]
    flag.write_text("15")
    with httpx.Client(base_url=running.url, timeout=60) as http:
        stuck = http.post("/segment", files={"file": ("a.png", _tile())})
        assert stuck.status_code == 503, stuck.text
        assert "deadline" in stuck.json()["error"] and int(stuck.headers["retry-after"]) >= 1
        assert http.get("/readyz").status_code == 503
        refused = http.post("/segment", files={"file": ("b.png", _tile())})
        assert refused.status_code == 503 and "has not returned" in refused.json()["error"]
        live = 200
        for _ in range(100):  # hung for AGRILAND_HUNG_AFTER_MS past the deadline: a liveness probe restarts it
            live = http.get("/livez").status_code
            if live != 200:
                break
            time.sleep(0.1)
        assert live == 503, "a hung model session must fail /livez"
        flag.unlink()
        assert poll_ready(running.url, timeout=60) == 200
        assert http.get("/livez").status_code == 200
        assert http.post("/segment", files={"file": ("c.png", _tile())}).status_code == 200
    assert "passed its 1 s deadline" in running.log() and "not alive (restart this worker)" in running.log()
