"""Tile loaders on tiny data written by the tests, auto-detection, bad inputs, and the tf.data pipeline."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contract.errors import AgrilandError
from training.data import (
    detect_kind,
    load_eurosat,
    load_geotiff_tiles,
    load_image_folder,
    load_pairs_csv,
    load_tiles,
)
from training.synthetic import write_dataset
from training.tf_dataset import make_tf_dataset


def _rgb(seed: int, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _save(array: np.ndarray, path: Path, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def test_image_folder_reads_and_resizes(tmp_path: Path) -> None:
    _save(_rgb(0), tmp_path / "a.png")
    _save(_rgb(1, 32), tmp_path / "b.jpg", quality=95)
    (tmp_path / "notes.txt").write_text("not an image")
    data = load_image_folder(tmp_path, 16)
    assert data.images.shape == (2, 16, 16, 3) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.images[0], _rgb(0))
    assert data.masks is None and data.labels is None
    assert [Path(p).name for p in data.paths] == ["a.png", "b.jpg"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing", "not found"),
        (lambda d: d, "no image files"),
    ],
)
def test_image_folder_errors(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(AgrilandError, match=message):
        load_image_folder(make(tmp_path), 16)


@pytest.mark.parametrize("name", ["broken.png", "broken.tif"])
def test_unreadable_image_is_named(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"not an image")
    with pytest.raises(AgrilandError, match=name):
        load_image_folder(tmp_path, 16)


def test_eurosat_layout(tmp_path: Path) -> None:
    _save(_rgb(0, 64), tmp_path / "Forest" / "Forest_1.jpg")
    _save(_rgb(1, 64), tmp_path / "AnnualCrop" / "AnnualCrop_1.tif")
    _save(_rgb(2, 64), tmp_path / "AnnualCrop" / "AnnualCrop_2.png")
    data = load_eurosat(tmp_path, 32)
    assert data.class_names == ["AnnualCrop", "Forest"]
    np.testing.assert_array_equal(data.labels, [0, 0, 1])
    assert data.images.shape == (3, 32, 32, 3)
    assert detect_kind(tmp_path) == "eurosat"
    (tmp_path / "Empty").mkdir()
    with pytest.raises(AgrilandError, match="Empty"):
        load_eurosat(tmp_path, 32)


def test_pairs_csv_from_synthetic_dataset(tmp_path: Path) -> None:
    out = write_dataset(tmp_path / "synth", n_tiles=10, tile_size=32, seed=0, n_scenes=0)
    data = load_tiles(out, 32)
    assert data.images.shape == (10, 32, 32, 3) and data.masks.shape == (10, 32, 32)
    assert set(np.unique(data.masks)) <= {0, 1}
    assert data.class_names[0] == "arable" and data.labels.dtype == np.int64
    first = np.asarray(Image.open(out / "masks" / "tile_00000.png")) // 255
    np.testing.assert_array_equal(data.masks[0], first)
    half = load_pairs_csv(out / "pairs.csv", 16)  # resized: nearest for masks keeps them binary
    assert half.masks.shape == (10, 16, 16) and set(np.unique(half.masks)) <= {0, 1}


def test_forest_aerial_meta_data_layout(tmp_path: Path) -> None:
    """meta_data.csv lists bare file names that live in images/ and masks/; masks are 0/255 JPEGs."""
    mask = np.zeros((20, 20), np.uint8)
    mask[:, :8] = 255
    for i in range(2):
        _save(_rgb(i, 20), tmp_path / "images" / f"{i}_sat_00.jpg", quality=95)
        _save(mask, tmp_path / "masks" / f"{i}_mask_00.jpg", quality=75)
    with open(tmp_path / "meta_data.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(
            [["image", "mask"], ["0_sat_00.jpg", "0_mask_00.jpg"], ["1_sat_00.jpg", "1_mask_00.jpg"]]
        )
    assert detect_kind(tmp_path) == "pairs"
    data = load_tiles(tmp_path, 20)
    assert data.labels is None
    np.testing.assert_array_equal(data.masks[0], mask // 255)


def _pairs(tmp_path: Path, rows: list[list[str]]) -> Path:
    path = tmp_path / "pairs.csv"
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_pairs_csv_errors(tmp_path: Path) -> None:
    _save(_rgb(0), tmp_path / "a.png")
    _save(np.zeros((8, 8), np.uint8), tmp_path / "small_mask.png")
    with pytest.raises(AgrilandError, match=r"lacks column\(s\) \['mask'\]"):
        load_pairs_csv(_pairs(tmp_path, [["image", "label"], ["a.png", "arable"]]), 16)
    with pytest.raises(AgrilandError, match="row 2: mask file not found"):
        load_pairs_csv(_pairs(tmp_path, [["image", "mask"], ["a.png", "nope.png"]]), 16)
    with pytest.raises(AgrilandError, match="small_mask.png is 8x8 but its image is 16x16"):
        load_pairs_csv(_pairs(tmp_path, [["image", "mask"], ["a.png", "small_mask.png"]]), 16)
    with pytest.raises(AgrilandError, match="lists no rows"):
        load_pairs_csv(_pairs(tmp_path, [["image", "mask"]]), 16)
    with pytest.raises(AgrilandError, match="not found"):
        load_pairs_csv(tmp_path / "missing.csv", 16)


def test_geotiff_tiles_band_selection_and_stretch(tmp_path: Path) -> None:
    rasterio = pytest.importorskip("rasterio")
    folder = tmp_path / "tifs"
    folder.mkdir()
    for i in range(2):
        data = np.zeros((4, 10, 10), np.uint16)
        data[0] = 1000 + 100 * i  # band 1: constant per tile
        data[2] = np.arange(100, dtype=np.uint16).reshape(10, 10) * 40  # band 3: a ramp
        data[:, 0, 0] = 0  # nodata corner
        with rasterio.open(
            folder / f"t{i}.tif",
            "w",
            driver="GTiff",
            width=10,
            height=10,
            count=4,
            dtype="uint16",
            nodata=0,
            crs="EPSG:32633",
            transform=rasterio.Affine(10, 0, 500000, 0, -10, 5000000),
        ) as dst:
            dst.write(data)
    assert detect_kind(folder) == "geotiff"
    tiles = load_geotiff_tiles(folder, 10, bands=(3, 1, 2), stretch=(0, 100))
    assert tiles.images.shape == (2, 10, 10, 3)
    red = tiles.images[0, ..., 0]
    assert red[0, 1] == 0 and red[9, 9] == 255 and (np.diff(red[1]) >= 0).all()  # ramp stretched to 0..255
    assert tiles.images[0, 5, 5, 1] == 0 and tiles.images[1, 5, 5, 1] == 255  # one stretch for the data set
    assert (tiles.images[:, 0, 0] == 0).all()  # nodata stays black
    with pytest.raises(AgrilandError, match=r"t0.tif: band 7 does not exist"):
        load_geotiff_tiles(folder, 10, bands=(7, 1, 2))


def test_load_tiles_auto_detection(tmp_path: Path) -> None:
    _save(_rgb(0), tmp_path / "plain" / "x.png")
    assert load_tiles(tmp_path / "plain", 16).labels is None
    with pytest.raises(AgrilandError, match="not found"):
        load_tiles(tmp_path / "nowhere", 16)
    with pytest.raises(AgrilandError, match="unknown data kind"):
        load_tiles(tmp_path / "plain", 16, kind="zarr")  # type: ignore[arg-type]


def test_tf_dataset_batches_images_and_masks() -> None:
    images = np.stack([_rgb(i) for i in range(10)])
    masks = np.zeros((10, 16, 16), np.uint8)
    masks[:, :4] = 1
    batches = list(make_tf_dataset(images, masks, batch_size=4, augment=False, shuffle=False))
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    image, mask = batches[0]
    assert image.dtype.name == "uint8" and mask.dtype.name == "float32" and mask.shape == (4, 16, 16, 1)
    np.testing.assert_array_equal(image.numpy(), images[:4])
    only_images = next(iter(make_tf_dataset(images, batch_size=3, seed=1)))
    assert only_images.shape == (3, 16, 16, 3)
    repeated = make_tf_dataset(images, masks, batch_size=8, repeat=True).take(5)
    assert sum(1 for _ in repeated) == 5
    with pytest.raises(AgrilandError, match="do not match"):
        make_tf_dataset(images, masks[:, :8])
