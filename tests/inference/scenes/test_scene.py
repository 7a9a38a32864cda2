"""segment_scene / cluster_scene on GeoTIFF scenes the tests write, and the georeferenced outputs."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from contract.errors import AgrilandError
from contract.manifest import Manifest, TensorSpec
from contract.radiometry import Radiometry
from inference.scenes.cluster import cluster_scene
from inference.scenes.source import GeoTiffSource
from testkit.in_memory import ArraySource, Raster, read_scene
from testkit.scene_results import geotiff_bytes, quicklook, scene_geojson, segment_scene, write_geotiff

T = 64
UTM_TRANSFORM = from_origin(500_000.0, 5_000_000.0, 10.0, 10.0)
WGS_TRANSFORM = from_origin(15.0, 45.0, 1e-4, 1e-4)
FIELD = (slice(150, 450), slice(250, 700))  # a green field inside the scene


def _write(path: Path, data: np.ndarray, crs: str, transform, **extra) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=data.shape[2],
            height=data.shape[1],
            count=data.shape[0],
            dtype=data.dtype,
            crs=crs,
            transform=transform,
            **extra,
        ) as dst:
            dst.write(data)
    return path


def farmland_scene(
    path: Path,
    crs: str = "EPSG:32633",
    transform=UTM_TRANSFORM,
    height: int = 777,
    width: int = 1000,
    margins: tuple[int, int] = (90, 60),
) -> Path:
    """uint16 B2,B3,B4,B8 stack: brownish soil, one green field, zero (nodata) margins left and bottom."""
    rng = np.random.default_rng(0)
    data = np.empty((4, height, width), dtype=np.uint16)
    data[0] = rng.integers(900, 1100, (height, width))  # blue
    data[1] = rng.integers(1400, 1600, (height, width))  # green
    data[2] = rng.integers(1900, 2100, (height, width))  # red
    data[3] = rng.integers(2500, 3000, (height, width))  # nir
    data[1][FIELD] += 1500
    data[2][FIELD] -= 800
    data[:, :, : margins[0]] = 0
    data[:, height - margins[1] :, :] = 0
    return _write(path, data, crs, transform)


def greenness(batch: np.ndarray) -> np.ndarray:
    """A smooth per-pixel predictor: sigmoid of G - (R + B) / 2."""
    f = batch.astype(np.float32) / 255.0
    return 1.0 / (1.0 + np.exp(-20.0 * (f[..., 1] - 0.5 * (f[..., 0] + f[..., 2]))))


@pytest.fixture(scope="module")
def utm_raster(tmp_path_factory: pytest.TempPathFactory) -> Raster:
    return read_scene(farmland_scene(tmp_path_factory.mktemp("scene") / "utm.tif"), bands="sentinel2-10m")


def test_field_is_found_and_nodata_never_arable(utm_raster: Raster) -> None:
    result = segment_scene(utm_raster, greenness, T, overlap=16, threshold=0.5, batch_size=8)
    assert result.mask.shape == (777, 1000) and result.mask.dtype == np.uint8
    truth = np.zeros((777, 1000), dtype=bool)
    truth[FIELD] = True
    mask = result.mask.astype(bool)
    assert (mask & truth).sum() / (mask | truth).sum() > 0.95
    assert not result.mask[~utm_raster.valid].any() and (result.probability[~utm_raster.valid] == 0).all()
    assert result.crs.to_epsg() == 32633 and result.transform == UTM_TRANSFORM


def test_a_model_that_calls_everything_arable_still_skips_nodata(utm_raster: Raster) -> None:
    seen: list[int] = []

    def always(batch: np.ndarray) -> np.ndarray:
        seen.append(len(batch))
        return np.ones((len(batch), T, T, 1), dtype=np.float32)  # [N, T, T, 1] is accepted too

    result = segment_scene(utm_raster, always, T, overlap=16, batch_size=5)
    np.testing.assert_array_equal(result.mask.astype(bool), utm_raster.valid)
    assert max(seen) == 5 and sum(seen) == result.n_tiles
    assert result.n_tiles_skipped == 16  # the first tile column lies in the 90 px left margin


def test_all_nodata_tiles_are_not_computed(tmp_path: Path) -> None:
    data = np.zeros((3, 300, 300), dtype=np.uint8)
    data[:, :50, :50] = 120  # only the top-left tile (tiles start at 0, 59, 118, ...) sees it
    raster = read_scene(_write(tmp_path / "mostly_empty.tif", data, "EPSG:32633", UTM_TRANSFORM))
    result = segment_scene(raster, greenness, T, overlap=0)
    assert result.n_tiles == 1 and result.n_tiles_skipped == 24


def test_wgs84_scene_smaller_than_a_tile(tmp_path: Path) -> None:
    raster = read_scene(
        farmland_scene(tmp_path / "small.tif", "EPSG:4326", WGS_TRANSFORM, 50, 37, (5, 5)), bands="3,2,1"
    )
    result = segment_scene(raster, greenness, T, overlap=16)
    assert result.shape == (50, 37) and result.n_tiles == 1
    assert result.crs.to_epsg() == 4326


def test_wrong_model_output_is_a_clear_error(utm_raster: Raster) -> None:
    with pytest.raises(AgrilandError, match=r"model returned shape \(2, 32, 32\)"):
        segment_scene(utm_raster, lambda b: np.zeros((len(b), 32, 32), np.float32), T, batch_size=2)


def test_geotiff_outputs_round_trip_crs_and_transform(utm_raster: Raster, tmp_path: Path) -> None:
    result = segment_scene(utm_raster, greenness, T, overlap=16)
    with MemoryFile(geotiff_bytes(result, "mask")) as memfile, memfile.open() as ds:
        assert ds.crs == utm_raster.crs and ds.transform == utm_raster.transform
        assert ds.nodata == 255 and ds.dtypes[0] == "uint8"
        band = ds.read(1)
    assert (band[~utm_raster.valid] == 255).all()
    np.testing.assert_array_equal(band[utm_raster.valid], result.mask[utm_raster.valid])
    path = write_geotiff(tmp_path / "probability.tif", result, "probability")
    with rasterio.open(path) as ds:
        assert ds.crs == utm_raster.crs and ds.transform == utm_raster.transform and ds.dtypes[0] == "float32"
        prob = ds.read(1)
    assert np.isnan(prob[~utm_raster.valid]).all()
    np.testing.assert_allclose(prob[utm_raster.valid], result.probability[utm_raster.valid])
    assert [p.name for p in tmp_path.iterdir()] == ["probability.tif"]  # no temp files left behind


def test_geojson_and_quicklook(utm_raster: Raster) -> None:
    result = segment_scene(utm_raster, greenness, T, overlap=16)
    collection = scene_geojson(result, min_area_ha=1.0)
    assert "crs" not in collection and len(collection["features"]) == 1  # RFC 7946: EPSG:4326 always
    area = collection["features"][0]["properties"]["area_ha"]
    assert area == pytest.approx(300 * 450 * 100 / 10_000, rel=0.05)
    lonlat = collection
    lon, lat = np.asarray(lonlat["features"][0]["geometry"]["coordinates"][0]).T
    assert 14.0 < lon.min() < lon.max() < 16.0 and 44.0 < lat.min() < lat.max() < 46.0
    json.dumps(lonlat)  # plain JSON types only
    image = quicklook(utm_raster, result, max_side=256)
    assert image.size == (256, 199)


def _two_cluster_manifest() -> Manifest:
    """A DEC manifest of two named clusters, bare soil and arable, at the suite's tile size."""
    return Manifest(
        radiometry=Radiometry(),
        name="dec",
        task="clustering",
        version="t",
        tile_size=T,
        input=TensorSpec(name="image", dtype="uint8", shape=[None, T, T, 3]),
        outputs=[TensorSpec(name="q", dtype="float32", shape=[None, 2])],
        cluster_names={"0": "bare soil", "1": "arable"},
        onnx_sha256="0" * 64,
    )


