"""Block sinks: COGs written block by block (georeferenced, nodata, no leftovers), polygons merged across blocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.features import shapes
from rasterio.transform import from_origin
from rasterio.windows import Window
from scipy import ndimage
from shapely.affinity import affine_transform
from shapely.geometry import shape

from inference.fields import FOUR_CONNECTED
from inference.scenes.outputs import MASK_NODATA
from inference.scenes.polygons import TooManyPolygons
from inference.scenes.sinks import CogSink, PolygonSink

UTM = CRS.from_epsg(32633)
TRANSFORM = from_origin(500_000.0, 5_000_000.0, 10.0, 10.0)


def _blocks(height: int, width: int, side: int) -> list[Window]:
    return [
        Window(x, y, min(side, width - x), min(side, height - y))
        for y in range(0, height, side)
        for x in range(0, width, side)
    ]


def _feed(sink: CogSink | PolygonSink, probability: np.ndarray, mask: np.ndarray, valid: np.ndarray, side: int) -> None:
    for window in _blocks(*mask.shape, side):
        rows, cols = window.toslices()
        sink.write(window, probability[rows, cols], mask[rows, cols], valid[rows, cols])


def _scene(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probability ramp, a mask with a ring field across every block plus small fields, a nodata margin."""
    yy, xx = np.mgrid[0:height, 0:width]
    probability = (0.55 + 0.4 * xx / width - 0.1 * yy / height).astype(np.float32)
    mask = np.zeros((height, width), np.uint8)
    mask[40:260, 40:360] = 1
    mask[80:220, 80:320] = 0  # a ring: one field with a hole, crossing all inner block edges
    mask[10:20, 380:390] = 1  # inside one block
    mask[270:280, 190:200] = 1  # touches the x=200 block edge from the left ...
    mask[282:290, 200:210] = 1  # ... and this one from the right, two rows apart: two fields
    valid = np.ones((height, width), bool)
    valid[:, :20] = False
    mask[~valid] = 0
    return probability, mask, valid


def test_cog_sink_writes_a_georeferenced_cog_with_nodata_and_leaves_nothing_else(tmp_path: Path) -> None:
    height, width = 600, 700
    probability, mask, valid = (np.pad(a, ((0, 300), (0, 300)), mode="edge") for a in _scene(300, 400))
    for kind in ("mask", "probability"):
        out = tmp_path / kind / f"{kind}.tif"
        sink = CogSink(out, kind, height, width, UTM, TRANSFORM, tags={"AGRILAND_THRESHOLD": "0.5"})
        _feed(sink, probability, mask, valid, side=256)
        assert sink.close() == out
        assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temporary files behind
        with rasterio.open(out) as ds:
            assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert ds.overviews(1), "a COG larger than its block size has overviews"
            assert ds.crs == UTM and ds.transform == TRANSFORM and (ds.height, ds.width) == (height, width)
            assert ds.tags()["AGRILAND_PRODUCT"] == f"arable {kind}" and ds.tags()["AGRILAND_THRESHOLD"] == "0.5"
            data = ds.read(1)
            if kind == "mask":
                assert ds.dtypes[0] == "uint8" and ds.nodata == MASK_NODATA
                np.testing.assert_array_equal(data, np.where(valid, mask, MASK_NODATA))
            else:
                assert ds.dtypes[0] == "float32" and np.isnan(ds.nodata)
                np.testing.assert_array_equal(np.isnan(data), ~valid)
                np.testing.assert_array_equal(data[valid], probability[valid])


def test_an_aborted_cog_sink_leaves_nothing_and_keeps_an_earlier_file(tmp_path: Path) -> None:
    probability, mask, valid = _scene(300, 400)
    sink = CogSink(tmp_path / "new" / "mask.tif", "mask", 300, 400, UTM, TRANSFORM)
    _feed(sink, probability, mask, valid, side=128)
    sink.abort()
    assert list((tmp_path / "new").iterdir()) == []
    earlier = tmp_path / "old" / "mask.tif"
    earlier.parent.mkdir()
    earlier.write_bytes(b"an earlier answer")
    sink = CogSink(earlier, "mask", 300, 400, UTM, TRANSFORM)
    _feed(sink, probability, mask, valid, side=128)
    sink.abort()
    assert list(earlier.parent.iterdir()) == [earlier] and earlier.read_bytes() == b"an earlier answer"


