"""The one place serving turns raw bands into model RGB: calls into contract.radiometry, whole or by window."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from contract.radiometry import (
    DEFAULT_RADIOMETRY,
    MAX_STRETCH_SAMPLES,
    AppliedRadiometry,
    Calibration,
    Radiometry,
    Scaling,
    calibrated_to_uint8,
    looks_like_reflectance,
    percentile_limits,
    reflectance_to_uint8,
    select_bands,
    stretch_to_uint8,
    to_uint8,
    valid_mask,
)

__all__ = ["MAX_STRETCH_SAMPLES", "Calibration", "PixelSpec", "WindowScaler", "scene_valid"]

SENTINEL2_RGB = (4, 3, 2)


@dataclass(frozen=True)
class PixelSpec:
    """Which bands make RGB and how 16-bit/float values are scaled: a model manifest's radiometry contract plus
    the request's overrides. Tiles, scenes, the CLI and the batch job all scale pixels through one of these."""

    radiometry: Radiometry = DEFAULT_RADIOMETRY
    bands: tuple[int, ...] | None = None
    scaling: Scaling | None = None
    calibration: Calibration | None = None  # what a catalogue (STAC raster:bands) says of the file's DN

    def bands_for(self, n_bands: int) -> tuple[int, ...] | None:
        """Requested bands, else B4,B3,B2 for a 12/13-band Sentinel-2 stack, else the default (1,2,3)."""
        if self.bands is not None:
            return self.bands
        return SENTINEL2_RGB if n_bands in (12, 13) else None

    def scaling_for(self, dtype: np.dtype) -> Scaling | None:
        """None (taken as is), reflectance or percentile, for an array of `dtype`."""
        return self.radiometry.scaling_for(np.dtype(dtype), self.scaling)


# Scene readers called without a model contract keep their historical scene-wide 2-98 % stretch.
SCENE_STRETCH = PixelSpec(scaling="percentile")


def scene_valid(hwc: np.ndarray, nodata: float | None, extra_mask: np.ndarray | None = None) -> np.ndarray:
    """bool [H, W]: not NaN, not every band equal to the nodata tag, not every band zero, not masked."""
    valid = valid_mask(hwc, nodata) & valid_mask(hwc, 0)
    if extra_mask is not None:
        valid &= extra_mask > 0
    return valid


@dataclass(frozen=True)
class WindowScaler:
    """Scene-wide scaling fixed once, then applied to any window: the same numbers `decode_whole` would use.

    `low`/`high` are the per-band percentile limits over the scene's valid pixels (sampled exactly as
    `contract.radiometry.to_uint8` samples them) for a percentile stretch; reflectance scaling is per pixel
    (`float_is_reflectance` decided once for the scene).
    """

    band_index: tuple[int, ...]  # 1-based positions in the array handed to `apply` (after unique-band reading)
    pixels: PixelSpec = SCENE_STRETCH
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    empty: bool = False  # the scene has no valid pixel at all
    float_is_reflectance: bool = False
    gain: np.ndarray | None = None  # reflectance = DN * gain + bias per chosen band (reflectance scaling)
    bias: np.ndarray | None = None
    applied: AppliedRadiometry | None = None  # what an answer reports

    def select(self, hwc: np.ndarray) -> np.ndarray:
        return select_bands(hwc, self.band_index)

    def apply(self, hwc: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """uint8 [h, w, 3] of one window; 0 on nodata."""
        chosen = self.select(hwc)
        if self.empty:
            return np.zeros(chosen.shape[:2] + (3,), dtype=np.uint8)
        if self.low is not None and self.high is not None:
            rgb = stretch_to_uint8(chosen.astype(np.float32), self.low, self.high)
        elif self.gain is not None and self.bias is not None:
            rgb = calibrated_to_uint8(chosen, self.gain, self.bias, self.pixels.radiometry.reflectance_white, valid)
        elif self.pixels.scaling_for(chosen.dtype) == "reflectance":
            is_reflectance = self.float_is_reflectance and np.issubdtype(chosen.dtype, np.floating)
            rgb = reflectance_to_uint8(chosen, self.pixels.radiometry, valid, is_reflectance)
        else:
            rgb = np.array(to_uint8(chosen), dtype=np.uint8, copy=True)
        rgb[~valid] = 0
        return np.ascontiguousarray(rgb)

    @classmethod
    def from_samples(cls, band_index: tuple[int, ...], pixels: PixelSpec, samples: np.ndarray) -> WindowScaler:
        """Percentile limits from float32 [n, 3] valid-pixel samples, with `to_uint8`'s rule."""
        if len(samples) == 0:
            return cls(band_index, pixels, empty=True)
        low, high = percentile_limits(samples, pixels.radiometry.percentiles)
        return cls(band_index, pixels, low=low, high=high)

    @classmethod
    def for_reflectance(cls, band_index: tuple[int, ...], pixels: PixelSpec, samples: np.ndarray) -> WindowScaler:
        """Per-pixel reflectance scaling; float scenes are checked once for reflectance vs digital numbers."""
        is_reflectance = looks_like_reflectance(samples, np.ones(len(samples), bool)) if len(samples) else True
        return cls(band_index, pixels, float_is_reflectance=is_reflectance)


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
