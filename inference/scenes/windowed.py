"""Windowed scene inference: blocks of a scene of any size through a model, blended exactly as one pass would."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

import numpy as np
from rasterio.windows import Window
from tqdm import tqdm

from contract.errors import AgrilandError
from inference.scenes.finishing import FinishingStage
from inference.scenes.mask_step import probability_to_mask
from inference.scenes.tiling import TileGrid
from inference.scenes.window_types import (
    DEFAULT_BLOCK,
    DEFAULT_SIEVE_PX,
    MAX_SIEVE_PX,
    BlockSink,
    Predict,
    Refine,
    SceneSource,
    WindowedStats,
    WindowParams,
    default_overlap,
)

__all__ = [
    "DEFAULT_BLOCK",
    "DEFAULT_SIEVE_PX",
    "MAX_SIEVE_PX",
    "BlockSink",
    "Predict",
    "Refine",
    "SceneSource",
    "WindowParams",
    "WindowedSegmenter",
    "WindowedStats",
    "default_overlap",
]

log = logging.getLogger(__name__)


def _as_probabilities(output: np.ndarray, n: int, tile: int) -> np.ndarray:
    """Check a model batch output and return float32 [n, T, T] (one plane) or [n, T, T, C] (a field model's planes:
    extent first)."""
    out = np.asarray(output)
    if out.ndim == 4 and out.shape[-1] == 1:
        out = out[..., 0]
    if out.shape[:3] != (n, tile, tile) or out.ndim not in (3, 4):
        raise AgrilandError(f"the model returned shape {tuple(np.shape(output))}; expected [{n}, {tile}, {tile}(, C)]")
    return out.astype(np.float32, copy=False)


def _touching(starts: np.ndarray, tile: int, lo: int, hi: int) -> np.ndarray:
    """Indices of tiles along one axis whose extent [s, s + tile) meets [lo, hi)."""
    return np.flatnonzero((starts < hi) & (starts + tile > lo))


class _Blocks:
    """The block partition of a scene and, per tile, the last block (row-major) that needs its prediction."""

    def __init__(self, grid: TileGrid, block: int, halo: int = 0) -> None:
        self.grid = grid
        self.block = block
        self.halo = halo
        self.rows = list(range(0, grid.height, block))
        self.cols = list(range(0, grid.width, block))
        t = grid.tile
        self.last_row = (np.minimum(grid.ys + t + halo, grid.height) - 1) // block
        self.last_col = (np.minimum(grid.xs + t + halo, grid.width) - 1) // block

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def __iter__(self):
        for r, y0 in enumerate(self.rows):
            for c, x0 in enumerate(self.cols):
                yield r, c, y0, min(y0 + self.block, self.grid.height), x0, min(x0 + self.block, self.grid.width)


class WindowedSegmenter:
    """Runs one scene block by block; tile predictions shared by neighbouring blocks are computed once."""

    def __init__(
        self,
        source: SceneSource,
        predict: Predict,
        params: WindowParams,
        refine: Refine | None = None,
        threaded: bool = True,
    ) -> None:
        params.check()
        self.threaded = threaded  # finish block k (delineate, mask, sinks) on a thread while block k + 1 is computed
        self.source = source
        self.predict = predict
        self.params = params
        self.refine = refine
        self.grid = TileGrid(source.height, source.width, params.tile_size, params.overlap)
        self.stats = WindowedStats()
        self._cache: dict[tuple[int, int], np.ndarray | None] = {}  # None: an all-nodata tile

    def _read_extent(self, rows: np.ndarray, cols: np.ndarray) -> tuple[int, int, np.ndarray, np.ndarray]:
        """Read the pixels under the given tile rows/cols; mirror-pad axes shorter than a tile (as TileGrid)."""
        g, t = self.grid, self.grid.tile
        y0, x0 = int(g.ys[rows[0]]), int(g.xs[cols[0]])
        y1, x1 = min(int(g.ys[rows[-1]]) + t, g.height), min(int(g.xs[cols[-1]]) + t, g.width)
        rgb, valid = self.source.read(Window(x0, y0, x1 - x0, y1 - y0))
        if rgb.shape[:2] != (y1 - y0, x1 - x0) or valid.shape != rgb.shape[:2]:
            raise AgrilandError(
                f"{self.source.name}: a window read returned {rgb.shape}, expected {(y1 - y0, x1 - x0)}"
            )
        pad_y, pad_x = max(0, t - g.height), max(0, t - g.width)
        if pad_y or pad_x:
            rgb = np.pad(rgb, ((0, pad_y), (0, pad_x), (0, 0)), mode="symmetric")
        return y0, x0, rgb, valid

    def _predict_missing(
        self, rows: np.ndarray, cols: np.ndarray, y0: int, x0: int, rgb: np.ndarray, valid: np.ndarray
    ) -> None:
        """Run the model on the touched tiles not yet in the cache (all-nodata tiles are only marked)."""
        g, t = self.grid, self.grid.tile
        todo: list[tuple[int, int]] = []
        for i in rows:
            for j in cols:
                key = (int(i), int(j))
                if key in self._cache:
                    continue
                ty, tx = int(g.ys[i]) - y0, int(g.xs[j]) - x0
                if valid[ty : ty + t, tx : tx + t].any():
                    todo.append(key)
                else:
                    self._cache[key] = None
                    self.stats.n_tiles_skipped += 1
        size = self.params.batch_size
        for start in range(0, len(todo), size):
            keys = todo[start : start + size]
            batch = np.empty((len(keys), t, t, rgb.shape[-1]), dtype=np.uint8)
            for k, (i, j) in enumerate(keys):
                ty, tx = int(g.ys[i]) - y0, int(g.xs[j]) - x0
                batch[k] = rgb[ty : ty + t, tx : tx + t]
            predictions = _as_probabilities(self.predict(batch), len(keys), t)
            for key, pred in zip(keys, predictions):
                self._cache[key] = pred
        self.stats.n_tiles += len(todo)

    def _blend(self, rows: np.ndarray, cols: np.ndarray, by0: int, by1: int, bx0: int, bx1: int) -> np.ndarray:
        """Weighted average of the cached predictions over one block, tiles added in row-major order."""
        g, t, window = self.grid, self.grid.tile, self.grid.window
        planes = next((p.shape[2:] for p in self._cache.values() if p is not None), ())
        total = np.zeros((by1 - by0, bx1 - bx0, *planes), dtype=np.float32)
        weight = np.zeros((by1 - by0, bx1 - bx0), dtype=np.float32)
        if planes:
            window = window[..., None]
        for i in rows:
            for j in cols:
                pred = self._cache[(int(i), int(j))]
                if pred is None:
                    continue
                ty, tx = int(g.ys[i]), int(g.xs[j])
                ya, yb = max(ty, by0), min(ty + t, by1)
                xa, xb = max(tx, bx0), min(tx + t, bx1)
                win = window[ya - ty : yb - ty, xa - tx : xb - tx]
                total[ya - by0 : yb - by0, xa - bx0 : xb - bx0] += win * pred[ya - ty : yb - ty, xa - tx : xb - tx]
                weight[ya - by0 : yb - by0, xa - bx0 : xb - bx0] += win[..., 0] if planes else win
        out = np.zeros_like(total)
        w = weight[..., None] if planes else weight
        np.divide(total, w, out=out, where=np.broadcast_to(w > 0, total.shape))
        return out

    def _extent_probability(
        self, rows: np.ndarray, cols: np.ndarray, y0: int, x0: int, valid: np.ndarray
    ) -> np.ndarray:
        """The blended probability of the whole read extent (the block, its halo and its tiles' margin), 0 on
        nodata: field delineation sees a block's surroundings, so neighbouring blocks agree along their edge."""
        h, w = valid.shape
        probability = np.clip(self._blend(rows, cols, y0, y0 + h, x0, x0 + w), 0.0, 1.0)
        probability[~valid] = 0.0
        return probability

    def _evict(self, rows: np.ndarray, cols: np.ndarray, r: int, c: int, blocks: _Blocks) -> None:
        for i in rows:
            if blocks.last_row[i] != r:
                continue
            for j in cols:
                if blocks.last_col[j] == c:
                    self._cache.pop((int(i), int(j)), None)

    def _finish_block(
        self,
        sinks: Sequence[BlockSink],
        window: Window,
        rgb: np.ndarray,
        probability: np.ndarray,
        valid: np.ndarray,
        extent: tuple[slice, slice],
        inner: tuple[slice, slice],
    ) -> None:
        """One block's mask step and sinks (the finishing stage's thread). `probability` covers the read extent
        with fields (delineation sees the block's surroundings, so neighbouring blocks agree along their edge)
        and the block + halo without."""
        p = self.params
        wide_valid = valid[extent]
        refined = None
        if self.refine is not None:
            h, w = valid.shape
            refined = self.refine(rgb[:h, :w], probability, valid).astype(np.uint8)[extent]
            probability = probability[extent]
        if probability.ndim == 3:  # a field model's planes: the sinks and the plain cut read the field extent
            probability = probability[..., 0]
        mask = np.ascontiguousarray(
            probability_to_mask(probability, wide_valid, p.threshold, p.sieve_px, refined)[inner]
        )
        block_probability, block_valid = np.ascontiguousarray(probability[inner]), wide_valid[inner]
        for sink in sinks:
            sink.write(window, block_probability, mask, block_valid)

    def run(self, sinks: Sequence[BlockSink], progress: bool = False) -> WindowedStats:
        """Compute every block and hand it to each sink; returns the tile counts."""
        g, p = self.grid, self.params
        halo = p.halo
        blocks = _Blocks(g, p.block_size, halo)
        log.info(
            "%s: %dx%d px, %d tiles of %d px (overlap %d), %d blocks of %d px",
            self.source.name,
            g.width,
            g.height,
            len(g),
            g.tile,
            p.overlap,
            len(blocks),
            p.block_size,
        )
        with FinishingStage(threaded=self.threaded) as finishing:
            for r, c, by0, by1, bx0, bx1 in tqdm(
                blocks, total=len(blocks), desc=self.source.name, unit="block", disable=not progress
            ):
                ey0, ey1 = max(0, by0 - halo), min(g.height, by1 + halo)  # the block and its halo
                ex0, ex1 = max(0, bx0 - halo), min(g.width, bx1 + halo)
                rows, cols = _touching(g.ys, g.tile, ey0, ey1), _touching(g.xs, g.tile, ex0, ex1)
                y0, x0, rgb, valid = self._read_extent(rows, cols)
                self._predict_missing(rows, cols, y0, x0, rgb, valid)
                extent = (slice(ey0 - y0, ey1 - y0), slice(ex0 - x0, ex1 - x0))
                inner = (slice(by0 - ey0, by1 - ey0), slice(bx0 - ex0, bx1 - ex0))
                if self.refine is None:
                    wide = np.clip(self._blend(rows, cols, ey0, ey1, ex0, ex1), 0.0, 1.0)
                    wide[~valid[extent]] = 0.0
                else:  # one blend of the read extent serves the delineation and the block's own answer
                    wide = self._extent_probability(rows, cols, y0, x0, valid)
                window = Window(bx0, by0, bx1 - bx0, by1 - by0)
                finishing.submit(partial(self._finish_block, sinks, window, rgb, wide, valid, extent, inner))
                self._evict(rows, cols, r, c, blocks)
                self.stats.n_blocks += 1
        if self._cache:
            raise AgrilandError(f"internal: {len(self._cache)} tile predictions were never released")
        log.info(
            "%s: %d tiles computed, %d all-nodata skipped",
            self.source.name,
            self.stats.n_tiles,
            self.stats.n_tiles_skipped,
        )
        return self.stats
