"""A field model's planes (extent, boundary) through the windowed engine: each plane blended as a lone plane would
be, the sinks given the extent, the refiner given both; and through a change of ground resolution."""

from __future__ import annotations

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from inference.scenes.ground_resolution import adapt_to_model_gsd
from inference.scenes.windowed import WindowedSegmenter, WindowParams
from testkit.in_memory import ArraySink, ArraySource


def _two_planes(batch: np.ndarray) -> np.ndarray:
    """A deterministic 'model': extent from the red band, boundary from the green band."""
    x = batch.astype(np.float32) / 255.0
    return np.stack([x[..., 0], x[..., 1]], axis=-1)


def _scene(seed: int = 0) -> ArraySource:
    rgb = np.random.default_rng(seed).integers(0, 256, (150, 170, 3), dtype=np.uint8)
    valid = np.ones(rgb.shape[:2], bool)
    valid[:10, :10] = False
    return ArraySource(rgb, valid, CRS.from_epsg(32633), Affine(10, 0, 500_000, 0, -10, 4_500_000))


def test_each_plane_is_blended_as_a_lone_plane_would_be() -> None:
    source = _scene()
    params = WindowParams(64, 8, 0.5, 4, block_size=80)
    seen: list[np.ndarray] = []

    def refine(rgb: np.ndarray, planes: np.ndarray, valid: np.ndarray) -> np.ndarray:
        assert planes.ndim == 3 and planes.shape[-1] == 2
        seen.append(planes)
        return (planes[..., 1] > 0.5).astype(np.uint8)

    both = ArraySink(source.height, source.width)
    WindowedSegmenter(source, _two_planes, params, refine, threaded=False).run([both])
    for plane in (0, 1):
        alone = ArraySink(source.height, source.width)
        WindowedSegmenter(source, lambda b, p=plane: _two_planes(b)[..., p], params).run([alone])
        if plane == 0:  # the sinks get the field extent
            np.testing.assert_allclose(both.probability, alone.probability, atol=1e-6)
        else:  # the refiner saw the boundary plane, and its mask is the answer
            np.testing.assert_array_equal(both.mask, ((alone.probability > 0.5) & source.valid).astype(np.uint8))
    assert seen


def test_planes_survive_a_change_of_ground_resolution() -> None:
    params = WindowParams(64, 8, 0.5, 4)
    predict, adapted = adapt_to_model_gsd(_two_planes, params, source_gsd=5.0, model_gsd=10.0)
    assert adapted.tile_size == 128
    tiles = np.random.default_rng(1).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    out = predict(tiles)
    assert out.shape == (3, 128, 128, 2)
    # a flat tile gives flat planes at its own values, back on the source grid
    flat = np.zeros((1, 128, 128, 3), np.uint8)
    flat[..., 0], flat[..., 1] = 200, 50
    back = predict(flat)
    np.testing.assert_allclose(back[0, ..., 0], 200 / 255, atol=1e-3)
    np.testing.assert_allclose(back[0, ..., 1], 50 / 255, atol=1e-3)


def test_a_block_without_data_gets_no_fields_from_the_field_model_refiner() -> None:
    from contract.manifest import FieldModelSpec
    from inference.field_model import field_model_refiner

    source = _scene(2)
    source.valid[:, :120] = False  # the first block column (80 px blocks) and all its tiles hold no data
    sink = ArraySink(source.height, source.width)
    refine = field_model_refiner(FieldModelSpec(), 10.0)
    WindowedSegmenter(source, _two_planes, WindowParams(64, 8, 0.5, 4, block_size=80), refine, threaded=False).run(
        [sink]
    )
    assert not sink.mask[:, :120].any()
    assert sink.mask.shape == (150, 170)
