"""Ground resolution: pixel sizes in metres, scenes at another GSD cut at the source grid and answered on its grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import from_origin

from inference.pixels import PixelSpec
from inference.scenes.ground_resolution import MIN_SOURCE_TILE, adapt_to_model_gsd, pixel_size_m
from inference.scenes.segment import ResolvedScene, segment_file
from inference.scenes.tiling import TileGrid
from inference.scenes.windowed import WindowParams

UTM = CRS.from_epsg(32633)
WGS84 = CRS.from_epsg(4326)
METRES_PER_DEGREE_LATITUDE = 111_195.0  # mean Earth radius 6371 km: pi * R / 180
FIELD = (slice(160, 352), slice(160, 352))


def _greenness(batch: np.ndarray) -> np.ndarray:
    f = batch.astype(np.float32) / 255.0
    return 1.0 / (1.0 + np.exp(-20.0 * (f[..., 1] - 0.5 * (f[..., 0] + f[..., 2]))))


def test_projected_pixel_size_is_the_mean_side_in_metres() -> None:
    assert pixel_size_m(UTM, from_origin(500_000, 5_000_000, 10, 10), 100, 100) == pytest.approx(10.0)
    assert pixel_size_m(UTM, Affine(2.0, 0, 0, 0, -4.0, 0), 100, 100) == pytest.approx(3.0)
    # a rotated 10 m grid is still 10 m
    assert pixel_size_m(UTM, Affine.rotation(30) @ Affine.scale(10, -10), 50, 50) == pytest.approx(10.0)
    # EPSG:2263 is in US survey feet: 10 ft pixels are about 3.05 m
    assert pixel_size_m(CRS.from_epsg(2263), from_origin(0, 0, 10, 10), 10, 10) == pytest.approx(3.048, rel=1e-3)
    assert pixel_size_m(None, from_origin(0, 0, 10, 10), 10, 10) is None


def test_geographic_pixel_sizes_are_metres_at_the_scene_centre() -> None:
    deg = 10 / METRES_PER_DEGREE_LATITUDE  # ~10 m of latitude
    equator = pixel_size_m(WGS84, from_origin(10.0, 50 * deg, deg, deg), 100, 100)  # centred on latitude 0
    assert equator == pytest.approx(10.0, rel=5e-3)
    # at 60 degrees north a degree of longitude is half as long: (5 m + 10 m) / 2
    north = pixel_size_m(WGS84, from_origin(10.0, 60.0 + 50 * deg, deg, deg), 100, 100)
    assert north == pytest.approx(7.5, rel=5e-3)
    # the centre decides, not the top-left corner
    tall = pixel_size_m(WGS84, from_origin(10.0, 60.0 + 50 * deg, deg, deg), 2 * int(60 / deg), 100)
    assert tall is not None and tall == pytest.approx(10.0, rel=1e-2)


@pytest.mark.parametrize("source_gsd", [None, 0.0, -2.5, 10.0, 9.0, 11.4])
def test_a_scene_at_the_model_resolution_or_without_one_is_left_alone(source_gsd: float | None) -> None:
    params = WindowParams(tile_size=64, overlap=16, block_size=128)
    predict, adapted = adapt_to_model_gsd(_greenness, params, source_gsd, model_gsd=10.0)
    assert predict is _greenness and adapted == params


def test_a_finer_scene_is_cut_in_tiles_of_the_model_ground_size_and_answered_at_the_source_size() -> None:
    params = WindowParams(tile_size=64, overlap=16, block_size=128, threshold=0.4, sieve_px=3)
    seen: list[tuple[int, ...]] = []

    def green_share(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.shape)
        return batch[..., 1].astype(np.float32) / 255.0

    predict, adapted = adapt_to_model_gsd(green_share, params, source_gsd=2.5, model_gsd=10.0)
    assert (adapted.tile_size, adapted.overlap, adapted.block_size) == (256, 64, 256)  # 64 px * 10 m = 256 * 2.5 m
    assert (adapted.threshold, adapted.sieve_px, adapted.batch_size) == (0.4, 3, params.batch_size)
    ramp = np.tile(np.linspace(10, 250, 256, dtype=np.float32), (256, 1))  # smooth: survives down and up sampling
    tiles = np.zeros((2, 256, 256, 3), np.uint8)
    tiles[0, ..., 1] = ramp.astype(np.uint8)
    tiles[1, ..., 1] = ramp.T.astype(np.uint8)
    answer = predict(tiles)
    assert seen == [(2, 64, 64, 3)]  # the model only ever sees its own tile size
    assert answer.shape == (2, 256, 256)
    np.testing.assert_allclose(answer[0], ramp / 255.0, atol=0.02)  # back on the source grid, not transposed
    np.testing.assert_allclose(answer[1], ramp.T / 255.0, atol=0.02)


def test_a_coarser_scene_gets_smaller_source_tiles_never_below_the_minimum() -> None:
    params = WindowParams(tile_size=64, overlap=16, block_size=16)
    _, half = adapt_to_model_gsd(_greenness, params, source_gsd=20.0, model_gsd=10.0)
    assert (half.tile_size, half.overlap, half.block_size) == (32, 8, 32)
    predict, tiny = adapt_to_model_gsd(_greenness, params, source_gsd=500.0, model_gsd=10.0)
    assert tiny.tile_size == MIN_SOURCE_TILE and 2 * tiny.overlap < tiny.tile_size
    assert predict(np.full((1, MIN_SOURCE_TILE, MIN_SOURCE_TILE, 3), 100, np.uint8)).shape == (1, 8, 8)


def _scene(path: Path, pixel_m: float) -> Path:
    rng = np.random.default_rng(3)
    data = np.empty((3, 512, 512), np.uint8)
    for band, (lo, hi) in enumerate([(140, 160), (100, 120), (80, 100)]):  # reddish soil
        data[band] = rng.integers(lo, hi, (512, 512))
    data[0][FIELD], data[1][FIELD], data[2][FIELD] = 60, 200, 60
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=512,
        height=512,
        count=3,
        dtype="uint8",
        crs=UTM,
        transform=from_origin(500_000, 5_000_000, pixel_m, pixel_m),
    ) as dst:
        dst.write(data)
    return path


def test_a_scene_at_2_5_m_is_cut_at_the_source_grid_and_answered_on_the_input_grid(tmp_path: Path) -> None:
    params = WindowParams(tile_size=64, overlap=16, block_size=128)
    field = np.zeros((512, 512), bool)
    field[FIELD] = True
    runs = {}
    for pixel_m in (2.5, 10.0):
        shapes: set[tuple[int, ...]] = set()

        def model(batch: np.ndarray) -> np.ndarray:
            shapes.add(batch.shape[1:])
            return _greenness(batch)

        scene = _scene(tmp_path / f"scene_{pixel_m}.tif", pixel_m)
        result = segment_file(
            scene, model, ResolvedScene(params, pixels=PixelSpec()), outputs={"mask": tmp_path / f"mask_{pixel_m}.tif"}
        )
        assert shapes == {(64, 64, 3)}
        with rasterio.open(result.outputs["mask"]) as mask_file:
            assert (mask_file.width, mask_file.height) == (512, 512)
            assert mask_file.transform == from_origin(500_000, 5_000_000, pixel_m, pixel_m)
            mask = mask_file.read(1) == 1
        assert (mask & field).sum() / (mask | field).sum() > 0.9
        runs[pixel_m] = result.stats.n_tiles
    assert runs[2.5] == len(TileGrid(512, 512, 256, 64))  # 640 m tiles: 256 source pixels each
    assert runs[10.0] == len(TileGrid(512, 512, 64, 16))
    assert runs[2.5] < runs[10.0]
