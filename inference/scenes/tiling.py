"""Cut a scene of any size into model-size tiles with overlap, with the blend weights that join them without seams."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from contract.errors import AgrilandError

WEIGHT_FLOOR = 1e-3  # blend weights never reach zero, so every covered pixel has a defined average


def tile_starts(length: int, tile: int, overlap: int) -> np.ndarray:
    """Start offsets of the fewest tiles of size `tile` that cover `length` with at least `overlap` shared pixels.

    n = ceil((length - overlap) / (tile - overlap)) tiles, spread evenly from 0 to length - tile, so the
    real overlap is the requested one or a little more and no tile hangs over the border (no padding is
    computed, except when the whole axis is shorter than one tile).
    """
    if tile <= 0:
        raise AgrilandError(f"tile size must be positive, got {tile}")
    if not 0 <= overlap < tile:
        raise AgrilandError(f"overlap must be in [0, tile size {tile}), got {overlap}")
    if length <= tile:
        return np.zeros(1, dtype=np.int64)
    n = math.ceil((length - overlap) / (tile - overlap))
    return np.rint(np.linspace(0, length - tile, n)).astype(np.int64)


def _ramp(tile: int, width: int) -> np.ndarray:
    """1-D weight: a sin^4 ramp over `width` pixels at both ends, 1 in between, floored above zero.

    sin^4 rather than the Hann sin^2: it gives the outermost pixels of a tile (where zero-padded CNNs
    are least reliable) far less say than the neighbour's interior; the stitcher normalises by the sum.
    """
    weight = np.ones(tile, dtype=np.float64)
    width = min(width, tile // 2)
    if width > 0:
        d = (np.arange(width) + 0.5) / width
        ramp = np.sin(0.5 * np.pi * d) ** 4
        weight[:width] = ramp
        weight[tile - width :] = ramp[::-1]
    return np.maximum(weight, WEIGHT_FLOOR).astype(np.float32)


@dataclass(frozen=True)
class TileGrid:
    """The tiles that cover an H x W scene: top-left corners on a separable grid."""

    height: int
    width: int
    tile: int
    overlap: int

    @cached_property
    def ys(self) -> np.ndarray:
        return tile_starts(self.height, self.tile, self.overlap)

    @cached_property
    def xs(self) -> np.ndarray:
        return tile_starts(self.width, self.tile, self.overlap)

    def __len__(self) -> int:
        return len(self.ys) * len(self.xs)

    @cached_property
    def origins(self) -> np.ndarray:
        """[N, 2] (y, x) top-left corners in row-major order."""
        yy, xx = np.meshgrid(self.ys, self.xs, indexing="ij")
        return np.stack([yy.ravel(), xx.ravel()], axis=1)

    def _axis_overlap(self, starts: np.ndarray) -> int:
        """Smallest real overlap between neighbouring tiles on one axis (the blend ramp width)."""
        if len(starts) < 2:
            return 0
        return int(self.tile - np.max(np.diff(starts)))

    @cached_property
    def window(self) -> np.ndarray:
        """float32 [T, T] separable blend weight, computed once per grid."""
        wy = _ramp(self.tile, self._axis_overlap(self.ys))
        wx = _ramp(self.tile, self._axis_overlap(self.xs))
        return np.outer(wy, wx)

    def tile_valid(self, valid: np.ndarray) -> np.ndarray:
        """bool [N]: tiles that hold at least one valid pixel (all-nodata tiles are never computed)."""
        t = self.tile
        return np.fromiter((valid[y : y + t, x : x + t].any() for y, x in self.origins), dtype=bool, count=len(self))

    def extract(self, image: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """uint8 [n, T, T, C] tiles for the given tile indices; axes shorter than a tile are mirror-padded."""
        pad_y, pad_x = max(0, self.tile - self.height), max(0, self.tile - self.width)
        if pad_y or pad_x:
            image = np.pad(image, ((0, pad_y), (0, pad_x), (0, 0)), mode="symmetric")
        out = np.empty((len(indices), self.tile, self.tile, image.shape[-1]), dtype=image.dtype)
        for k, (y, x) in enumerate(self.origins[indices]):
            out[k] = image[y : y + self.tile, x : x + self.tile]
        return out
