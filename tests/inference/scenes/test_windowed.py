"""Windowed scene inference: window-edge parity with the in-memory path, COG outputs, polygons merged across blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from contract.artifacts import artifact_folder
from contract.errors import AgrilandError
from inference.fields import FieldOptions
from inference.models.onnx_model import OnnxModel, predictor
from inference.scenes.segment import ResolvedScene, segment_file
from inference.scenes.tiling import TileGrid
from inference.scenes.windowed import DEFAULT_SIEVE_PX, WindowParams
from testkit.in_memory import ArraySource, Stitcher, read_scene
from testkit.scene_files import UTM, greenness, write_scene
from testkit.scene_results import scene_polygons, scene_summary, segment_scene


def stitched_in_memory(path: Path, predict, tile: int, overlap: int, bands: str) -> np.ndarray:
    """The in-memory reference: the whole scene decoded, every tile through inference.scenes.tiling.Stitcher."""
    raster = read_scene(path, bands=bands)
    grid = TileGrid(raster.height, raster.width, tile, overlap)
    stitcher = Stitcher(grid)
    todo = np.flatnonzero(grid.tile_valid(raster.valid))
    for start in range(0, len(todo), 8):
        batch = todo[start : start + 8]
        out = np.asarray(predict(grid.extract(raster.rgb, batch)))
        stitcher.add(batch, out[..., 0] if out.ndim == 4 else out)
    probability = np.clip(stitcher.result(), 0.0, 1.0)
    probability[~raster.valid] = 0.0
    return probability


def read_probability(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return np.nan_to_num(ds.read(1), nan=0.0)


@pytest.mark.parametrize("cog", [False, True])
def test_window_edges_match_the_in_memory_path(tmp_path: Path, cog: bool) -> None:
    scene = write_scene(tmp_path / "scene.tif", cog=cog)
    reference = stitched_in_memory(scene, greenness, 64, 16, "sentinel2-10m")
    params = WindowParams(64, 16, 0.5, 8, block_size=128)  # many block edges, none on a tile edge
    out = {"probability": tmp_path / "p.tif", "mask": tmp_path / "m.tif"}
    result = segment_file(
        scene, greenness, ResolvedScene(params, fields=FieldOptions(mode="threshold"), bands="sentinel2-10m"), out
    )
    assert np.abs(read_probability(out["probability"]) - reference).max() <= 1e-5
    with rasterio.open(out["mask"]) as ds:
        mask = ds.read(1)
    assert ((mask == 1) == ((reference >= 0.5) & (mask != 255))).all()
    assert result.stats.n_blocks == 4 * 6 and result.stats.n_tiles > 0


def test_statistics_sampled_like_the_in_memory_reader(tmp_path: Path) -> None:
    """Over a million pixels the stretch is estimated from a stride of valid pixels: the same stride."""
    scene = write_scene(tmp_path / "big.tif", height=1100, width=1000)
    reference = stitched_in_memory(scene, greenness, 64, 8, "3,2,1")
    out = {"probability": tmp_path / "p.tif"}
    segment_file(scene, greenness, ResolvedScene(WindowParams(64, 8, block_size=300), bands="3,2,1"), out)
    assert np.abs(read_probability(out["probability"]) - reference).max() <= 1e-5


def test_outputs_are_cogs_with_the_scene_georeferencing(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif", height=1100, width=900, dtype="uint8")
    out = {"mask": tmp_path / "m.tif"}
    segment_file(scene, greenness, ResolvedScene(WindowParams(64, 16, block_size=256), bands="3,2,1"), out)
    with rasterio.open(scene) as src, rasterio.open(out["mask"]) as ds:
        assert ds.crs == src.crs and ds.transform == src.transform and ds.shape == src.shape
        assert ds.profile["tiled"] and ds.block_shapes[0] == (512, 512) and ds.nodata == 255
        assert ds.overviews(1)  # overviews inside the file
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_polygons_crossing_blocks_are_merged(tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif")
    raster = read_scene(scene, bands="sentinel2-10m")
    whole = segment_scene(raster, greenness, 64, 16)
    expected = scene_polygons(whole)
    result = segment_file(
        scene,
        greenness,
        ResolvedScene(
            WindowParams(64, 16, block_size=128), bands="sentinel2-10m", fields=FieldOptions(mode="threshold")
        ),
        {},
    )
    assert len(result.polygons.geometries) == len(expected.geometries) == 1
    assert result.polygons.areas_ha.sum() == pytest.approx(expected.areas_ha.sum(), rel=1e-9)
    assert result.polygons.geometries[0].equals(expected.geometries[0])
    summary = scene_summary(whole, expected)
    assert result.summary.valid_ha == pytest.approx(summary.valid_ha, rel=1e-6)
    assert result.summary.arable_ha == pytest.approx(summary.arable_ha, rel=1e-9)


def test_bad_scenes_are_clear_errors_and_leave_nothing(tmp_path: Path) -> None:
    no_crs = write_scene(tmp_path / "nocrs.tif", height=100, width=100, crs=None)
    out = {"mask": tmp_path / "out" / "m.tif"}
    with pytest.raises(AgrilandError, match="no CRS"):
        segment_file(no_crs, greenness, ResolvedScene(WindowParams(64)), out)
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(write_scene(tmp_path / "ok.tif", height=300, width=300).read_bytes()[:5000])
    with pytest.raises(AgrilandError, match="corrupt|truncated|cannot be read"):
        segment_file(corrupt, greenness, ResolvedScene(WindowParams(64)), out)
    with pytest.raises(AgrilandError, match="no such scene"):
        segment_file(tmp_path / "missing.tif", greenness, ResolvedScene(WindowParams(64)), out)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_real_onnx_model_window_parity(exported_models: Path, tmp_path: Path) -> None:
    """The suite's trained + exported tiny U-Net on ONNX Runtime: windowed == in-memory within 1e-5."""
    model = OnnxModel.load(artifact_folder(exported_models, "unet", "fp32"), providers="cpu")
    predict = predictor(model)
    scene = write_scene(tmp_path / "scene.tif", height=300, width=420)
    reference = stitched_in_memory(scene, predict, model.tile_size, 16, "sentinel2-10m")
    out = {"probability": tmp_path / "p.tif"}
    segment_file(
        scene, predict, ResolvedScene(WindowParams(model.tile_size, 16, block_size=100), bands="sentinel2-10m"), out
    )
    assert np.abs(read_probability(out["probability"]) - reference).max() <= 1e-5


