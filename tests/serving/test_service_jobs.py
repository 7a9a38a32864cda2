"""A cancelled scene task on a real server: its temp folder and slot are released only after its work stopped."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

pytestmark = pytest.mark.slow

SLOW_RUNS = """
import os, time
import onnxruntime

_run = onnxruntime.InferenceSession.run


def _slow_run(self, *args, **kwargs):
    flag = os.environ.get("AGRILAND_TEST_SLEEP_FLAG")
    if flag and os.path.exists(flag):
        time.sleep(float(open(flag).read() or "0"))
    return _run(self, *args, **kwargs)


onnxruntime.InferenceSession.run = _slow_run
"""


def _scene(path: Path, size: int = 400) -> Path:
    data = np.random.default_rng(2).integers(1, 256, (3, size, size), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            height=size,
            width=size,
            count=3,
            dtype="uint8",
            crs="EPSG:32633",
            transform=from_origin(500_000.0, 5_000_000.0, 10.0, 10.0),
        ) as dst:
            dst.write(data)
    return path


def _wait(predicate, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_cancelled_scene_task_releases_folder_and_slot_after_its_work_stopped(
    exported_models: Path, server_factory, poll_ready, tmp_path: Path
) -> None:
    shim, temp, flag = tmp_path / "shim", tmp_path / "tmp", tmp_path / "sleep-seconds"
    shim.mkdir()
    temp.mkdir()
    (shim / "sitecustomize.py").write_text(SLOW_RUNS)
    running = server_factory(
        exported_models,
        env={
            "TMPDIR": str(temp),
            "AGRILAND_TEST_SLEEP_FLAG": str(flag),
            "AGRILAND_MAX_BATCH_SIZE": "2",
            "AGRILAND_MAX_SCENES": "1",
        },
        pythonpath=str(shim),
    )
    assert poll_ready(running.url) == 200, running.log()[-3000:]
    scene = _scene(tmp_path / "scene.tif")
    flag.write_text("0.5")  # every model run takes half a second: the scene (dozens of batches) takes a while
    with httpx.Client(base_url=running.url, timeout=120) as http:
        submitted = http.post("/segment_scene_job/submit", files={"file": ("scene.tif", scene.read_bytes())})
        assert submitted.status_code == 200, submitted.text
        task_id = submitted.json()["task_id"]
        scene_folders = lambda: list(temp.glob("agriland-scene-*"))  # noqa: E731
        assert _wait(lambda: bool(scene_folders())), "the job never spooled its scene"
        cancelled = http.post("/scene_jobs/cancel", json={"task_id": task_id})
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
        # the answer came only after the work stopped: its folder is already gone
        assert scene_folders() == []
        status = http.get("/segment_scene_job/status", params={"task_id": task_id}).json()["status"]
        assert status == "failed"
        result = http.get("/segment_scene_job/get", params={"task_id": task_id})
        assert result.status_code == 499 and "cancelled" in result.json()["error"]
        again = http.post("/scene_jobs/cancel", json={"task_id": task_id}).json()
        assert again["status"] == "not running"
        flag.unlink()
        # the slot is free: a synchronous scene runs at once
        answer = http.post("/segment_scene", files={"file": ("scene.tif", scene.read_bytes())})
        assert answer.status_code == 200, answer.text
