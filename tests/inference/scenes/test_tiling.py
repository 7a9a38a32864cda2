"""Tile grids (fewest tiles for the overlap), blend windows and seam-free stitching."""

from __future__ import annotations

import math

import numpy as np
import pytest

from contract.errors import AgrilandError
from inference.scenes.tiling import WEIGHT_FLOOR, TileGrid, tile_starts
from testkit.in_memory import Stitcher

T = 64
# Seam measure: the largest, over all tile-border lines inside the scene, of the mean absolute stitching
# error (stitched - ideal) on the pixel lines either side of it. Bounds stated by this suite:
SMOOTH_SEAM_BOUND = 1e-5  # position-independent predictor: blending must be exact
EDGE_SEAM_BOUND = 0.005  # predictor darkening 8 px at tile edges by up to 60%: a hard cut scores ~0.3


@pytest.mark.parametrize("length", [1, 50, 64, 65, 100, 777, 1000, 1023])
@pytest.mark.parametrize("overlap", [0, 8, 32])
def test_fewest_tiles_cover_with_overlap(length: int, overlap: int) -> None:
    starts = tile_starts(length, T, overlap)
    expected = 1 if length <= T else math.ceil((length - overlap) / (T - overlap))
    assert len(starts) == expected
    assert starts[0] == 0 and (length <= T or starts[-1] == length - T)
    if len(starts) > 1:
        assert (T - np.diff(starts) >= overlap).all()  # at least the requested overlap everywhere
        # one tile fewer cannot cover the axis with that overlap
        assert (len(starts) - 2) * (T - overlap) + T < length


def test_bad_overlap_is_refused() -> None:
    with pytest.raises(AgrilandError, match="overlap"):
        tile_starts(100, T, T)
    with pytest.raises(AgrilandError, match="overlap"):
        tile_starts(100, T, -1)


def test_window_never_zero_symmetric_and_flat_inside() -> None:
    grid = TileGrid(64 + 48, 64 + 48, T, 16)  # two tiles per axis, exactly 16 px shared
    window = grid.window
    assert window.dtype == np.float32 and window.min() >= WEIGHT_FLOOR**2 and window.max() <= 1.0
    np.testing.assert_allclose(window, window.T)
    np.testing.assert_allclose(window, window[::-1, ::-1])
    row = window[T // 2]
    assert (np.diff(row[:16]) >= 0).all() and (row[16:48] == 1.0).all()


def _smooth_field(height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    return (0.5 + 0.4 * np.sin(yy / 60.0) * np.cos(xx / 45.0)).astype(np.float32)


def _edge_darkening(tile: int, band: int = 8) -> np.ndarray:
    """What CNNs with zero padding do: outputs pulled down near tile borders (here by up to 60%)."""
    d = np.minimum(np.arange(tile), np.arange(tile)[::-1])
    factor = np.minimum(1.0, 0.4 + 0.6 * d / band)
    return np.minimum.outer(factor, factor).astype(np.float32)


def _stitch(field: np.ndarray, overlap: int, effect: np.ndarray | None) -> tuple[TileGrid, np.ndarray]:
    grid = TileGrid(field.shape[0], field.shape[1], T, overlap)
    stitcher = Stitcher(grid)
    tiles = grid.extract(field[..., None], np.arange(len(grid)))[..., 0]
    stitcher.add(np.arange(len(grid)), tiles * (1.0 if effect is None else effect))
    return grid, stitcher.result()


def seam_measure(grid: TileGrid, stitched: np.ndarray, ideal: np.ndarray, margin: int = 8) -> float:
    """Max over tile-border lines of the mean |stitched - ideal| on the two pixel lines either side of it.

    Catches both steps and valleys (a hard cut between two darkened tile edges is a valley, not a step).
    The outer `margin` pixels of the scene are left out: at the scene border one tile is all there is.
    """
    error = np.abs(stitched - ideal)[margin:-margin, margin:-margin]
    seams = []
    for starts, axis, size in ((grid.xs, 1, grid.width), (grid.ys, 0, grid.height)):
        for line in {b for s in starts for b in (int(s), int(s) + grid.tile) if margin < b < size - margin}:
            seams.append(float(np.take(error, [line - 1 - margin, line - margin], axis=axis).mean()))
    return max(seams)


def _hard_cut(field: np.ndarray, effect: np.ndarray) -> tuple[TileGrid, np.ndarray]:
    """Naive stitching for comparison: non-overlapping tiles pasted side by side."""
    h, w = field.shape
    grid = TileGrid(h - h % T, w - w % T, T, 0)
    out = np.zeros((grid.height, grid.width), dtype=np.float32)
    for y, x in grid.origins:
        out[y : y + T, x : x + T] = field[y : y + T, x : x + T] * effect
    return grid, out


@pytest.mark.parametrize("shape", [(777, 1000), (1000, 777), (129, 301)])
def test_smooth_predictor_stitches_exactly(shape: tuple[int, int]) -> None:
    field = _smooth_field(*shape)
    grid, stitched = _stitch(field, 32, None)
    np.testing.assert_allclose(stitched, field, atol=1e-5)
    assert seam_measure(grid, stitched, field) < SMOOTH_SEAM_BOUND


@pytest.mark.parametrize("overlap", [16, 32])
def test_blending_hides_border_effects(overlap: int) -> None:
    field = _smooth_field(777, 1000)
    effect = _edge_darkening(T)
    grid, stitched = _stitch(field, overlap, effect)
    blended = seam_measure(grid, stitched, field)
    cut_grid, cut = _hard_cut(field, effect)
    hard = seam_measure(cut_grid, cut, field[: cut_grid.height, : cut_grid.width])
    assert blended < EDGE_SEAM_BOUND
    assert hard > 0.25 and hard > 50 * blended
    # away from the scene border (where one tile is all there is) the darkening is mostly blended away
    assert np.abs(stitched - field)[8:-8, 8:-8].max() < 0.06


def test_scene_smaller_than_a_tile_is_padded_and_cropped() -> None:
    field = _smooth_field(50, 37)
    grid, stitched = _stitch(field, 16, None)
    assert len(grid) == 1 and stitched.shape == (50, 37)
    np.testing.assert_allclose(stitched, field, atol=1e-6)


def test_tile_valid_skips_all_nodata_tiles() -> None:
    valid = np.zeros((300, 200), dtype=bool)
    valid[:100, :100] = True
    grid = TileGrid(300, 200, T, 16)
    flags = grid.tile_valid(valid)
    expected = [(y < 100) and (x < 100) for y, x in grid.origins]
    assert flags.tolist() == expected
