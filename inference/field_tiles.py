"""Fields of single images (the /segment tile answer) from the field model: each image resampled to the model's
working resolution, cut into overlapping model tiles, the planes blended back, resampled to the input grid and
turned into fields — the scene engine's steps for images small enough to hold in memory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from contract.manifest import FieldModelSpec
from inference.field_instances import instances
from inference.field_model import BOUNDARY, EXTENT, instance_options
from inference.fields import Fields
from inference.scenes.tiling import TileGrid

MAX_WORK_PIXELS = 64 * 1024 * 1024


@dataclass(frozen=True)
class FieldTiles:
    """Model tiles of several images and where each image's tiles lie in the batch."""

    batch: np.ndarray  # uint8 [M, T, T, 3]
    grids: list[TileGrid]
    offsets: list[int]  # first batch index of each image
    source_shapes: list[tuple[int, int]]
    gsd_m: float  # of the inputs


def _resample(array: np.ndarray, shape: tuple[int, int], smooth_down: bool) -> np.ndarray:
    if array.shape[:2] == shape:
        return array
    size = (shape[1], shape[0])
    if array.dtype == np.uint8:
        method = Image.Resampling.BOX if smooth_down and shape[0] < array.shape[0] else Image.Resampling.BILINEAR
        return np.asarray(Image.fromarray(array).resize(size, method))
    return np.asarray(Image.fromarray(np.ascontiguousarray(array), mode="F").resize(size, Image.Resampling.BILINEAR))


def field_tiles(
    images: list[np.ndarray], gsd_m: float, spec: FieldModelSpec, tile: int, quality: str = "fast"
) -> FieldTiles:
    """Every image (uint8 RGB at `gsd_m` m/px) at the working resolution, cut into overlapping `tile` px tiles."""
    work = spec.working_gsd(gsd_m, quality)
    tiles: list[np.ndarray] = []
    grids: list[TileGrid] = []
    offsets: list[int] = []
    shapes: list[tuple[int, int]] = []
    for image in images:
        h, w = image.shape[:2]
        shape = (max(1, round(h * gsd_m / work)), max(1, round(w * gsd_m / work)))
        if shape[0] * shape[1] > MAX_WORK_PIXELS:
            from contract.errors import AgrilandError

            raise AgrilandError(
                f"a {w}x{h} image at {gsd_m} m/px is too large at the field model's {work} m/px; "
                "use the scene segmentation"
            )
        resized = _resample(image, shape, smooth_down=True)
        grid = TileGrid(shape[0], shape[1], tile, tile // 8)
        offsets.append(sum(len(t) for t in tiles))
        tiles.append(grid.extract(resized, np.arange(len(grid))))
        grids.append(grid)
        shapes.append((h, w))
    return FieldTiles(np.concatenate(tiles), grids, offsets, shapes, gsd_m)


def _blend(planes: np.ndarray, grid: TileGrid) -> np.ndarray:
    """[n, T, T, C] planes of one image's tiles -> [h, w, C] weighted average (the scene engine's blend)."""
    t, window = grid.tile, grid.window
    height, width = max(grid.height, t), max(grid.width, t)
    total = np.zeros((height, width, planes.shape[-1]), np.float32)
    weight = np.zeros((height, width), np.float32)
    for pred, (y, x) in zip(planes, grid.origins):
        total[y : y + t, x : x + t] += pred * window[..., None]
        weight[y : y + t, x : x + t] += window
    return (total / np.maximum(weight, 1e-6)[..., None])[: grid.height, : grid.width]


def fields_of_tiles(
    planes: np.ndarray, tiles: FieldTiles, spec: FieldModelSpec, valids: list[np.ndarray]
) -> list[tuple[Fields, np.ndarray]]:
    """Per image: its fields on the input grid and the field-extent probability there."""
    out = []
    options = instance_options(spec)
    for k, (grid, start, shape) in enumerate(zip(tiles.grids, tiles.offsets, tiles.source_shapes)):
        blended = _blend(planes[start : start + len(grid)], grid)
        extent = np.clip(_resample(blended[..., EXTENT], shape, smooth_down=False), 0, 1)
        boundary = np.clip(_resample(blended[..., BOUNDARY], shape, smooth_down=False), 0, 1)
        valid = valids[k]
        extent = np.where(valid, extent, 0).astype(np.float32)
        out.append((instances(extent, boundary, valid, tiles.gsd_m, options), extent))
    return out
