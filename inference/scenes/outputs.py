"""Small scene outputs: the quick-look PNG and JSON documents (summaries, GeoJSON), each written atomically."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from contract.atomic import write_bytes_atomic

MASK_NODATA = 255  # the mask GeoTIFFs' nodata value (0 not arable, 1 arable)
QUICKLOOK_MAX_SIDE = 1024
_ARABLE_RGB = np.array([255, 215, 0], dtype=np.float32)  # gold overlay on arable pixels
_NODATA_RGB = np.array([40, 40, 40], dtype=np.uint8)


def write_json(path: Path | str, payload: dict) -> Path:
    """Write a JSON document atomically."""
    return write_bytes_atomic(path, (json.dumps(payload, indent=1) + "\n").encode("utf-8"))


def preview_image(
    rgb: np.ndarray, mask: np.ndarray, valid: np.ndarray, max_side: int = QUICKLOOK_MAX_SIDE
) -> Image.Image:
    """Quick-look of uint8 RGB, a 0/1 mask and a valid mask (any size; resized to `max_side` at most)."""
    height, width = mask.shape
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    rgb = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR), dtype=np.float32)
    mask = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 0
    valid = np.asarray(Image.fromarray(valid.astype(np.uint8) * 255).resize(size, Image.Resampling.NEAREST)) > 0
    rgb[mask] = 0.5 * rgb[mask] + 0.5 * _ARABLE_RGB
    out = rgb.round().clip(0, 255).astype(np.uint8)
    out[~valid] = _NODATA_RGB
    return Image.fromarray(out)


def write_png(path: Path | str, image: Image.Image) -> Path:
    """Write a PNG atomically."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return write_bytes_atomic(path, buffer.getvalue())
