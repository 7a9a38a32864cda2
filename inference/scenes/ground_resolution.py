"""Scenes at another ground resolution: tiles cut at the source grid, resampled to the model's GSD and back."""

from __future__ import annotations

import logging
import math
from dataclasses import replace

import numpy as np
from affine import Affine
from PIL import Image
from rasterio.crs import CRS

from inference.scenes.windowed import Predict, WindowParams

log = logging.getLogger(__name__)

# Within this relative difference a scene counts as being at the model's resolution (10 m vs 10.5 m: no resampling).
GSD_TOLERANCE = 0.15
# A single tile (POST /segment with gsd=) is resampled from a 2 % difference on: it is small, and its caller named
# its resolution on purpose.
TILE_GSD_TOLERANCE = 0.02
MIN_SOURCE_TILE = 8
METRES_PER_DEGREE = 111_320.0


def pixel_size_m(crs: CRS | None, transform: Affine, height: int, width: int) -> float | None:
    """Mean ground size of a pixel in metres (projected CRS: its linear unit; geographic: at the scene centre)."""
    if crs is None:
        return None
    sx, sy = math.hypot(transform.a, transform.d), math.hypot(transform.b, transform.e)
    if crs.is_geographic:
        _, lat = transform * (width / 2, height / 2)
        return float((sx * math.cos(math.radians(lat)) + sy) / 2 * METRES_PER_DEGREE)
    factor = crs.linear_units_factor[1] if crs.linear_units_factor else 1.0
    return float((sx + sy) / 2 * factor)


def at_model_gsd(source_gsd: float | None, model_gsd: float, tolerance: float = GSD_TOLERANCE) -> bool:
    """Whether pixels of `source_gsd` m go to the model as they are (unknown resolutions do)."""
    return source_gsd is None or source_gsd <= 0 or abs(source_gsd / model_gsd - 1) <= tolerance


def resample_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 RGB resized to `size` (width, height): Lanczos when shrinking, bilinear when enlarging."""
    down = size[0] < image.shape[1]
    resample = Image.Resampling.LANCZOS if down else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(image).resize(size, resample), dtype=np.uint8)


def adapt_to_model_gsd(
    predict: Predict, params: WindowParams, source_gsd: float | None, model_gsd: float
) -> tuple[Predict, WindowParams]:
    """The same predict/params when the scene is at the model's resolution; otherwise tiles of the ground size
    the model expects are cut at the source grid, resampled to the model tile, and their answers resampled back —
    so blending, masks and polygons stay on the input grid."""
    if source_gsd is None or at_model_gsd(source_gsd, model_gsd):
        return predict, params
    factor = model_gsd / source_gsd  # source pixels per model pixel
    model_tile = params.tile_size
    source_tile = max(MIN_SOURCE_TILE, round(model_tile * factor))
    overlap = min(round(params.overlap * factor), (source_tile - 1) // 2)
    log.info(
        "scene at %.2f m/px, model at %.1f m/px: %d px source tiles resampled to the %d px model tile",
        source_gsd,
        model_gsd,
        source_tile,
        model_tile,
    )

    def resampled(batch: np.ndarray) -> np.ndarray:
        tiles = np.stack([resample_rgb(t, (model_tile, model_tile)) for t in batch])
        out = np.asarray(predict(tiles), np.float32)
        if out.ndim == 4 and out.shape[-1] == 1:
            out = out[..., 0]
        planes = out if out.ndim == 4 else out[..., None]  # a field model answers several planes

        def back(plane: np.ndarray) -> np.ndarray:
            return np.asarray(
                Image.fromarray(np.ascontiguousarray(plane), mode="F").resize(
                    (source_tile, source_tile), Image.Resampling.BILINEAR
                )
            )

        restored = np.stack([np.stack([back(p[..., c]) for c in range(p.shape[-1])], -1) for p in planes])
        return restored if out.ndim == 4 else restored[..., 0]

    return resampled, replace(
        params, tile_size=source_tile, overlap=overlap, block_size=max(params.block_size, source_tile)
    )