def test_complex_masks_merge_to_the_same_polygons_as_one_pass() -> None:
    """Speckled fields with holes and pinch points, cut into 64 px blocks: same count and area as one pass."""
    from rasterio.windows import Window

    from inference.scenes.polygons import extract_polygons
    from inference.scenes.sinks import PolygonSink

    rng = np.random.default_rng(1)
    mask = (rng.random((300, 340)) < 0.45).astype(np.uint8)
    mask[50:200, 60:300] = (rng.random((150, 240)) < 0.97).astype(np.uint8)
    crs = rasterio.crs.CRS.from_epsg(32633)
    whole = extract_polygons(mask, UTM, crs, simplify_px=0.0)
    sink = PolygonSink(300, 340, UTM, crs)
    for y in range(0, 300, 64):
        for x in range(0, 340, 64):
            block = mask[y : y + 64, x : x + 64]
            sink.write(Window(x, y, block.shape[1], block.shape[0]), block, block, np.ones_like(block, bool))
    windowed = sink.polygons(simplify_px=0.0)
    assert windowed.areas_ha.sum() == pytest.approx(whole.areas_ha.sum(), rel=1e-9)
    assert (windowed.areas_ha > 0).all()
    assert len(windowed.geometries) == len(whole.geometries)


def _two_field_scene(path: Path) -> Path:
    """uint8 RGB at 10 m: two touching crops (different colours) above a lake, crossing many 128 px blocks."""
    rng = np.random.default_rng(1)
    rgb = np.zeros((3, 400, 500), np.float32)
    rows, cols = np.mgrid[:260, :500]
    left = cols < 185 + rows // 2  # a slanted boundary: the line between the fields is a pixel staircase
    rgb[:, :260][:, left] = np.array([60, 140, 50])[:, None]
    rgb[:, :260][:, ~left] = np.array([170, 140, 90])[:, None]
    rgb[:, 260:] = np.array([20, 40, 90])[:, None, None]
    rgb = np.clip(rgb + rng.normal(0, 2, rgb.shape), 1, 255).astype(np.uint8)
    with rasterio.open(
        path, "w", driver="GTiff", width=500, height=400, count=3, dtype="uint8", crs="EPSG:32633", transform=UTM
    ) as dst:
        dst.write(rgb)
    return path