def test_cluster_scene_grid_cells(utm_raster: Raster, tmp_path: Path) -> None:
    manifest = _two_cluster_manifest()

    def predict_q(batch: np.ndarray) -> np.ndarray:
        green = greenness(batch).mean(axis=(1, 2))
        return np.stack([1.0 - green, green], axis=1)

    with GeoTiffSource(farmland_scene(tmp_path / "utm.tif"), bands="sentinel2-10m") as source:
        collection = cluster_scene(source, predict_q, T, manifest, batch_size=7)  # strip by strip from the file
    in_memory = ArraySource(utm_raster.rgb, utm_raster.valid, utm_raster.crs, utm_raster.transform, utm_raster.name)
    assert cluster_scene(in_memory, predict_q, T, manifest, batch_size=64) == collection  # the whole-scene pass
    cells = collection["features"]
    ny, nx = -(-777 // T), -(-1000 // T)
    assert len(cells) == (ny - 1) * (nx - 1)  # bottom row and left column lie in the nodata margins
    props = {(c["properties"]["row"], c["properties"]["col"]): c["properties"] for c in cells}
    inside = props[(300 // T, 450 // T)]
    assert inside["name"] == "arable" and inside["is_arable"] and inside["cluster"] == 1
    outside = props[(1, 14)]
    assert outside["name"] == "bare soil" and not outside["is_arable"]
    assert 0.5 <= inside["confidence"] <= 1.0
    assert props[(0, 1)]["valid_fraction"] == pytest.approx((128 - 90) / 64)  # col 1 spans x 64..127
    corner = cells[-1]["geometry"]["coordinates"][0]
    lon, lat = np.asarray(corner).T
    east, _ = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(500_000 + 1000 * 10, 4_996_000)
    assert lon.max() == pytest.approx(east, abs=2e-4)  # edge cells are clipped to the scene
    assert "crs" not in collection


def test_cluster_cells_cover_the_ground_of_a_model_tile(utm_raster: Raster) -> None:
    """A scene finer than the model is clustered in cells of the model tile's ground size, each resampled to the
    model tile; at the model's resolution (or an unknown one) a cell is the tile itself."""
    from inference.scenes.cluster import cell_size_px
    from inference.scenes.ground_resolution import resample_rgb

    assert cell_size_px(10.0, 10.0, 64) == 64 and cell_size_px(None, 10.0, 64) == 64
    assert cell_size_px(2.5, 10.0, 64) == 256 and cell_size_px(1.0, 10.0, 64) == 640
    assert cell_size_px(30.0, 10.0, 64) == 21  # coarser: fewer source pixels, enlarged to the tile
    manifest = _two_cluster_manifest()
    seen: list[np.ndarray] = []

    def predict_q(batch: np.ndarray) -> np.ndarray:
        seen.append(batch)
        green = greenness(batch).mean(axis=(1, 2))
        return np.stack([1.0 - green, green], axis=1)

    in_memory = ArraySource(utm_raster.rgb, utm_raster.valid, utm_raster.crs, utm_raster.transform, utm_raster.name)
    cell = 2 * T
    collection = cluster_scene(in_memory, predict_q, T, manifest, batch_size=5, cell_px=cell)
    assert all(batch.shape[1:] == (T, T, 3) for batch in seen)  # the model always gets its own tile size
    rows, cols = -(-utm_raster.rgb.shape[0] // cell), -(-utm_raster.rgb.shape[1] // cell)
    cells = {(f["properties"]["row"], f["properties"]["col"]): f["properties"] for f in collection["features"]}
    assert len(cells) == len(collection["features"]) and all(r < rows and c < cols for r, c in cells)
    checked = 0
    for (row, col), props in cells.items():  # each full cell answers as its block resampled to the model tile
        block = utm_raster.rgb[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell]
        if block.shape[:2] == (cell, cell) and props["valid_fraction"] == 1.0:
            expected = predict_q(resample_rgb(np.ascontiguousarray(block), (T, T))[None])[0]
            assert props["confidence"] == pytest.approx(float(expected.max()), abs=1e-6)
            assert props["cluster"] == int(np.argmax(expected))
            checked += 1
    assert checked >= 4
    assert len(cells) < len(cluster_scene(in_memory, predict_q, T, manifest, batch_size=5)["features"])
