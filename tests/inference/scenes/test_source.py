"""GeoTiffSource: window reads equal the whole-scene read, valid masks, scene-wide percentile statistics, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin
from rasterio.windows import Window

from contract.errors import AgrilandError
from contract.radiometry import percentile_limits, to_uint8
from inference.pixels import SCENE_STRETCH
from inference.scenes.source import GeoTiffSource, is_url
from testkit.in_memory import read_scene
from testkit.scene_files import FIELD, write_scene


def _windows(height: int, width: int, side: int) -> list[Window]:
    return [
        Window(x, y, min(side, width - x), min(side, height - y))
        for y in range(0, height, side)
        for x in range(0, width, side)
    ]


@pytest.mark.parametrize("cog", [False, True])
def test_windows_put_together_equal_the_whole_scene_read(tmp_path: Path, cog: bool) -> None:
    path = write_scene(tmp_path / "scene.tif", height=300, width=420, cog=cog)
    reference = read_scene(path)
    with GeoTiffSource(path) as source:
        assert (source.height, source.width, source.source_dtype, source.band_count) == (300, 420, "uint16", 4)
        assert source.crs == reference.crs and source.transform == reference.transform
        assert source.chosen == reference.bands
        rgb = np.zeros((300, 420, 3), np.uint8)
        valid = np.zeros((300, 420), bool)
        for window in _windows(300, 420, 97):  # odd windows that match no internal block
            rows, cols = window.toslices()
            rgb[rows, cols], valid[rows, cols] = source.read(window)
    np.testing.assert_array_equal(valid, reference.valid)
    np.testing.assert_array_equal(rgb, reference.rgb)
    assert not valid[:, :40].any() and valid[50:250, 60:400].all()  # the zero margins are nodata


def test_percentile_limits_are_the_scene_wide_ones_in_every_window(tmp_path: Path) -> None:
    path = write_scene(tmp_path / "scene.tif", height=300, width=420)
    with GeoTiffSource(path, pixels=SCENE_STRETCH) as source:
        chosen = source.chosen
        scaler = source.radiometry
        field_window = Window(FIELD[1].start, FIELD[0].start, 100, 100)
        field_rgb, field_valid = source.read(field_window)
    with rasterio.open(path) as ds:
        hwc = np.moveaxis(ds.read(), 0, -1)
    selected = hwc[..., [b - 1 for b in chosen]]
    valid = selected.any(axis=-1) & hwc.any(axis=-1)
    low, high = percentile_limits(selected[valid].astype(np.float32), SCENE_STRETCH.radiometry.percentiles)
    assert scaler.applied is not None and scaler.applied.scaling == "percentile"
    np.testing.assert_allclose(scaler.low, low)
    np.testing.assert_allclose(scaler.high, high)
    np.testing.assert_allclose(scaler.applied.low, low)
    # a window wholly inside the field is not stretched on its own statistics
    rows, cols = field_window.toslices()
    window_only = to_uint8(selected[rows, cols], SCENE_STRETCH.radiometry.percentiles, valid[rows, cols])
    assert field_valid.all() and not np.array_equal(field_rgb, window_only)


def test_nodata_tag_zeros_and_dataset_mask_make_pixels_invalid(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = rng.integers(1000, 3000, (3, 64, 80)).astype(np.uint16)
    data[:, :8, :] = 65535  # every band at the nodata tag
    data[0, 20, 20] = 65535  # one band only: still valid
    data[:, 30, 30] = 0  # every band zero
    path = tmp_path / "tagged.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=80,
        height=64,
        count=3,
        dtype="uint16",
        nodata=65535,
        crs="EPSG:32633",
        transform=from_origin(500_000, 5_000_000, 10, 10),
    ) as dst:
        dst.write(data)
    expected = np.ones((64, 80), bool)
    expected[:8] = False
    expected[30, 30] = False
    with GeoTiffSource(path) as source:
        assert source.nodata == 65535.0
        rgb, valid = source.read(Window(0, 0, 80, 64))
    np.testing.assert_array_equal(valid, expected)
    assert not rgb[~valid].any() and rgb[valid].any()

    masked = tmp_path / "masked.tif"
    with rasterio.open(
        masked,
        "w",
        driver="GTiff",
        width=80,
        height=64,
        count=3,
        dtype="uint16",
        crs="EPSG:32633",
        transform=from_origin(500_000, 5_000_000, 10, 10),
    ) as dst:
        dst.write(np.clip(data, 1, 60000))
        mask = np.full((64, 80), 255, np.uint8)
        mask[:, 70:] = 0
        dst.write_mask(mask)
    with GeoTiffSource(masked) as source:
        _, valid = source.read(Window(60, 0, 20, 64))
    assert valid[:, :10].all() and not valid[:, 10:].any()


def test_a_missing_file_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(AgrilandError, match=r"no such scene file: .*absent\.tif"):
        with GeoTiffSource(tmp_path / "absent.tif"):
            pass


def test_files_that_are_not_geotiffs_are_refused_clearly(tmp_path: Path) -> None:
    text = tmp_path / "notes.tif"
    text.write_text("these are not pixels\n" * 20)
    with pytest.raises(AgrilandError, match="notes.tif is not a GeoTIFF"):
        with GeoTiffSource(text):
            pass
    png = tmp_path / "picture.tif"
    Image.new("RGB", (32, 32), (10, 200, 10)).save(png, format="PNG")
    with pytest.raises(AgrilandError, match="picture.tif is a PNG file, not a GeoTIFF"):
        with GeoTiffSource(png):
            pass


def test_a_truncated_geotiff_is_refused_as_truncated_or_corrupt(tmp_path: Path) -> None:
    whole = write_scene(tmp_path / "whole.tif", height=300, width=420).read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(AgrilandError, match="cut.tif .*(truncated or corrupt|cannot be read)"):
        with GeoTiffSource(cut) as source:
            source.read(Window(0, 0, source.width, source.height))


@pytest.mark.parametrize(
    ("path", "remote"),
    [
        ("https://example.org/scene.tif", True),
        ("http://host/a.tif", True),
        ("s3://bucket/a.tif", True),
        ("gs://bucket/a.tif", True),
        ("/vsicurl/https://host/a.tif", True),
        ("/vsis3/bucket/a.tif", True),
        ("/data/scene.tif", False),
        ("scene.tif", False),
        ("C:/scenes/a.tif", False),
        ("file_https.tif", False),
    ],
)
def test_is_url_tells_remote_gdal_paths_from_local_files(path: str, remote: bool) -> None:
    assert is_url(path) is remote
