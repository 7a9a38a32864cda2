"""Startup: broken models leave the server up but not ready; no TensorFlow in the server; `bentoml build`."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ("tensorflow", "tf_keras", "keras", "tf2onnx", "segmentation_models")
SITECUSTOMIZE = f'''
"""Test shim: any import of a training-stack module fails, as in a serving-only environment."""
import sys

BLOCKED = {BLOCKED!r}


class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED or name.startswith(("training", "export")):
            with open({{log!r}}, "a") as handle:
                handle.write(name + "\\n")
            raise ImportError(f"{{name}} is blocked in the serving test environment")
        return None


sys.meta_path.insert(0, _Block())
'''


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def test_server_without_training_stack_becomes_ready(
    exported_models: Path, server_factory, poll_ready, tmp_path: Path
) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    attempts = tmp_path / "blocked-imports.txt"
    (shim / "sitecustomize.py").write_text(SITECUSTOMIZE.replace("{log!r}", repr(str(attempts))))
    probe = subprocess.run(
        [sys.executable, "-c", "import tensorflow"],
        env={**os.environ, "PYTHONPATH": str(shim)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode != 0 and "blocked" in probe.stderr  # the shim is active in child processes
    attempts.unlink()
    running = server_factory(exported_models, pythonpath=str(shim))
    assert poll_ready(running.url) == 200, running.log()[-3000:]
    for path in ("/segment", "/cluster"):
        assert httpx.post(running.url + path, files={"file": ("a.png", _png())}, timeout=30).status_code == 200
    blocked = attempts.read_text().split() if attempts.exists() else []
    assert not [name for name in blocked if name.split(".")[0] in BLOCKED], blocked


def test_broken_model_leaves_server_up_and_not_ready(
    exported_models: Path, server_factory, poll_ready, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(exported_models, models)
    with open(models / "unet" / "fp32" / "model.onnx", "ab") as handle:
        handle.write(b"corrupted")
    running = server_factory(models)
    time.sleep(2)
    assert poll_ready(running.url, timeout=5) == 503
    assert httpx.get(running.url + "/livez").status_code == 200
    response = httpx.post(running.url + "/segment", files={"file": ("a.png", _png())}, timeout=30)
    assert response.status_code == 503 and "sha256" in response.json()["error"]
    assert int(response.headers["retry-after"]) > 0
    # the model that did load still answers
    assert httpx.post(running.url + "/cluster", files={"file": ("a.png", _png())}, timeout=30).status_code == 200
    assert "does not match its manifest" in running.log()
    assert running.process.poll() is None


def test_missing_models_folder_is_not_ready(server_factory, poll_ready, tmp_path: Path) -> None:
    running = server_factory(tmp_path / "nowhere", env={"AGRILAND_UNET_VARIANT": "int8"})
    time.sleep(2)
    assert poll_ready(running.url, timeout=5) == 503
    response = httpx.post(running.url + "/cluster", files={"file": ("a.png", _png())}, timeout=30)
    assert response.status_code == 503 and "manifest" in response.json()["error"]
    assert "NOT loaded" in running.log()


def test_a_variant_preference_list_serves_the_first_exported(
    exported_models: Path, server_factory, poll_ready, tmp_path: Path
) -> None:
    """deploy/ asks for int8,fp32: where the export dropped int8 (its parity gate), fp32 serves, said in the log."""
    models = tmp_path / "models"
    for name in ("dec", "unet"):
        shutil.copytree(exported_models / name / "fp32", models / name / "fp32")
    running = server_factory(models, env={"AGRILAND_UNET_VARIANT": "int8,fp32", "AGRILAND_DEC_VARIANT": "int8,fp32"})
    assert poll_ready(running.url) == 200, running.log()[-3000:]
    assert httpx.post(running.url + "/segment", files={"file": ("a.png", _png())}, timeout=30).status_code == 200
    assert "variant int8 not exported" in running.log() and "serving fp32" in running.log()


def test_bentoml_build_succeeds(tmp_path: Path) -> None:
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "home"), "BENTOML_DO_NOT_TRACK": "true"}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "bentoml"), "build", "--output", "tag"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    bentos = list((tmp_path / "home" / "bentos" / "agriland").glob("*/bento.yaml"))
    assert bentos, result.stdout
    bento = bentos[0].parent
    assert (bento / "src" / "serving" / "service.py").is_file()
    assert not (bento / "src" / "training").exists()
