"""Micro-batcher (serving.service) vs BentoML `batchable=True` (bench/batchable_service.py), side by side.

Lone-client latency, 32-client throughput and 64-client shedding against each, on the same U-Net, and the
model alone as the reference. Writes bench/results/batching_compare.json and prints a Markdown table.
Usage: python -m bench.batching_compare --models models [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import os
import platform
import signal
import socket
import statistics
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from contract.artifacts import artifact_folder
from inference.models.cpus import available_cpus, intra_op_threads
from inference.models.onnx_model import OnnxModel

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
SERVICES = {"micro-batcher": "serving.service:Agriland", "bentoml batchable": "bench.batchable_service:BatchableUnet"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _png(tile: int, seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (tile, tile, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _start(target: str, models: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/bentoml"), "serve", target, "--port", str(port), "--host", "127.0.0.1"],
        cwd=ROOT, env={**os.environ, "AGRILAND_MODELS_DIR": str(models), "BENTOML_DO_NOT_TRACK": "true", **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGTERM)
    raise RuntimeError(f"{target} did not become ready")


async def _load(url: str, users: int, seconds: float, body: bytes) -> dict[str, float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop = time.monotonic() + seconds

    async def user(http: httpx.AsyncClient) -> None:
        while time.monotonic() < stop:
            started = time.monotonic()
            response = await http.post("/segment", files={"file": ("tile.png", body)})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            if response.status_code == 200:
                latencies.append(time.monotonic() - started)

    began = time.monotonic()
    limits = httpx.Limits(max_connections=users)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as http:
        await asyncio.gather(*(user(http) for _ in range(users)))
    elapsed = time.monotonic() - began
    total = sum(statuses.values())
    return {
        "users": users,
        "ok_per_s": len(latencies) / elapsed,
        "median_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p95_ms": 1000 * float(np.percentile(latencies, 95)) if latencies else float("nan"),
        "shed_fraction": 1 - len(latencies) / total if total else 0.0,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def model_only(models: Path, seconds: float) -> dict[str, float]:
    """Model latency at batch 1 and throughput at batch 16, no HTTP: the reference both services are held to."""
    model = OnnxModel.load(artifact_folder(models, "unet", "fp32"), "cpu", intra_op_threads(1))
    out: dict[str, float] = {}
    for batch in (1, 16):
        tiles = np.random.default_rng(0).integers(0, 256, (batch, model.tile_size, model.tile_size, 3), dtype=np.uint8)
        model.run(tiles)
        times, stop = [], time.monotonic() + seconds / 2
        while time.monotonic() < stop or len(times) < 3:
            started = time.monotonic()
            model.run(tiles)
            times.append(time.monotonic() - started)
        out[f"batch{batch}_ms"] = 1000 * statistics.median(times)
    out["tiles_per_s"] = 16 / (out["batch16_ms"] / 1000)
    out["tile_size"] = model.tile_size
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "batching_compare.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    reference = model_only(args.models, args.seconds)
    body = _png(int(reference["tile_size"]), 0)
    results: dict[str, object] = {"model_only": reference, "machine": {
        "platform": platform.platform(), "processor": platform.processor(), "cpus": available_cpus()}}
    for name, target in SERVICES.items():
        process, url = _start(target, args.models, {})
        try:
            phases = {}
            for users in (1, 32, 64):
                phases[str(users)] = asyncio.run(_load(url, users, args.seconds, body))
                log.info("%s %d users: %s", name, users, phases[str(users)])
            results[name] = phases
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(table(results))
    return 0


def table(results: dict) -> str:
    ref = results["model_only"]
    lines = [
        "| service | lone client median ms (x model batch-1) | 32 clients ok/s (% of model batch-16) | 64 clients shed | 64 clients statuses |",
        "|---|---|---|---|---|",
    ]
    for name in SERVICES:
        phases = results[name]
        lone, busy, flood = phases["1"], phases["32"], phases["64"]
        lines.append(
            f"| {name} | {lone['median_ms']:.1f} ({lone['median_ms'] / ref['batch1_ms']:.2f}x) | "
            f"{busy['ok_per_s']:.1f} ({100 * busy['ok_per_s'] / ref['tiles_per_s']:.0f} %) | "
            f"{100 * flood['shed_fraction']:.0f} % | {flood['statuses']} |"
        )
    lines.append(f"\nModel alone: batch 1 {ref['batch1_ms']:.1f} ms, batch 16 {ref['tiles_per_s']:.1f} tiles/s "
                 f"({int(ref['tile_size'])} px tiles).")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
