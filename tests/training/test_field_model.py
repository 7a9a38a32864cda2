"""The field model end to end through the CLIs: trained on drawn field polygons, exported to ONNX with a manifest
that names its classes and resolutions, and answering `agriland segment` with one polygon per field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from contract.artifacts import verify_artifact
from testkit.field_data import agriland, build_field_model, draw_fields

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def field_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("field-model")
    return build_field_model(work, work / "models")


def test_export_writes_a_fields_manifest_checked_against_keras(field_model: Path) -> None:
    manifest = verify_artifact(field_model)
    assert manifest.task == "fields" and manifest.name == "fields"
    assert manifest.field_model is not None
    assert manifest.field_model.classes == ["background", "interior", "boundary"]
    assert manifest.field_model.work_gsd_m <= manifest.field_model.max_gsd_m
    (output,) = manifest.outputs
    assert output.name == "fields" and output.shape == [None, manifest.tile_size, manifest.tile_size, 3]
    assert manifest.parity.passed and manifest.parity.max_abs_diff < 1e-3
    assert "held-out validation chips" in (manifest.parity.gate or "")


def test_segment_cli_answers_fields_with_the_field_model(field_model: Path, tmp_path: Path) -> None:
    image, polygons = draw_fields(np.random.default_rng(11), 160)
    scene = tmp_path / "scene.tif"
    with rasterio.open(
        scene,
        "w",
        driver="GTiff",
        width=160,
        height=160,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(500_000.0, 4_500_000.0, 2.5, 2.5),
    ) as dst:
        dst.write(np.moveaxis(image, -1, 0))
    models = field_model.parents[1]
    out = tmp_path / "out"
    result = agriland("segment", str(scene), "--out", str(out), "--models", str(models), "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == str(field_model) and summary["mask_mode"] == "fields"
    assert summary["model_gsd_m"] == pytest.approx(2.5)
    with rasterio.open(out / "mask.tif") as ds:
        assert ds.read(1).shape == (160, 160) and ds.crs.to_epsg() == 32633
    geojson = json.loads((out / "arable.geojson").read_text())
    assert len(geojson["features"]) == summary["n_polygons"]


def test_train_fields_refuses_bad_input_clearly(tmp_path: Path) -> None:
    missing = agriland(
        "train-fields", "--polygons", str(tmp_path / "none.json"), "--images", str(tmp_path), cwd=tmp_path
    )
    assert missing.returncode == 2 and "field polygons not found" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    broken = agriland("train-fields", "--polygons", str(bad), "--images", str(tmp_path), cwd=tmp_path)
    assert broken.returncode == 2 and "not valid JSON" in broken.stderr
    assert not (tmp_path / "runs").exists()  # nothing half-written