def _reference_fields(mask: np.ndarray, probability: np.ndarray) -> list[tuple[shapely.Geometry, float]]:
    """Each 4-connected region of the whole mask, vectorised at once, with its mean probability."""
    labels, _ = ndimage.label(mask, structure=FOUR_CONNECTED)
    fields = []
    for geom, value in shapes(labels.astype(np.int32), mask=mask > 0, connectivity=4):
        fields.append((shape(geom), float(probability[labels == int(value)].mean())))
    return sorted(fields, key=lambda item: (item[0].bounds[1], item[0].bounds[0]))


@pytest.mark.parametrize("side", [100, 64, 1000])
def test_polygons_crossing_block_edges_are_merged_into_the_whole_scene_fields(side: int) -> None:
    probability, mask, valid = _scene(300, 400)
    sink = PolygonSink(300, 400, TRANSFORM, UTM)
    _feed(sink, probability, mask, valid, side)
    expected = _reference_fields(mask, probability)
    got = sink.pixel_polygons()
    assert len(got) == len(expected) == 4
    for polygon, (reference, _) in zip(got, expected):
        assert polygon.geom_type == "Polygon"
        assert polygon.symmetric_difference(reference).area == pytest.approx(0.0, abs=1e-9)
    ring = max(got, key=lambda p: p.area)
    assert len(ring.interiors) == 1 and ring.area == (220 * 320 - 140 * 240)
    assert sink.arable_pixels == int(mask.sum())

    fields = sink.polygons(simplify_px=0.0)
    assert len(fields.geometries) == 4 and fields.crs == UTM
    np.testing.assert_allclose(fields.areas_ha, [r.area * 100 / 10_000 for r, _ in expected], rtol=5e-3)
    np.testing.assert_allclose(fields.confidence, [c for _, c in expected], rtol=1e-5)
    t = TRANSFORM
    for polygon, (reference, _) in zip(fields.geometries, expected):  # in the scene CRS, not in pixels
        in_crs = affine_transform(reference, [t.a, t.b, t.d, t.e, t.c, t.f])
        assert polygon.symmetric_difference(in_crs).area == pytest.approx(0.0, abs=1e-3)
    assert sink.valid_ha == pytest.approx(int(valid.sum()) * 100 / 10_000, rel=5e-3)


def test_without_vectorising_only_areas_are_summed() -> None:
    probability, mask, valid = _scene(300, 400)
    sink = PolygonSink(300, 400, TRANSFORM, UTM, vectorise=False)
    _feed(sink, probability, mask, valid, side=100)
    assert sink.pixel_polygons() == [] and sink.arable_pixels == int(mask.sum())
    assert sink.valid_ha == pytest.approx(int(valid.sum()) * 100 / 10_000, rel=5e-3)


def test_more_polygons_than_the_cap_are_refused() -> None:
    probability, mask, valid = _scene(300, 400)
    sink = PolygonSink(300, 400, TRANSFORM, UTM, max_polygons=3)
    _feed(sink, probability, mask, valid, side=100)
    with pytest.raises(TooManyPolygons, match="4 polygons, over the limit of 3"):
        sink.polygons()
    spots = np.zeros((100, 100), np.uint8)
    spots[10:90:4, 10:90:4] = 1  # 400 one-pixel fields in one block
    early = PolygonSink(100, 100, TRANSFORM, UTM, max_polygons=5)
    with pytest.raises(TooManyPolygons) as raised:
        early.write(Window(0, 0, 100, 100), np.ones((100, 100), np.float32), spots, np.ones((100, 100), bool))
    assert raised.value.exact is False and raised.value.limit == 5 and raised.value.count >= 5
