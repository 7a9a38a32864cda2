"""Limits on a real server with tiny settings: upload bytes (413) and overload (429/503 with Retry-After)."""

from __future__ import annotations

import asyncio
import io
import time

import httpx
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def _png(seed: int = 0, size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def strict_url(exported_models, server_factory) -> str:
    running = server_factory(
        exported_models,
        env={
            "AGRILAND_MAX_UPLOAD_BYTES": "300000",
            "AGRILAND_MAX_CONCURRENCY": "3",
            "AGRILAND_MAX_QUEUE_TILES": "16",
            "AGRILAND_MAX_TILES": "16",
        },
    )
    deadline = time.monotonic() + 60
    while httpx.get(running.url + "/readyz").status_code != 200:
        assert time.monotonic() < deadline, running.log()[-3000:]
        time.sleep(0.5)
    return running.url


def test_upload_over_the_byte_limit_is_413(strict_url: str) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)  # ~480 kB as PNG
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    response = httpx.post(strict_url + "/segment", files={"file": ("big.png", buffer.getvalue())}, timeout=30)
    assert response.status_code == 413
    assert "limit" in response.json()["error"]
    assert httpx.post(strict_url + "/segment", files={"file": ("a.png", _png())}, timeout=30).status_code == 200


def test_overload_is_429_or_503_with_retry_after_never_500(strict_url: str) -> None:
    files = [("file", (f"{i}.png", _png(i))) for i in range(16)]

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=24)
        async with httpx.AsyncClient(base_url=strict_url, timeout=120, limits=limits) as http:
            return await asyncio.gather(*(http.post("/segment", files=files) for _ in range(24)))

    responses = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 429, 503}, statuses
    assert 200 in statuses and 429 in statuses, statuses
    for response in responses:
        if response.status_code != 200:
            assert int(response.headers["retry-after"]) >= 1
            assert "retry" in response.json()["error"].lower()
    # after the burst the server answers normally
    assert httpx.post(strict_url + "/cluster", files={"file": ("a.png", _png())}, timeout=30).status_code == 200
