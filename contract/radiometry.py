"""Band selection and radiometric scaling of raw imagery (uint16, float, nodata) to uint8 RGB; TF-free."""

from __future__ import annotations

import numpy as np

from contract.errors import AgrilandError

DEFAULT_STRETCH: tuple[float, float] = (2.0, 98.0)
# Percentiles are estimated from at most this many valid pixels (an even stride, so deterministic).
MAX_STRETCH_SAMPLES = 1_000_000


def select_bands(array: np.ndarray, bands: tuple[int, ...] | None = None) -> np.ndarray:
    """Pick bands (1-based, rasterio style) from an HxWxC array; grayscale is repeated to RGB.

    Default: bands 1,2,3 for three or more bands; one band is repeated three times.
    """
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3:
        raise AgrilandError(f"expected an image with 2 or 3 dimensions, got shape {array.shape}")
    n_bands = array.shape[-1]
    if bands is None:
        if n_bands == 1:
            return np.repeat(array, 3, axis=-1)
        if n_bands == 2:
            raise AgrilandError("an image with 2 bands has no RGB; pass the band order explicitly")
        bands = (1, 2, 3)
    if len(bands) == 1:
        bands = bands * 3
    if len(bands) != 3:
        raise AgrilandError(f"select exactly 3 bands for RGB (or 1 for grayscale), got {bands}")
    for band in bands:
        if not 1 <= band <= n_bands:
            raise AgrilandError(f"band {band} does not exist: the image has {n_bands} band(s)")
    return array[..., [b - 1 for b in bands]]


def valid_mask(array: np.ndarray, nodata: float | None = None) -> np.ndarray:
    """HxW boolean: pixels that are not nodata (NaN anywhere, or every band equal to `nodata`)."""
    if array.ndim == 2:
        array = array[..., None]
    invalid = np.zeros(array.shape[:2], dtype=bool)
    if np.issubdtype(array.dtype, np.floating):
        invalid |= np.isnan(array).any(axis=-1)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        invalid |= np.all(array == nodata, axis=-1)
    return ~invalid


def to_uint8(
    array: np.ndarray,
    stretch: tuple[float, float] | None = DEFAULT_STRETCH,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Scale an HxWxC image to uint8.

    uint8 input is returned unchanged. Other types get a per-band percentile stretch: values at the
    `stretch[0]` percentile map to 0 and at `stretch[1]` to 255, computed over valid pixels only.
    With `stretch=None` integer types are scaled by their full range (uint16: /257).
    """
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    data = array.astype(np.float32)
    if valid is None:
        valid = valid_mask(array)
    if data.ndim == 2:
        data = data[..., None]
    out = np.zeros(data.shape, dtype=np.uint8)
    if not valid.any():
        return out if array.ndim == 3 else out[..., 0]
    if stretch is None and np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        low = np.full(data.shape[-1], float(max(info.min, 0)))
        high = np.full(data.shape[-1], float(info.max))
    else:
        lo_pct, hi_pct = stretch or (0.0, 100.0)
        if not 0.0 <= lo_pct < hi_pct <= 100.0:
            raise AgrilandError(f"stretch percentiles must satisfy 0 <= low < high <= 100, got {stretch}")
        samples = data[valid]
        if len(samples) > MAX_STRETCH_SAMPLES:
            samples = samples[:: -(-len(samples) // MAX_STRETCH_SAMPLES)]
        low = np.percentile(samples, lo_pct, axis=0)
        high = np.percentile(samples, hi_pct, axis=0)
    scale = np.where(high > low, 255.0 / np.maximum(high - low, 1e-12), 0.0)
    scaled = (np.nan_to_num(data, nan=0.0) - low) * scale
    out = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    out[~valid] = 0
    return out if array.ndim == 3 else out[..., 0]
