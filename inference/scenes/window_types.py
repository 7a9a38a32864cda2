"""The windowed engine's vocabulary: how a scene is cut (WindowParams), what reads it and what takes its blocks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window

from contract.errors import AgrilandError

Predict = Callable[[np.ndarray], np.ndarray]
# (rgb, probability, valid) of one output block -> its 0/1 mask; None: the plain threshold
Refine = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
DEFAULT_BLOCK = 1024  # output block side; memory is ~ (block + 2 tiles)^2 pixels plus one row of edge tiles
DEFAULT_SIEVE_PX = 4  # regions (specks, holes) of fewer pixels are merged into their surroundings
MAX_SIEVE_PX = 4096  # the halo read around each block grows with it


def default_overlap(tile_size: int) -> int:
    """Pixels shared by neighbouring tiles when none is asked for: 1/8 of the model tile (service, CLI, batch)."""
    return tile_size // 8


@dataclass(frozen=True)
class WindowParams:
    """How a scene is cut: model tile, overlap between tiles, output block side, and the arable cut."""

    tile_size: int
    overlap: int = 32
    threshold: float = 0.5
    batch_size: int = 8
    block_size: int = DEFAULT_BLOCK
    sieve_px: int = 0  # <= 1: every pixel kept; see `probability_to_mask`

    @property
    def halo(self) -> int:
        """Pixels of context around each block for the mask step: a region of fewer than `sieve_px` pixels that
        meets the block lies wholly inside block + halo, and a larger one cannot look small there."""
        return self.sieve_px if self.sieve_px > 1 else 0

    def check(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise AgrilandError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.batch_size <= 0:
            raise AgrilandError(f"batch size must be positive, got {self.batch_size}")
        if self.block_size <= 0:
            raise AgrilandError(f"block size must be positive, got {self.block_size}")
        if not 0 <= self.sieve_px <= MAX_SIEVE_PX:
            raise AgrilandError(f"sieve_px must be in [0, {MAX_SIEVE_PX}], got {self.sieve_px}")


class SceneSource(Protocol):
    """Anything that hands out windows of a scene as uint8 RGB plus a valid-pixel mask."""

    name: str
    height: int
    width: int
    crs: CRS
    transform: Affine

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [h, w, 3] RGB (0 on nodata) and bool [h, w] valid pixels of `window`."""
        ...


class BlockSink(Protocol):
    """Receives finished output blocks (row-major order, each exactly once)."""

    def write(self, window: Window, probability: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> None: ...


@dataclass
class WindowedStats:
    """What a windowed run computed."""

    n_tiles: int = 0  # tiles run through the model
    n_tiles_skipped: int = 0  # tiles that held only nodata
    n_blocks: int = 0
