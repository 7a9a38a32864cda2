"""Synthetic scenes and tile sets: determinism, labels, masks against the drawn parcel polygons, data set files."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from contract.errors import AgrilandError
from training.synthetic import CLEAR_SKY, LANDCOVER_CLASSES, SceneConfig, make_scene, make_tiles, write_dataset
from training.synthetic_cli import main as synth_main

FIELDS_ONLY = replace(CLEAR_SKY, forest_fraction=0.0, lakes=0, rivers=0, roads=0, settlements=0)


def test_same_seed_gives_identical_bytes_and_other_seeds_differ() -> None:
    a, b, c = make_scene(96, 160, seed=4), make_scene(96, 160, seed=4), make_scene(96, 160, seed=5)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.landcover.tobytes() == b.landcover.tobytes()
    assert a.image.tobytes() != c.image.tobytes()


def test_scene_arrays_shapes_and_codes() -> None:
    scene = make_scene(200, 300, seed=1, config=SceneConfig(lakes=1, rivers=1, settlements=1, forest_fraction=0.2))
    assert scene.image.shape == (200, 300, 3) and scene.image.dtype == np.uint8
    assert scene.arable_mask.shape == (200, 300) and set(np.unique(scene.arable_mask)) <= {0, 1}
    assert scene.landcover.dtype == np.uint8 and scene.landcover.max() < len(LANDCOVER_CLASSES)
    np.testing.assert_array_equal(scene.arable_mask, scene.landcover == 0)
    assert len(np.unique(scene.landcover)) >= 4  # arable, forest, water/urban, grassland at least
    assert scene.image.std() > 10  # textured, not flat


def test_arable_mask_matches_the_drawn_parcel_polygons() -> None:
    scene = make_scene(160, 200, seed=2, config=FIELDS_ONLY)
    # Redraw the parcels independently: the last polygon drawn at a pixel decides its kind.
    canvas = Image.new("L", (200, 160), 0)
    draw = ImageDraw.Draw(canvas)
    for parcel in scene.parcels:
        draw.polygon(parcel.polygon, fill=1 if parcel.arable else 2)
    expected = np.asarray(canvas) == 1
    np.testing.assert_array_equal(scene.arable_mask.astype(bool), expected)
    # Pixel count agrees with the polygons' geometric area within a one-pixel band along their outlines.
    shapely = pytest.importorskip("shapely")
    frame = shapely.box(0, 0, 200, 160)
    arable = [shapely.Polygon(p.polygon).intersection(frame) for p in scene.parcels if p.arable]
    area = sum(g.area for g in arable)
    perimeter = sum(g.length for g in arable)
    assert abs(int(scene.arable_mask.sum()) - area) <= perimeter
    assert {p.kind for p in scene.parcels} - {"meadow"}, "scene should contain crop parcels"


def test_overlays_clear_the_arable_mask() -> None:
    scene = make_scene(256, 256, seed=3, config=SceneConfig(forest_fraction=0.3, lakes=2, roads=2, settlements=2))
    for code in (1, 2, 3):
        assert (scene.landcover == code).any()
        assert not scene.arable_mask[scene.landcover == code].any()


def test_make_tiles_is_balanced_labelled_and_deterministic() -> None:
    tiles = make_tiles(20, 32, seed=0)
    assert tiles.images.shape == (20, 32, 32, 3) and tiles.images.dtype == np.uint8
    assert tiles.masks.shape == (20, 32, 32) and set(np.unique(tiles.masks)) <= {0, 1}
    assert tiles.labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(tiles.labels, minlength=5), [4, 4, 4, 4, 4])
    arable_share = tiles.masks.mean(axis=(1, 2))
    assert (arable_share[tiles.labels == 0] >= 0.5).all()
    assert (arable_share[tiles.labels != 0] <= 0.5).all()
    again = make_tiles(20, 32, seed=0)
    assert again.images.tobytes() == tiles.images.tobytes()
    np.testing.assert_array_equal(again.labels, tiles.labels)


def test_write_dataset_layout(tmp_path: Path) -> None:
    out = write_dataset(tmp_path / "synth", n_tiles=10, tile_size=32, seed=1, n_scenes=1, scene_size=128)
    with open(out / "pairs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 10 and set(rows[0]) == {"image", "mask", "label"}
    for row in rows:
        image = Image.open(out / row["image"])
        mask = np.asarray(Image.open(out / row["mask"]))
        assert image.size == (32, 32) and image.mode == "RGB"
        assert set(np.unique(mask)) <= {0, 255}
        assert row["label"] in LANDCOVER_CLASSES
        assert (out / "eurosat" / row["label"] / Path(row["image"]).name).is_file()
    for name in ("scene_00.png", "scene_00_mask.png", "scene_00_landcover.png"):
        assert Image.open(out / "scenes" / name).size == (128, 128)
    summary = json.loads((out / "dataset.json").read_text())
    assert summary["n_tiles"] == 10 and sum(summary["tiles_per_class"].values()) == 10
    assert [p.name for p in tmp_path.iterdir()] == ["synth"]  # no temp folder left


def test_write_dataset_refuses_a_non_empty_folder_and_leaves_it_alone(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(AgrilandError, match="not empty"):
        write_dataset(out, n_tiles=5, tile_size=16, n_scenes=0)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    write_dataset(out, n_tiles=5, tile_size=16, n_scenes=0, overwrite=True)
    assert (out / "pairs.csv").is_file() and not (out / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_cli_writes_dataset_and_contact_sheet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sheet = tmp_path / "sheet.png"
    code = synth_main(
        [
            "--out",
            str(tmp_path / "d"),
            "--tiles",
            "10",
            "--tile-size",
            "16",
            "--seed",
            "2",
            "--scenes",
            "0",
            "--contact-sheet",
            str(sheet),
        ]
    )
    assert code == 0
    assert "wrote 10 tiles" in capsys.readouterr().out
    assert len(list((tmp_path / "d" / "images").iterdir())) == 10
    assert Image.open(sheet).size[0] > 1000