def not_blue(batch: np.ndarray) -> np.ndarray:
    """A stand-in U-Net: land 0.8, water (blue dominant) 0.05."""
    f = batch.astype(np.float32)
    return np.where(f[..., 2] > f[..., 0] + 30, 0.05, 0.8).astype(np.float32)


def test_fields_mode_gives_one_polygon_per_field_across_blocks(tmp_path: Path) -> None:
    """Two touching fields come back as two polygons with their hectares and confidence, whatever the blocks."""
    scene = _two_field_scene(tmp_path / "fields.tif")
    answers = []
    for block in (128, 1024):
        out = {"mask": tmp_path / f"m{block}.tif"}
        params = WindowParams(64, 16, 0.35, block_size=block, sieve_px=DEFAULT_SIEVE_PX)  # as the CLI answers
        result = segment_file(scene, not_blue, ResolvedScene(params, bands="1,2,3"), out)
        polygons = result.polygons
        big = polygons.areas_ha >= 10
        assert big.sum() == 2, (block, polygons.areas_ha)
        # 260 rows of 185 + row/2 (left) and the rest of 500 px (right), 100 m2 each, less the line between them
        left_ha = sum(185 + r // 2 for r in range(260)) / 100
        np.testing.assert_allclose(np.sort(polygons.areas_ha[big]), sorted([left_ha, 1300.0 - left_ha]), rtol=0.03)
        assert polygons.confidence is not None and np.allclose(polygons.confidence[big], 0.8, atol=0.01)
        with rasterio.open(out["mask"]) as ds:
            mask = ds.read(1)
        assert not (mask[280:] == 1).any()  # the lake
        answers.append(mask)
    same = (answers[0] == answers[1]).mean()
    assert same > 0.99  # block edges barely change the answer


@pytest.mark.parametrize("mask_mode", ["fields", "threshold"])
def test_finishing_on_its_own_thread_gives_the_same_blocks_as_in_line(tmp_path: Path, mask_mode: str) -> None:
    """Delineation, mask and sinks of block k run beside block k + 1's model: the answer must not change."""
    from inference.scenes.segment import field_refiner
    from inference.scenes.windowed import WindowedSegmenter
    from testkit.in_memory import ArraySink, read_scene

    raster = read_scene(_two_field_scene(tmp_path / "fields.tif"), bands="1,2,3")
    params = WindowParams(64, 16, 0.35, block_size=128, sieve_px=DEFAULT_SIEVE_PX)
    refine = field_refiner(FieldOptions.parse(mask_mode), params.threshold, 10.0)
    sinks = []
    for threaded in (True, False):
        source = ArraySource(raster.rgb, raster.valid, raster.crs, raster.transform)
        sink = ArraySink(raster.height, raster.width)
        WindowedSegmenter(source, not_blue, params, refine, threaded=threaded).run([sink])
        sinks.append(sink)
    threaded, in_line = sinks
    np.testing.assert_array_equal(threaded.mask, in_line.mask)
    np.testing.assert_array_equal(threaded.probability, in_line.probability)
    assert threaded.mask.sum() > 1000 and set(np.unique(threaded.mask)) <= {0, 1}


def test_a_sink_failure_on_the_finishing_thread_fails_the_run() -> None:
    from inference.scenes.windowed import WindowedSegmenter

    class Full:
        def write(self, *args) -> None:
            raise OSError("no space left on device")

    rgb = np.full((300, 300, 3), 90, np.uint8)
    source = ArraySource(rgb, np.ones((300, 300), bool), rasterio.crs.CRS.from_epsg(32633), UTM)
    with pytest.raises(OSError, match="no space"):
        WindowedSegmenter(source, not_blue, WindowParams(64, 8, block_size=128)).run([Full()])
