"""GeoTIFF scene reading: band presets, uint16/float stretch, nodata, limits and bad files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from contract.errors import AgrilandError
from inference.scenes.geo import BAND_PRESETS, SceneLimits, parse_bands
from testkit.in_memory import read_scene, scene_from_bytes

UTM = "EPSG:32633"
UTM_TRANSFORM = from_origin(500_000.0, 5_000_000.0, 10.0, 10.0)


def write_tif(path: Path, data: np.ndarray, crs: str | None = UTM, transform=UTM_TRANSFORM, **extra) -> Path:
    """Write a [B, H, W] array as a GeoTIFF."""
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype,
        **extra,
    }
    if crs is not None:
        profile.update(crs=crs, transform=transform)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
    return path


def _uint16_stack(height: int, width: int, bands: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(500, 4000, size=(bands, height, width), dtype=np.uint16)


def test_uint16_four_band_scene_with_zero_margins(tmp_path: Path) -> None:
    data = _uint16_stack(777, 1000, 4)
    data[:, :, :40] = 0  # nodata margin on the left
    data[:, -25:, :] = 0  # and at the bottom
    path = write_tif(tmp_path / "s2.tif", data)
    raster = read_scene(path, bands="sentinel2-10m")
    assert raster.rgb.shape == (777, 1000, 3) and raster.rgb.dtype == np.uint8
    assert raster.bands == (3, 2, 1) and raster.band_count == 4 and raster.source_dtype == "uint16"
    assert not raster.valid[:, :40].any() and not raster.valid[-25:, :].any()
    assert raster.valid[:-25, 40:].all()
    assert (raster.rgb[~raster.valid] == 0).all()
    assert raster.rgb[raster.valid].std() > 20  # stretched, not crushed into a few levels
    assert raster.crs.to_epsg() == 32633 and raster.transform == UTM_TRANSFORM


def test_band_order_follows_selection(tmp_path: Path) -> None:
    data = np.zeros((4, 8, 8), dtype=np.uint8)
    for band in range(4):
        data[band] = 10 * (band + 1)  # band b holds 10*b
    path = write_tif(tmp_path / "bands.tif", data)
    assert read_scene(path, bands="4,3,2").rgb[0, 0].tolist() == [40, 30, 20]
    assert read_scene(path).rgb[0, 0].tolist() == [10, 20, 30]
    assert read_scene(path, bands="1").rgb[0, 0].tolist() == [10, 10, 10]


def test_presets_are_documented_band_triples() -> None:
    assert BAND_PRESETS["sentinel2"] == (4, 3, 2)
    assert BAND_PRESETS["sentinel2-10m"] == (3, 2, 1)
    assert parse_bands("RGB") == (1, 2, 3)
    assert parse_bands(" 4, 3, 2 ") == (4, 3, 2)
    assert parse_bands(None) is None
    with pytest.raises(AgrilandError, match="preset"):
        parse_bands("infrared")
    with pytest.raises(AgrilandError, match="3 bands"):
        parse_bands("1,2")


def test_float_nan_and_nodata_tag_are_invalid(tmp_path: Path) -> None:
    data = np.random.default_rng(1).random((3, 50, 60)).astype(np.float32) + 0.1
    data[:, :10, :] = np.nan
    data[:, -5:, :] = -9999.0
    path = write_tif(
        tmp_path / "f.tif", data, crs="EPSG:4326", transform=from_origin(15.0, 45.0, 1e-4, 1e-4), nodata=-9999.0
    )
    raster = read_scene(path)
    assert not raster.valid[:10].any() and not raster.valid[-5:].any() and raster.valid[10:-5].all()
    assert raster.nodata == -9999.0 and raster.crs.to_epsg() == 4326


def test_uint16_nodata_tag(tmp_path: Path) -> None:
    data = _uint16_stack(40, 40, 3)
    data[:, 5, 5] = 65535
    raster = read_scene(write_tif(tmp_path / "n.tif", data, nodata=65535))
    assert raster.valid.sum() == 40 * 40 - 1 and not raster.valid[5, 5]


def test_bytes_and_path_read_the_same(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "same.tif", _uint16_stack(33, 47, 3))
    from_path = read_scene(path)
    from_bytes = scene_from_bytes(path.read_bytes())
    np.testing.assert_array_equal(from_path.rgb, from_bytes.rgb)
    assert from_bytes.crs == from_path.crs and from_bytes.transform == from_path.transform


# ----- bad inputs -----------------------------------------------------------------------------------


def test_no_crs_is_refused(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "nocrs.tif", np.ones((3, 8, 8), dtype=np.uint8), crs=None)
    with pytest.raises(AgrilandError, match="nocrs.tif has no CRS"):
        read_scene(path)
    with pytest.raises(AgrilandError, match="no CRS"):
        scene_from_bytes(path.read_bytes())


def test_zero_size_is_refused(tmp_path: Path, zero_width_tiff) -> None:
    raw = write_tif(tmp_path / "z.tif", np.ones((3, 5, 5), dtype=np.uint8)).read_bytes()
    with pytest.raises(AgrilandError, match="zero size"):
        scene_from_bytes(zero_width_tiff(raw), name="zero.tif")


def test_too_few_bands_are_refused(tmp_path: Path) -> None:
    two = write_tif(tmp_path / "two.tif", np.ones((2, 8, 8), dtype=np.uint8))
    with pytest.raises(AgrilandError, match="two.tif has too few bands"):
        read_scene(two)
    three = write_tif(tmp_path / "three.tif", np.ones((3, 8, 8), dtype=np.uint8))
    with pytest.raises(AgrilandError, match="too few bands: band 4 was asked for but it has 3"):
        read_scene(three, bands="sentinel2")


def test_not_a_geotiff_is_refused(tmp_path: Path) -> None:
    png = tmp_path / "tile.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(png)
    with pytest.raises(AgrilandError, match="not a GeoTIFF"):
        read_scene(png)
    with pytest.raises(AgrilandError, match="not a GeoTIFF"):
        scene_from_bytes(png.read_bytes())
    with pytest.raises(AgrilandError, match="not a GeoTIFF"):
        scene_from_bytes(b"hello, I am text")
    with pytest.raises(AgrilandError, match="empty"):
        scene_from_bytes(b"")
    with pytest.raises(AgrilandError, match="no such scene file"):
        read_scene(tmp_path / "missing.tif")


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    full = write_tif(tmp_path / "t.tif", _uint16_stack(64, 64, 3)).read_bytes()
    for cut in (len(full) // 2, 300):
        with pytest.raises(AgrilandError, match="truncated or corrupt"):
            scene_from_bytes(full[:cut], name="cut.tif")


def test_size_limit_is_checked_from_the_header(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "big.tif", np.ones((3, 100, 120), dtype=np.uint8))
    with pytest.raises(AgrilandError, match="12,000 pixels, over the limit of 10,000"):
        read_scene(path, limits=SceneLimits(max_pixels=10_000))
    assert read_scene(path, limits=SceneLimits(max_pixels=12_000)).shape == (100, 120)
