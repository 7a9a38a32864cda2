"""`agriland quickstart` (what `make run` calls): reuses built models and serves them within seconds."""

from __future__ import annotations

import io
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

from agriland.quickstart import _models_ready

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


def test_second_run_reuses_models_and_serves(exported_models: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"  # a copy: the quickstart adds the release field model to the folder it serves
    shutil.copytree(exported_models, models)
    port = _free_port()
    log = tmp_path / "quickstart.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "agriland.cli", "quickstart", "--models", str(models),
             "--work-dir", str(tmp_path), "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        status = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code
            except httpx.HTTPError:
                status = None
            if status == 200:
                break
            time.sleep(0.5)
        text = log.read_text(errors="replace")
        assert status == 200, f"not ready; log:\n{text[-3000:]}"
        assert "reusing the models" in text
        assert "release model fields/fp32" in text and (models / "fields" / "fp32" / "model.onnx").is_file()
        assert httpx.post(f"http://127.0.0.1:{port}/segment", files={"file": ("t.png", _tile())},
                          timeout=60).json()["model"] == "unet+fields"
        assert not (tmp_path / "runs").exists(), "a second run must not train again"
        assert f"http://localhost:{port}/segment" in text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
