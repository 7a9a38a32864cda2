"""The in-memory scene path, kept as the tests' reference: whole-scene reads, one-pass segmentation, GeoTIFF bytes.

Production reads scenes window by window (inference.scenes.source / segment / cluster); these helpers hold a whole
scene in memory so that tests can check the windowed answers against a straightforward single pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader, MemoryFile
from rasterio.windows import Window

from contract.errors import AgrilandError
from contract.radiometry import select_bands, to_model_input
from inference.pixels import SCENE_STRETCH, PixelSpec, scene_valid
from inference.scenes.geo import (
    SceneLimits,
    _IOProblems,
    band_positions,
    check_header,
    gdal_io_problems,
    has_dataset_mask,
    open_error,
    parse_bands,
)
from inference.scenes.tiling import TileGrid

log = logging.getLogger(__name__)
Kind = Literal["mask", "probability"]


@dataclass
class Raster:
    """A decoded scene: uint8 RGB pixels, the valid-pixel mask and the georeferencing to write results back."""

    rgb: np.ndarray  # uint8 [H, W, 3]
    valid: np.ndarray  # bool [H, W]; False = nodata (all bands zero, NaN, or equal to the nodata tag)
    crs: CRS
    transform: Affine
    name: str = "scene"
    source_dtype: str = "uint8"
    band_count: int = 3
    bands: tuple[int, ...] = (1, 2, 3)
    nodata: float | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width


def decode_whole(
    hwc: np.ndarray, band_index: tuple[int, ...], valid: np.ndarray, pixels: PixelSpec = SCENE_STRETCH
) -> np.ndarray:
    """uint8 [H, W, 3] of a whole scene held in memory (statistics from the scene itself); 0 on nodata."""
    rgb = np.ascontiguousarray(to_model_input(select_bands(hwc, band_index), pixels.radiometry, valid, pixels.scaling))
    rgb[~valid] = 0
    return rgb


def _read(
    ds: DatasetReader,
    name: str,
    bands: tuple[int, ...] | None,
    limits: SceneLimits,
    pixels: PixelSpec,
    problems: _IOProblems,
) -> Raster:
    """Read the selected bands, build the valid mask, scale to the model's uint8 (radiometry contract)."""
    if problems.messages:
        raise AgrilandError(f"{name} is truncated or corrupt: {problems.messages[0]}")
    chosen = check_header(ds, name, bands, limits)
    unique = tuple(dict.fromkeys(chosen))
    try:
        data = ds.read(indexes=list(unique))  # [B, H, W], each band read once
        extra_mask = ds.dataset_mask() if has_dataset_mask(ds) else None
    except RasterioError as err:
        raise AgrilandError(f"{name} is truncated or corrupt: {err}") from err
    if problems.messages:
        raise AgrilandError(f"{name} is truncated or corrupt: {problems.messages[0]}")
    hwc = np.moveaxis(data, 0, -1)
    nodata = ds.nodata
    valid = scene_valid(hwc, nodata, extra_mask)
    rgb = decode_whole(hwc, band_positions(unique, chosen), valid, pixels)
    log.info(
        "%s: %dx%d %s, %d band(s), bands %s, %.1f%% valid, CRS %s",
        name,
        ds.width,
        ds.height,
        ds.dtypes[0],
        ds.count,
        chosen,
        100.0 * valid.mean(),
        ds.crs.to_string(),
    )
    return Raster(
        rgb=rgb,
        valid=valid,
        crs=ds.crs,
        transform=ds.transform,
        name=name,
        source_dtype=str(ds.dtypes[0]),
        band_count=ds.count,
        bands=chosen,
        nodata=None if nodata is None else float(nodata),
        tags={str(k): str(v) for k, v in ds.tags().items()},
    )


def read_scene(
    path: Path | str,
    bands: str | tuple[int, ...] | None = None,
    limits: SceneLimits | None = None,
    pixels: PixelSpec = SCENE_STRETCH,
) -> Raster:
    """Read a GeoTIFF scene from disk into a Raster (uint8 RGB + valid mask + CRS/transform)."""
    path = Path(path)
    if not path.is_file():
        raise AgrilandError(f"no such scene file: {path}")
    try:
        with gdal_io_problems() as problems, rasterio.open(path) as ds:
            return _read(ds, path.name, parse_bands(bands), limits or SceneLimits(), pixels, problems)
    except RasterioError as err:
        raise open_error(path.name, err) from err


def scene_from_bytes(
    data: bytes,
    bands: str | tuple[int, ...] | None = None,
    limits: SceneLimits | None = None,
    pixels: PixelSpec = SCENE_STRETCH,
    name: str = "upload",
) -> Raster:
    """Decode GeoTIFF bytes (an HTTP upload) with the limits applied; every bad input is an AgrilandError."""
    if not data:
        raise AgrilandError(f"{name} is empty (0 bytes)")
    if data[:4] not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        raise AgrilandError(f"{name} is not a GeoTIFF (no TIFF header)")
    try:
        with gdal_io_problems() as problems, MemoryFile(data) as memfile, memfile.open() as ds:
            return _read(ds, name, parse_bands(bands), limits or SceneLimits(), pixels, problems)
    except RasterioError as err:
        raise open_error(name, err) from err


class ArraySource:
    """An in-memory scene (uint8 RGB + valid mask) as a window source."""

    def __init__(self, rgb: np.ndarray, valid: np.ndarray, crs: CRS, transform: Affine, name: str = "scene") -> None:
        self.rgb, self.valid, self.crs, self.transform, self.name = rgb, valid, crs, transform, name
        self.height, self.width = int(rgb.shape[0]), int(rgb.shape[1])

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        rows, cols = window.toslices()
        return self.rgb[rows, cols], self.valid[rows, cols]


class ArraySink:
    """Collects the blocks into whole-scene probability, mask and valid arrays (the in-memory path)."""

    def __init__(self, height: int, width: int) -> None:
        self.probability = np.zeros((height, width), dtype=np.float32)
        self.mask = np.zeros((height, width), dtype=np.uint8)
        self.valid = np.zeros((height, width), dtype=bool)

    def write(self, window: Window, probability: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> None:
        rows, cols = window.toslices()
        self.probability[rows, cols] = probability
        self.mask[rows, cols] = mask
        self.valid[rows, cols] = valid


class Stitcher:
    """Accumulates weighted tile predictions into a scene-size probability map."""

    def __init__(self, grid: TileGrid) -> None:
        self.grid = grid
        self._window = grid.window
        self._sum = np.zeros((grid.height, grid.width), dtype=np.float32)
        self._weight = np.zeros((grid.height, grid.width), dtype=np.float32)

    def add(self, indices: np.ndarray, predictions: np.ndarray) -> None:
        """Blend float [n, T, T] predictions for the tiles `indices` into the scene."""
        h, w, t = self.grid.height, self.grid.width, self.grid.tile
        for (y, x), pred in zip(self.grid.origins[indices], predictions):
            ch, cw = min(t, h - y), min(t, w - x)
            win = self._window[:ch, :cw]
            self._sum[y : y + ch, x : x + cw] += win * pred[:ch, :cw]
            self._weight[y : y + ch, x : x + cw] += win

    def result(self) -> np.ndarray:
        """float32 [H, W] blended map; pixels no tile covered are 0."""
        out = np.zeros_like(self._sum)
        np.divide(self._sum, self._weight, out=out, where=self._weight > 0)
        return out
