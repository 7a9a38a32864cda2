"""Arable-mask mosaics of labeled tiles: masks follow the cropland classes, and no test tile reaches training."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contract.errors import AgrilandError
from training.mosaics import ARABLE_CLASSES, MosaicConfig, build_mosaics

CLASSES = ("AnnualCrop", "Forest", "PermanentCrop", "SeaLake")


def _labeled_folder(root: Path, per_class: int = 12) -> dict[tuple[int, int, int], str]:
    """One flat-coloured PNG per tile (a unique colour each): colour -> tile path."""
    colours: dict[tuple[int, int, int], str] = {}
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            colour = (40 + 50 * c, 10 + 15 * i, 200 - 10 * i)
            path = root / name / f"{name}_{i}.png"
            Image.fromarray(np.full((64, 64, 3), colour, np.uint8)).save(path)
            colours[colour] = str(path)
    return colours


def test_masks_follow_cropland_and_splits_never_share_a_tile(tmp_path: Path) -> None:
    colours = _labeled_folder(tmp_path / "tiles")
    pairs = build_mosaics(tmp_path / "tiles", tmp_path / "mosaics", MosaicConfig(size=64, n_mosaics=60, seed=1))
    splits: dict[str, set[str]] = {}
    for row in csv.DictReader(open(tmp_path / "mosaics" / "splits.csv")):
        splits.setdefault(row["split"], set()).add(row["tile"])
    assert not (splits["train"] & splits["test"]) and not (splits["train"] & splits["val"])
    assert not (splits["val"] & splits["test"])
    rows = list(csv.DictReader(open(pairs)))
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    for row in rows:
        image = np.asarray(Image.open(tmp_path / "mosaics" / row["image"]).convert("RGB"))
        mask = np.asarray(Image.open(tmp_path / "mosaics" / row["mask"])) > 0
        for colour in {tuple(int(v) for v in p) for p in image.reshape(-1, 3)}:
            tile = colours[colour]
            assert tile in splits[row["split"]], f"{row['image']} uses {tile} from another split"
            pixels = np.all(image == colour, axis=-1)
            arable = Path(tile).parent.name in ARABLE_CLASSES
            assert (mask[pixels] == arable).all()


def test_a_folder_without_cropland_or_without_tiles_is_refused(tmp_path: Path) -> None:
    (tmp_path / "only" / "Forest").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "only" / "Forest" / "a.png")
    with pytest.raises(AgrilandError, match="needs both cropland"):
        build_mosaics(tmp_path / "only", tmp_path / "out")
    with pytest.raises(AgrilandError, match="not found"):
        build_mosaics(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AgrilandError, match="no class subfolders"):
        build_mosaics(tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written
