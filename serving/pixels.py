"""The one place serving turns raw bands into model RGB: calls into contract.radiometry, whole or by window."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contract.radiometry import MAX_STRETCH_SAMPLES, select_bands, to_uint8, valid_mask

__all__ = ["MAX_STRETCH_SAMPLES", "Radiometry", "decode_whole", "scene_valid"]


def scene_valid(hwc: np.ndarray, nodata: float | None, extra_mask: np.ndarray | None = None) -> np.ndarray:
    """bool [H, W]: not NaN, not every band equal to the nodata tag, not every band zero, not masked."""
    valid = valid_mask(hwc, nodata) & valid_mask(hwc, 0)
    if extra_mask is not None:
        valid &= extra_mask > 0
    return valid


def decode_whole(hwc: np.ndarray, band_index: tuple[int, ...], valid: np.ndarray,
                 stretch: tuple[float, float] | None) -> np.ndarray:
    """uint8 [H, W, 3] of a whole scene held in memory (statistics from the scene itself); 0 on nodata."""
    rgb = np.ascontiguousarray(to_uint8(select_bands(hwc, band_index), stretch, valid))
    rgb[~valid] = 0
    return rgb


def needs_statistics(dtype: np.dtype, stretch: tuple[float, float] | None) -> bool:
    """Whether scaling depends on the whole scene (a percentile stretch) rather than on each pixel alone."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8 or dtype == np.bool_:
        return False
    return not (stretch is None and np.issubdtype(dtype, np.integer))


@dataclass(frozen=True)
class Radiometry:
    """Scene-wide scaling fixed once, then applied to any window: the same numbers `to_uint8` would use.

    `low`/`high` are the per-band percentile limits over the scene's valid pixels (sampled exactly as
    `contract.radiometry.to_uint8` samples them); None when scaling needs no statistics.
    """

    band_index: tuple[int, ...]  # 1-based positions in the array handed to `apply` (after unique-band reading)
    stretch: tuple[float, float] | None
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    empty: bool = False  # the scene has no valid pixel at all

    def select(self, hwc: np.ndarray) -> np.ndarray:
        return select_bands(hwc, self.band_index)

    def apply(self, hwc: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """uint8 [h, w, 3] of one window; 0 on nodata."""
        chosen = self.select(hwc)
        if self.empty:
            return np.zeros(chosen.shape[:2] + (3,), dtype=np.uint8)
        if self.low is None or self.high is None:
            rgb = np.array(to_uint8(chosen, self.stretch, valid), dtype=np.uint8, copy=True)
        else:
            data = chosen.astype(np.float32)
            scale = np.where(self.high > self.low, 255.0 / np.maximum(self.high - self.low, 1e-12), 0.0)
            scaled = (np.nan_to_num(data, nan=0.0) - self.low) * scale
            rgb = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        rgb[~valid] = 0
        return np.ascontiguousarray(rgb)

    @classmethod
    def from_samples(cls, band_index: tuple[int, ...], stretch: tuple[float, float] | None,
                     samples: np.ndarray) -> "Radiometry":
        """Limits from float32 [n, 3] valid-pixel samples, with `to_uint8`'s percentile rule."""
        if len(samples) == 0:
            return cls(band_index, stretch, empty=True)
        lo_pct, hi_pct = stretch or (0.0, 100.0)
        low = np.percentile(samples, lo_pct, axis=0)
        high = np.percentile(samples, hi_pct, axis=0)
        return cls(band_index, stretch, low=low, high=high)


class SampleCollector:
    """Streams windows in row-major order and keeps every k-th valid pixel, as `to_uint8` strides `data[valid]`."""

    def __init__(self, radiometry_bands: tuple[int, ...], n_valid: int) -> None:
        self.band_index = radiometry_bands
        self.stride = max(1, -(-n_valid // MAX_STRETCH_SAMPLES)) if n_valid > MAX_STRETCH_SAMPLES else 1
        self.seen = 0
        self.parts: list[np.ndarray] = []

    def add(self, hwc: np.ndarray, valid: np.ndarray) -> None:
        values = select_bands(hwc, self.band_index).astype(np.float32)[valid]
        first = (-self.seen) % self.stride
        self.parts.append(values[first :: self.stride])
        self.seen += len(values)

    def samples(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros((0, 3), dtype=np.float32)
