"""The windowed engine's mask step: sieving block by block gives exactly the whole-scene sieve."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import from_origin

from inference.scenes.mask_step import probability_to_mask
from inference.scenes.polygons import sieve_mask
from inference.scenes.windowed import WindowedSegmenter, WindowParams
from testkit.in_memory import ArraySink, ArraySource


def green(batch: np.ndarray) -> np.ndarray:
    """Probability = the green channel: the scene's own pattern decides the mask."""
    return batch[..., 1].astype(np.float32) / 255.0


def speckled(height: int = 301, width: int = 419) -> tuple[np.ndarray, np.ndarray]:
    """Fields with holes and specks of 1-8 pixels everywhere (many across block edges), a nodata corner."""
    rng = np.random.default_rng(5)
    base = rng.random((height // 3 + 1, width // 3 + 1)) > 0.55
    field = np.kron(base, np.ones((3, 3), dtype=bool))[:height, :width]
    field ^= rng.random((height, width)) > 0.93  # single-pixel specks and holes
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    rgb[..., 1] = np.where(field, 230, 20)
    valid = np.ones((height, width), dtype=bool)
    valid[:40, :55] = False
    rgb[~valid] = 0
    return rgb, valid


@pytest.mark.parametrize("block", [31, 64, 1000])
@pytest.mark.parametrize("sieve_px", [0, 4, 9])
def test_block_sieve_equals_the_whole_scene_sieve(block: int, sieve_px: int) -> None:
    rgb, valid = speckled()
    source = ArraySource(rgb, valid, CRS.from_epsg(32633), from_origin(500_000, 5_000_000, 10, 10))
    params = WindowParams(tile_size=32, overlap=4, threshold=0.5, batch_size=16, block_size=block, sieve_px=sieve_px)
    sink = ArraySink(*valid.shape)
    WindowedSegmenter(source, green, params).run([sink])
    whole = sieve_mask((sink.probability >= 0.5) & valid, sieve_px, valid)
    assert np.array_equal(sink.mask, whole)
    if sieve_px:
        assert not np.array_equal(whole, ((sink.probability >= 0.5) & valid).astype(np.uint8))  # it did sieve


def test_field_refinement_feeds_the_same_mask_step() -> None:
    """A post-processing step (the `refine` hook) replaces the threshold; the sieve and every output follow."""
    rgb, valid = speckled(90, 70)
    source = ArraySource(rgb, valid, CRS.from_epsg(32633), from_origin(500_000, 5_000_000, 10, 10))
    params = WindowParams(tile_size=32, overlap=4, block_size=40, sieve_px=4)
    sink = ArraySink(*valid.shape)

    def nothing_arable(rgb: np.ndarray, probability: np.ndarray, valid: np.ndarray) -> np.ndarray:
        assert rgb.shape[:2] == probability.shape == valid.shape and rgb.dtype == np.uint8
        return np.zeros(probability.shape, np.uint8)

    WindowedSegmenter(source, green, params, refine=nothing_arable).run([sink])
    assert not sink.mask.any() and sink.probability.max() > 0.5
    assert probability_to_mask(sink.probability, valid, params.threshold, params.sieve_px).any()
