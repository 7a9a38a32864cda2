"""Held-out scores of exported models (what the release model cards report), run for real with ONNX Runtime."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from contract.errors import AgrilandError
from contract.manifest import read_manifest
from evaluation.release_eval import load_class_tiles, score_models
from inference.models.onnx_model import OnnxModel

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "eurosat-rgb"


def _tiles(tmp_path: Path, classes: tuple[str, ...], per_class: int = 6) -> Path:
    for name in classes:
        (tmp_path / name).mkdir(parents=True)
        for path in sorted((SAMPLE / name).iterdir())[:per_class]:
            shutil.copy(path, tmp_path / name / path.name)
    return tmp_path


def test_scores_of_the_tiny_models_agree_with_their_own_answers(exported_models: Path, tmp_path: Path) -> None:
    folder = _tiles(tmp_path / "tiles", ("AnnualCrop", "PermanentCrop", "Forest", "Pasture", "SeaLake"))
    scores = score_models(exported_models, folder)
    tiles, classes = load_class_tiles(folder)
    assert tiles.shape == (30, 64, 64, 3) and scores["dec"]["tiles"] == scores["unet"]["tiles"] == 30

    dec = OnnxModel.load(exported_models / "dec" / "fp32", providers="cpu")
    clusters = dec.session.run(["q"], {"image": tiles})[0].argmax(1)
    manifest = read_manifest(exported_models / "dec" / "fp32")
    cropland = np.array([manifest.is_cropland_cluster(int(c)) for c in clusters])
    is_crop = np.isin(classes, ("AnnualCrop", "PermanentCrop"))
    assert scores["dec"]["cropland_recall"] == pytest.approx(cropland[is_crop].mean())
    assert scores["dec"]["false_cropland"] == pytest.approx(cropland[np.isin(classes, ("Forest", "SeaLake"))].mean())
    assert 0 <= scores["dec"]["nmi"] <= 1

    unet = scores["unet"]
    assert set(unet["arable_fraction"]) == {"AnnualCrop", "PermanentCrop", "Forest", "Pasture", "SeaLake"}
    assert 0 <= unet["auc"] <= 1 and all(0 <= v <= 1 for v in unet["arable_fraction"].values())


def test_scores_need_both_cropland_and_other_tiles(exported_models: Path, tmp_path: Path) -> None:
    with pytest.raises(AgrilandError, match="needs cropland"):
        score_models(exported_models, _tiles(tmp_path / "crop", ("AnnualCrop", "Pasture"), per_class=2))
    with pytest.raises(AgrilandError, match="not found"):
        load_class_tiles(tmp_path / "missing")
