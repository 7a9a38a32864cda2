"""Concurrency on a real server: 32 parallel clients all answered, batches > 1 in /metrics; health routes."""

from __future__ import annotations

import asyncio
import io
import re

import httpx
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def _png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _histogram(metrics: str, model: str) -> dict[str, float]:
    """`le` -> cumulative count of agriland_batch_size for one model."""
    pattern = re.compile(r"^agriland_batch_size_bucket\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.M)
    buckets = {}
    for match in pattern.finditer(metrics):
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if labels.get("model") == model:
            buckets[labels["le"]] = float(match["value"])
    return buckets


async def _burst(url: str, path: str, n: int, rounds: int) -> list[int]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as http:

        async def one(i: int) -> int:
            statuses = []
            for r in range(rounds):
                response = await http.post(path, files={"file": (f"{i}-{r}.png", _png(i * 100 + r))})
                statuses.append(response.status_code)
            return statuses

        per_client = await asyncio.gather(*(one(i) for i in range(n)))
    return [status for statuses in per_client for status in statuses]


@pytest.mark.parametrize(("path", "model"), [("/segment", "unet"), ("/cluster", "dec")])
def test_32_parallel_clients_are_batched_and_all_answered(server, path: str, model: str) -> None:
    before = _histogram(httpx.get(server.url + "/metrics").text, model)
    statuses = asyncio.run(_burst(server.url, path, n=32, rounds=3))
    assert statuses == [200] * 96
    after = _histogram(httpx.get(server.url + "/metrics").text, model)
    batches = after["+Inf"] - before.get("+Inf", 0.0)
    single = after["1.0"] - before.get("1.0", 0.0)
    assert batches > 0
    assert batches - single > 0, f"no batch larger than 1 tile among {batches:.0f} runs"
    print(f"{path}: {batches:.0f} model runs for 96 requests, {batches - single:.0f} with more than one tile")
    assert batches < 96  # merging happened: fewer model runs than requests


def test_health_and_metrics_routes(server) -> None:
    assert httpx.get(server.url + "/livez").status_code == 200
    assert httpx.get(server.url + "/readyz").status_code == 200
    metrics = httpx.get(server.url + "/metrics")
    assert metrics.status_code == 200
    assert "agriland_batch_size_bucket" in metrics.text
    assert "agriland_queue_wait_seconds_bucket" in metrics.text


def test_models_route_and_metrics_name_the_served_versions(server, exported_models) -> None:
    from contract.manifest import read_manifest

    report = httpx.get(server.url + "/models", follow_redirects=True, timeout=30)
    assert report.status_code == 200, report.text
    served = {m["name"]: m for m in report.json()["models"]}
    metrics = httpx.get(server.url + "/metrics", timeout=30).text
    for name in ("dec", "unet"):
        manifest = read_manifest(exported_models / name / served[name]["variant"])
        assert served[name]["version"] == manifest.version and served[name]["onnx_sha256"] == manifest.onnx_sha256
        line = f'agriland_model_info{{model="{name}",variant="{manifest.variant}",version="{manifest.version}"}} 1.0'
        assert line in metrics, f"{line} not in /metrics"
    assert report.json()["not_loaded"] == {}
