"""GeoTIFF scenes in: band presets and selection, header checks and limits, GDAL I/O problems as clear errors."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from affine import Affine
from rasterio.enums import MaskFlags
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import DatasetReader

from contract.errors import AgrilandError

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 100_000_000  # 10,000 x 10,000; ~300 MB as uint8 RGB, ~400 MB as float32 probability

# 1-based band indexes in R, G, B order. Pass a preset name or an explicit list such as "4,3,2".
BAND_PRESETS: dict[str, tuple[int, int, int]] = {
    # Bands 1,2,3 are red, green, blue (ordinary RGB / RGBA / NAIP RGBN GeoTIFFs).
    "rgb": (1, 2, 3),
    # Sentinel-2 full 13-band stack in ESA order B1,B2,B3,B4,B5,B6,B7,B8,B8A,B9,B10,B11,B12: B4,B3,B2.
    "sentinel2": (4, 3, 2),
    # Sentinel-2 10 m stack B2,B3,B4,B8 (blue, green, red, NIR), the common 4-band download: B4,B3,B2.
    "sentinel2-10m": (3, 2, 1),
    # Landsat 8/9 OLI stack starting at B1 (coastal): B4 red, B3 green, B2 blue.
    "landsat8": (4, 3, 2),
    # Landsat 4-7 TM/ETM+ stack starting at B1 (blue): B3 red, B2 green, B1 blue.
    "landsat7": (3, 2, 1),
    # Blue, green, red, NIR stacks (PlanetScope 4-band and similar): bands 3,2,1.
    "bgrn": (3, 2, 1),
}


@dataclass(frozen=True)
class SceneLimits:
    """What a scene may be; checked from the header before any pixel is read."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bands: int = 64


def parse_bands(spec: str | tuple[int, ...] | list[int] | None) -> tuple[int, ...] | None:
    """A preset name (see BAND_PRESETS), a comma list of 1-based bands ("4,3,2"), a sequence, or None."""
    if spec is None:
        return None
    if isinstance(spec, (tuple, list)):
        bands = tuple(int(b) for b in spec)
    else:
        text = spec.strip().lower()
        if text in BAND_PRESETS:
            return BAND_PRESETS[text]
        try:
            bands = tuple(int(part) for part in text.split(",") if part.strip())
        except ValueError as err:
            presets = ", ".join(BAND_PRESETS)
            raise AgrilandError(f"bands must be a preset ({presets}) or a comma list like 4,3,2, got {spec!r}") from err
    if len(bands) not in (1, 3) or any(b < 1 for b in bands):
        raise AgrilandError(f"select 3 bands (R,G,B) or 1 (grayscale), 1-based, got {spec!r}")
    return bands


def check_header(ds: DatasetReader, name: str, bands: tuple[int, ...] | None, limits: SceneLimits) -> tuple[int, ...]:
    """Refuse what cannot be a scene before reading pixels; return the bands to read."""
    if ds.driver != "GTiff":
        raise AgrilandError(f"{name} is a {ds.driver} file, not a GeoTIFF")
    if ds.width <= 0 or ds.height <= 0:
        raise AgrilandError(f"{name} has zero size ({ds.width}x{ds.height} pixels)")
    if ds.crs is None:
        raise AgrilandError(
            f"{name} has no CRS (coordinate reference system); georeference it first, e.g. gdal_edit.py -a_srs EPSG:..."
        )
    if ds.transform == Affine.identity():
        raise AgrilandError(f"{name} has no geotransform (pixel size and origin); georeference it first")
    pixels = ds.width * ds.height
    if pixels > limits.max_pixels:
        raise AgrilandError(
            f"{name} is {ds.width}x{ds.height} = {pixels:,} pixels, over the limit of {limits.max_pixels:,}; "
            "cut it into smaller scenes or raise the limit"
        )
    if ds.count > limits.max_bands:
        raise AgrilandError(f"{name} has {ds.count} bands, over the limit of {limits.max_bands}")
    if bands is None:
        if ds.count == 2:
            raise AgrilandError(
                f"{name} has too few bands (2) for RGB; choose 1 or 3 band numbers "
                "(the `bands` option, or `--bands` on the command line)"
            )
        bands = (1, 1, 1) if ds.count == 1 else (1, 2, 3)
    for band in bands:
        if band > ds.count:
            raise AgrilandError(f"{name} has too few bands: band {band} was asked for but it has {ds.count}")
    return bands


class _IOProblems(logging.Handler):
    """Collects GDAL's I/O warnings (rasterio logs them): tags past the end of a truncated file."""

    _SIGNS = ("io error", "read error", "truncat", "cannot read", "short read")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if any(sign in text.lower() for sign in self._SIGNS):
            self.messages.append(text)


@contextmanager
def gdal_io_problems() -> Iterator[_IOProblems]:
    handler = _IOProblems()
    logger = logging.getLogger("rasterio._env")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            yield handler
    finally:
        logger.removeHandler(handler)


def band_positions(unique: tuple[int, ...], chosen: tuple[int, ...]) -> tuple[int, ...]:
    """1-based positions of the chosen bands in an array that holds each of `unique` once."""
    return tuple(unique.index(b) + 1 for b in chosen)


def has_dataset_mask(ds: DatasetReader) -> bool:
    """Whether the file carries a per-dataset or alpha mask that marks nodata beyond the band values."""
    return any(MaskFlags.per_dataset in flags or MaskFlags.alpha in flags for flags in ds.mask_flag_enums)


def open_error(name: str, err: Exception) -> AgrilandError:
    text = str(err)
    if "zero" in text.lower() and ("size" in text.lower() or "width" in text.lower()):
        return AgrilandError(f"{name} has zero size: {text}")
    if "not recognized" in text or "not a tiff" in text.lower():
        return AgrilandError(f"{name} is not a GeoTIFF (format not recognised)")
    return AgrilandError(f"{name} cannot be read as a GeoTIFF (truncated or corrupt?): {text}")
