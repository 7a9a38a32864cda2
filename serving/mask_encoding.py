"""Mask encodings of the HTTP answers: PNG, base64 PNG, 16-bit instance PNG, run-length."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from contract.errors import AgrilandError


def instances_png_base64(labels: np.ndarray) -> str:
    """Field instance labels (0 = not field, k = field k) as a base64 16-bit grayscale PNG."""
    if labels.size and int(labels.max()) > 65535:
        raise AgrilandError(f"{int(labels.max())} fields do not fit a 16-bit instance mask")
    buffer = io.BytesIO()
    Image.fromarray(labels.astype(np.uint16)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def mask_png(mask: np.ndarray) -> bytes:
    """A 0/1 mask as an 8-bit grayscale PNG with values 0 and 255.

    zlib level 1: a speckled 64 px mask encodes in ~50 us instead of ~270 us at Pillow's default 6, ~20 % larger
    (two-valued masks compress well at any level)."""
    buffer = io.BytesIO()
    Image.fromarray(mask.astype(bool).view(np.uint8) * np.uint8(255)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def mask_png_base64(mask: np.ndarray) -> str:
    return base64.b64encode(mask_png(mask)).decode("ascii")


def rle_encode(mask: np.ndarray) -> list[int]:
    """Run lengths of a 0/1 mask in row-major order, starting with a run of 0s (possibly empty)."""
    flat = np.asarray(mask, dtype=bool).ravel()
    if flat.size == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat[0] else runs


def rle_decode(counts: list[int], height: int, width: int) -> np.ndarray:
    """Inverse of `rle_encode`: uint8 [H, W] with values 0 and 1."""
    if sum(counts) != height * width or any(c < 0 for c in counts):
        raise AgrilandError(f"RLE counts sum to {sum(counts)}, expected {height * width} for {height}x{width}")
    values = np.arange(len(counts)) % 2
    return np.repeat(values.astype(np.uint8), counts).reshape(height, width)
