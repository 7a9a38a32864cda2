"""`agriland quickstart` (what `make run` calls): reuses built models and serves them within seconds."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from agriland.quickstart import RELEASE_DIR, _models_ready
from contract.artifacts import verify_artifact

pytestmark = pytest.mark.slow


def _tile() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 140, 60)).save(buffer, format="PNG")
    return buffer.getvalue()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_models_ready_requires_both_verified_artifacts(exported_models: Path, tmp_path: Path) -> None:
    assert _models_ready(exported_models)
    assert not _models_ready(tmp_path)


def _serve(args: list[str], tmp_path: Path) -> tuple[subprocess.Popen, int, Path]:
    port = _free_port()
    log = tmp_path / f"quickstart-{port}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "agriland.cli",
                "quickstart",
                *args,
                "--work-dir",
                str(tmp_path),
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tmp_path,
        )
    deadline = time.monotonic() + 120
    status = None
    while time.monotonic() < deadline and process.poll() is None:
        try:
            status = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code
        except httpx.HTTPError:
            status = None
        if status == 200:
            break
        time.sleep(0.5)
    if status != 200:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        pytest.fail(f"not ready; log:\n{log.read_text(errors='replace')[-3000:]}")
    return process, port, log


def test_fresh_machine_serves_the_release_without_training(tmp_path: Path) -> None:
    """What `make run` does on a fresh clone: no models folder, no data -> the shipped release serves at once."""
    release = {name: verify_artifact(RELEASE_DIR / name / "fp32").version for name in ("dec", "unet", "fields")}
    process, port, log = _serve([], tmp_path)  # the default models folder, models/ under the working directory
    try:
        text = log.read_text(errors="replace")
        for name, version in release.items():
            assert verify_artifact(tmp_path / "models" / name / "fp32").version == version
            assert f"{name} {version} (release)" in text
        tile = {"file": ("t.png", _tile())}
        cluster = httpx.post(f"http://127.0.0.1:{port}/cluster", files=tile, timeout=60).json()
        assert cluster["n_clusters"] == verify_artifact(tmp_path / "models" / "dec" / "fp32").n_clusters
        assert "cropland" in cluster["results"][0]
        assert httpx.post(f"http://127.0.0.1:{port}/segment", files=tile, timeout=60).json()["model"] == "unet+fields"
        assert not (tmp_path / "runs").exists() and not (tmp_path / "data").exists(), "the release needs no training"
        assert f"http://localhost:{port}/segment" in text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_a_users_own_models_are_served_as_they_are(exported_models: Path, tiny_runs: Path, tmp_path: Path) -> None:
    models = tmp_path / "own"  # AGRILAND_MODELS selects them; the release only fills in the missing field model
    shutil.copytree(exported_models, models)
    manifest = models / "dec" / "fp32" / "manifest.json"  # its training run: the cached copy of the tiny DEC run
    payload = json.loads(manifest.read_text())
    payload["training_data"]["run"] = str(tiny_runs / "dec")
    manifest.write_text(json.dumps(payload))
    own = verify_artifact(models / "dec" / "fp32").version
    os.environ["AGRILAND_MODELS"] = str(models)
    try:
        process, port, log = _serve([], tmp_path)
    finally:
        del os.environ["AGRILAND_MODELS"]
    try:
        text = log.read_text(errors="replace")
        assert f"dec {own} (your own" in text and verify_artifact(models / "dec" / "fp32").version == own
        assert (models / "fields" / "fp32" / "model.onnx").is_file()
        assert not (tmp_path / "runs").exists()
        # the DEC's training run is on this machine: the map's gallery shows its sample tiles
        gallery = httpx.get(f"http://127.0.0.1:{port}/map/api/gallery", timeout=30).json()
        assert gallery["model_version"] == own and gallery["samples"] is True
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
