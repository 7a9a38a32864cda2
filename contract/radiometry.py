"""The radiometry contract: band selection, nodata, and how 8/16-bit and float pixels become the model's uint8 input."""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

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


def percentile_limits(samples: np.ndarray, percentiles: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-band (low, high) at the `percentiles` of [n, bands] valid-pixel samples: the one percentile stretch.

    Every path that stretches (tiles, windowed scenes, GeoTIFF training folders) takes its limits from here and
    applies them with `stretch_to_uint8`; no samples give all-zero limits (a flat, black result).
    """
    lo_pct, hi_pct = percentiles
    if not 0.0 <= lo_pct < hi_pct <= 100.0:
        raise AgrilandError(f"stretch percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")
    if not len(samples):
        bands = samples.shape[-1] if samples.ndim == 2 else 1
        return np.zeros(bands), np.zeros(bands)
    return np.percentile(samples, lo_pct, axis=0), np.percentile(samples, hi_pct, axis=0)


def stretch_to_uint8(data: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Each band linearly from [low, high] to 0..255, clipped; a flat band (high <= low) and NaN become 0."""
    scale = np.where(high > low, 255.0 / np.maximum(high - low, 1e-12), 0.0)
    scaled = (np.nan_to_num(data, nan=0.0) - low) * scale
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


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
        samples = data[valid]
        if len(samples) > MAX_STRETCH_SAMPLES:
            samples = samples[:: -(-len(samples) // MAX_STRETCH_SAMPLES)]
        low, high = percentile_limits(samples, stretch or (0.0, 100.0))
    out = stretch_to_uint8(data, low, high)
    out[~valid] = 0
    return out if array.ndim == 3 else out[..., 0]


Scaling = Literal["reflectance", "percentile"]


class Radiometry(BaseModel):
    """How pixels of any type become the model's uint8 RGB input: recorded in every manifest, applied everywhere.

    uint8 images are taken as they are (they are assumed to be 8-bit renderings like the training tiles).
    Integer images (uint16 Sentinel-2 / Landsat / Planet products) and float images use `integer_scaling` /
    `float_scaling`: `reflectance` maps (DN + offset) / scale linearly so that `reflectance_white` becomes 255
    (the training tiles' own rendering); `percentile` stretches each band between the given percentiles of the
    valid pixels (for uncalibrated data). The model was trained at `gsd_m` metres per pixel.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bands: tuple[str, str, str] = ("red", "green", "blue")
    rendering: str = "Sentinel-2 L1C B4-B3-B2, reflectance 0..0.275 linear to 0..255 (EuroSAT RGB)"
    integer_scaling: Scaling = "reflectance"
    float_scaling: Scaling = "reflectance"
    reflectance_scale: float = Field(default=10000.0, gt=0)
    reflectance_offset: float = 0.0
    reflectance_white: float = Field(default=0.275, gt=0)
    percentiles: tuple[float, float] = DEFAULT_STRETCH
    gsd_m: float = Field(default=10.0, gt=0)

    def scaling_for(self, dtype: np.dtype, override: Scaling | None = None) -> Scaling | None:
        """The scaling applied to an array of `dtype` (None: uint8/bool, taken as they are)."""
        if dtype == np.uint8 or dtype == np.bool_:
            return None
        if override is not None:
            return override
        return self.float_scaling if np.issubdtype(dtype, np.floating) else self.integer_scaling


DEFAULT_RADIOMETRY = Radiometry()
# Past this share of valid pixels clipped at white (or all black), pixels are not the reflectance assumed.
IMPLAUSIBLE_CLIPPED = 0.5


class Calibration(BaseModel):
    """Digital numbers to surface reflectance as a file or its catalogue states it: reflectance = DN * gain + bias.

    `gain`/`bias` hold one value per band of the file (or one value for every band); `source` says who said so.
    """

    model_config = ConfigDict(frozen=True)

    gain: tuple[float, ...]
    bias: tuple[float, ...]
    source: str

    def for_bands(self, bands: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """float64 gain and bias of the given 1-based file bands."""

        def pick(values: tuple[float, ...]) -> np.ndarray:
            return np.array([values[0] if len(values) == 1 else values[b - 1] for b in bands], dtype=np.float64)

        return pick(self.gain), pick(self.bias)

    @classmethod
    def of(cls, radiometry: Radiometry) -> Calibration:
        """The manifest's own assumption, (DN + offset) / scale: what is used when the file says nothing."""
        scale = radiometry.reflectance_scale
        return cls(
            gain=(1.0 / scale,),
            bias=(radiometry.reflectance_offset / scale,),
            source=f"the model's default for digital numbers: (DN + {radiometry.reflectance_offset:g}) / "
            f"{scale:g} (nothing in the file says otherwise)",
        )


class AppliedRadiometry(BaseModel):
    """What was done to a scene's pixels, as every answer reports it."""

    scaling: Literal["as is", "reflectance", "percentile"] = Field(
        description="as is: 8-bit pixels taken unchanged; reflectance: DN * gain + bias rendered so that "
        "`reflectance_white` is 255; percentile: a per-band stretch between the scene's percentiles"
    )
    source: str = Field(description="where the numbers came from (the file's tags, a catalogue, the request, ...)")
    # lists are empty where they do not apply (never null: BentoML's clients cannot decode a null list)
    gain: list[float] = Field(default_factory=list, description="per R, G, B band (reflectance scaling)")
    bias: list[float] = Field(default_factory=list, description="per R, G, B band (reflectance scaling)")
    reflectance_white: float | None = None
    percentiles: list[float] = Field(default_factory=list)
    low: list[float] = Field(default_factory=list, description="per band value mapped to 0 (percentile scaling)")
    high: list[float] = Field(default_factory=list, description="per band value mapped to 255 (percentile scaling)")
    clipped_fraction: float | None = Field(
        default=None,
        description="share of valid pixels saturated at white or black under the scaling that was checked first",
    )
    warning: str | None = Field(default=None, description="set when the pixels did not look like what was assumed")


def calibrated_to_uint8(
    array: np.ndarray, gain: np.ndarray | float, bias: np.ndarray | float, white: float, valid: np.ndarray | None = None
) -> np.ndarray:
    """Linear reflectance rendering: (DN * gain + bias) -> 0..255 with reflectance `white` at 255; per-band
    gain/bias broadcast over the last axis."""
    k = 255.0 / white
    gain_k = np.asarray(gain, dtype=np.float64) * k
    bias_k = np.asarray(bias, dtype=np.float64) * k
    out = np.empty(array.shape, np.uint8)
    rows = max(1, (1 << 22) // max(1, int(np.prod(array.shape[1:]))))  # ~4M values at a time: no full float copy
    for start in range(0, array.shape[0], rows):
        block = np.nan_to_num(array[start : start + rows].astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        out[start : start + rows] = np.clip(
            np.rint(block * gain_k.astype(np.float32) + bias_k.astype(np.float32)), 0, 255
        )
    if valid is not None:
        out[~valid] = 0
    return out


def reflectance_to_uint8(
    array: np.ndarray, radiometry: Radiometry, valid: np.ndarray | None = None, is_reflectance: bool = False
) -> np.ndarray:
    """Linear reflectance rendering: (DN + offset) / scale (or reflectance as is) -> 0..255 at `reflectance_white`."""
    if is_reflectance:
        return calibrated_to_uint8(array, 1.0, 0.0, radiometry.reflectance_white, valid)
    scale = radiometry.reflectance_scale
    return calibrated_to_uint8(
        array, 1.0 / scale, radiometry.reflectance_offset / scale, radiometry.reflectance_white, valid
    )


def clipped_fraction(rgb: np.ndarray, valid: np.ndarray) -> float:
    """Share of valid pixels of a uint8 rendering saturated at white (any band 255) or black (every band 0)."""
    n = int(valid.sum())
    if n == 0:
        return 0.0
    pixels = rgb[valid]
    return float(((pixels == 255).any(axis=-1) | (pixels == 0).all(axis=-1)).sum()) / n


def to_model_input(
    array: np.ndarray,
    radiometry: Radiometry = DEFAULT_RADIOMETRY,
    valid: np.ndarray | None = None,
    scaling: Scaling | None = None,
) -> np.ndarray:
    """HxWxC (C = the 3 selected bands) of any dtype -> the model's uint8 input, by the radiometry contract."""
    chosen = radiometry.scaling_for(array.dtype, scaling)
    if chosen is None:
        return to_uint8(array)
    if valid is None:
        valid = valid_mask(array)
    if chosen == "percentile":
        low, high = radiometry.percentiles
        return to_uint8(array, (low, high), valid)
    return reflectance_to_uint8(array, radiometry, valid, is_reflectance=looks_like_reflectance(array, valid))


def looks_like_reflectance(array: np.ndarray, valid: np.ndarray) -> bool:
    """Float bands holding reflectance (0..~1.5) rather than scaled digital numbers (0..10000 as float)."""
    if not np.issubdtype(array.dtype, np.floating):
        return False
    samples = array[valid]
    if len(samples) > MAX_STRETCH_SAMPLES:
        samples = samples[:: -(-len(samples) // MAX_STRETCH_SAMPLES)]
    finite = samples[np.isfinite(samples)]
    return not len(finite) or float(np.percentile(finite, 99)) <= 2.0
