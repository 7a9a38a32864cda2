"""A missed fp16/int8 parity gate drops that variant (recorded in export_summary.json); fp32 still serves."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contract.errors import AgrilandError
from contract.manifest import read_manifest
from export.pipeline import SUMMARY_NAME, prepare, run_export
from inference.models.onnx_model import OnnxModel

pytestmark = pytest.mark.slow


def _keras_runs():
    spec = importlib.util.spec_from_file_location("export_keras_runs", Path(__file__).with_name("keras_runs.py"))
    if "export_keras_runs" not in sys.modules:
        module = importlib.util.module_from_spec(spec)
        sys.modules["export_keras_runs"] = module
        spec.loader.exec_module(module)
    return sys.modules["export_keras_runs"]


@pytest.fixture(scope="module")
def unet_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _keras_runs().make_run(tmp_path_factory.mktemp("gate"), "unet")


def _flat_tiles(folder: Path, value: int, n: int = 8, tile: int = 64) -> Path:
    """Calibration tiles that hold one grey level: int8 ranges calibrated on them fit no real tile."""
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((tile, tile, 3), value, np.uint8)).save(folder / f"flat_{i}.png")
    return folder


def test_calibration_tiles_come_from_the_folder(unet_run: Path, tmp_path: Path) -> None:
    folder = _flat_tiles(tmp_path / "calib", 77, n=5)
    inputs = prepare(unet_run, "unet", folder, n_parity_tiles=4, n_calibration_tiles=3)
    assert inputs.calibration_source == str(folder)
    assert inputs.calibration_tiles.shape == (3, 64, 64, 3) and np.all(inputs.calibration_tiles == 77)
    assert not np.any(np.all(inputs.parity_tiles == 77, axis=(1, 2, 3)))  # parity: the run's training tiles
    default = prepare(unet_run, "unet", None, n_parity_tiles=4, n_calibration_tiles=64)
    summary = json.loads((unet_run / "training_summary.json").read_text())
    assert default.calibration_source == default.tile_source == summary["data"]["source"]
    # drawn from one source the two sets are disjoint: 24 tiles -> 4 parity + the 20 others for calibration
    assert len(default.calibration_tiles) == 20
    parity_keys = {t.tobytes() for t in default.parity_tiles}
    assert not parity_keys & {t.tobytes() for t in default.calibration_tiles}


def test_missed_int8_gate_drops_the_variant(unet_run: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    stale = models / "unet" / "int8"
    stale.mkdir(parents=True)
    (stale / "model.onnx").write_bytes(b"from an older export")
    folder = _flat_tiles(tmp_path / "calib", 0)
    outcomes = run_export(
        unet_run, models, "unet", ["fp32", "int8"], calibration_source=folder, min_gate_tiles=8, n_parity_tiles=8
    )
    by_variant = {o.variant: o for o in outcomes}
    assert by_variant["fp32"].status == "exported"
    dropped = by_variant["int8"]
    assert dropped.status == "dropped" and dropped.folder is None
    assert "fails parity" in (dropped.reason or "") and dropped.parity is not None
    assert dropped.parity["passed"] is False and dropped.parity["mask_iou"] < 0.95
    assert not stale.exists()  # an int8 of another export must not be served next to this fp32
    summary = json.loads((models / "unet" / SUMMARY_NAME).read_text())
    assert summary["variants"]["fp32"]["status"] == "exported"
    assert summary["variants"]["int8"]["status"] == "dropped"
    assert "mask IoU" in summary["variants"]["int8"]["reason"]
    assert summary["calibration_source"] == str(folder)
    # fp32 still loads and runs as the service would
    model = OnnxModel.load(models / "unet" / "fp32", providers="cpu")
    assert read_manifest(models / "unet" / "fp32").parity.passed
    assert model.run(np.zeros((1, 64, 64, 3), np.uint8))["mask"].shape == (1, 64, 64, 1)
    # --strict (and export_model, which names one variant) still fails on the same gate
    with pytest.raises(AgrilandError, match="fails parity"):
        run_export(
            unet_run,
            models,
            "unet",
            ["int8"],
            calibration_source=folder,
            n_parity_tiles=8,
            strict=True,
            min_gate_tiles=8,
        )


def test_cli_reports_a_dropped_variant(unet_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from export.cli import main

    folder = _flat_tiles(tmp_path / "calib", 0)
    argv = [
        "unet",
        "--run",
        str(unet_run),
        "--models",
        str(tmp_path / "models"),
        "--variant",
        "int8",
        "--calibration-data",
        str(folder),
        "--parity-tiles",
        "8",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "unet/int8: DROPPED" in out and "fails parity" in out
    assert (tmp_path / "models" / "unet" / "fp32" / "model.onnx").is_file()
    assert not (tmp_path / "models" / "unet" / "int8").exists()
