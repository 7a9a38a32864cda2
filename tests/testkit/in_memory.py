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
from PIL import Image
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader, MemoryFile
from rasterio.windows import Window

from contract.atomic import atomic_file
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
from inference.scenes.outputs import MASK_NODATA, QUICKLOOK_MAX_SIDE, preview_image, write_png
from inference.scenes.polygons import ArablePolygons, SceneSummary, extract_polygons, polygons_geojson, summarize
from inference.scenes.tiling import TileGrid
from inference.scenes.windowed import DEFAULT_BLOCK, Predict, WindowedSegmenter, WindowParams

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


def decode_whole(hwc: np.ndarray, band_index: tuple[int, ...], valid: np.ndarray,
                 pixels: PixelSpec = SCENE_STRETCH) -> np.ndarray:
    """uint8 [H, W, 3] of a whole scene held in memory (statistics from the scene itself); 0 on nodata."""
    rgb = np.ascontiguousarray(to_model_input(select_bands(hwc, band_index), pixels.radiometry, valid,
                                              pixels.scaling))
    rgb[~valid] = 0
    return rgb


def _read(ds: DatasetReader, name: str, bands: tuple[int, ...] | None, limits: SceneLimits,
          pixels: PixelSpec, problems: _IOProblems) -> Raster:
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
        name, ds.width, ds.height, ds.dtypes[0], ds.count, chosen, 100.0 * valid.mean(), ds.crs.to_string(),
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


@dataclass
class SceneResult:
    """Blended arable probability and thresholded mask of one scene, with its georeferencing."""

    probability: np.ndarray  # float32 [H, W] in [0, 1]; exactly 0 on nodata
    mask: np.ndarray  # uint8 [H, W]: 1 arable, 0 not arable or nodata
    valid: np.ndarray  # bool [H, W]
    crs: CRS
    transform: Affine
    threshold: float
    tile_size: int
    overlap: int
    n_tiles: int  # tiles run through the model
    n_tiles_skipped: int  # tiles that held only nodata

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.mask.shape[0]), int(self.mask.shape[1])


def segment_scene(
    raster: Raster,
    predict: Predict,
    tile_size: int,
    overlap: int = 32,
    threshold: float = 0.5,
    batch_size: int = 8,
    progress: bool = False,
    block_size: int = DEFAULT_BLOCK,
) -> SceneResult:
    """Tile, predict in batches, blend, and threshold one in-memory scene. Nodata is never arable.

    `predict` maps a uint8 [N, T, T, 3] batch to float32 [N, T, T] or [N, T, T, 1] probabilities.
    Tiles that hold only nodata are not computed. This is the windowed engine (inference.scenes.windowed) run on
    an in-memory source; `inference.scenes.segment.segment_file` runs the same engine on a file of any size.
    """
    params = WindowParams(tile_size, overlap, threshold, batch_size, block_size)
    source = ArraySource(raster.rgb, raster.valid, raster.crs, raster.transform, raster.name)
    sink = ArraySink(raster.height, raster.width)
    stats = WindowedSegmenter(source, predict, params).run([sink], progress=progress)
    return SceneResult(
        probability=sink.probability,
        mask=sink.mask,
        valid=raster.valid,
        crs=raster.crs,
        transform=raster.transform,
        threshold=threshold,
        tile_size=tile_size,
        overlap=overlap,
        n_tiles=stats.n_tiles,
        n_tiles_skipped=stats.n_tiles_skipped,
    )


def _band(result: SceneResult, kind: Kind) -> tuple[np.ndarray, dict]:
    """The array and profile fields of one output kind; nodata pixels carry the nodata value."""
    if kind == "mask":
        data = result.mask.copy()
        data[~result.valid] = MASK_NODATA
        return data, {"dtype": "uint8", "nodata": MASK_NODATA}
    data = result.probability.astype(np.float32, copy=True)
    data[~result.valid] = np.nan
    return data, {"dtype": "float32", "nodata": float("nan")}


def _profile(result: SceneResult, kind: Kind) -> tuple[np.ndarray, dict]:
    data, fields = _band(result, kind)
    height, width = result.shape
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "crs": result.crs,
        "transform": result.transform,
        "compress": "deflate",
        **fields,
    }
    if width >= 256 and height >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    return data, profile


def _tags(result: SceneResult, kind: Kind) -> dict[str, str]:
    return {
        "AGRILAND_PRODUCT": f"arable {kind}",
        "AGRILAND_THRESHOLD": str(result.threshold),
        "AGRILAND_TILE_SIZE": str(result.tile_size),
        "AGRILAND_OVERLAP": str(result.overlap),
    }


def geotiff_bytes(result: SceneResult, kind: Kind = "mask") -> bytes:
    """The mask (uint8 0/1, nodata 255) or probability (float32, nodata NaN) as GeoTIFF bytes for HTTP."""
    data, profile = _profile(result, kind)
    with MemoryFile() as memfile:
        with memfile.open(**profile) as dst:
            dst.write(data, 1)
            dst.update_tags(**_tags(result, kind))
        return memfile.read()


def write_geotiff(path: Path | str, result: SceneResult, kind: Kind = "mask") -> Path:
    """Write the mask or probability GeoTIFF with the scene's CRS and transform, atomically."""
    data, profile = _profile(result, kind)
    with atomic_file(path, suffix=".tif") as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(data, 1)
        dst.update_tags(**_tags(result, kind))
    return Path(path)


def scene_polygons(
    result: SceneResult, simplify_px: float = 1.0, min_area_ha: float = 0.0, sieve_px: int = 0,
    max_polygons: int | None = None,
) -> ArablePolygons:
    """Arable polygons of a segmented scene, in its CRS, with geodesic hectares; regions of fewer than
    `sieve_px` pixels sieved away first, TooManyPolygons past `max_polygons` (see extract_polygons)."""
    return extract_polygons(result.mask, result.transform, result.crs, simplify_px, min_area_ha, sieve_px=sieve_px,
                            valid=result.valid, max_polygons=max_polygons)


def scene_summary(
    result: SceneResult, polygons: ArablePolygons, min_area_ha: float = 0.0, sieve_px: int = 0
) -> SceneSummary:
    """Total arable hectares, valid hectares and the arable fraction of the valid area."""
    summary = summarize(polygons, result.valid, result.transform, result.crs, min_area_ha)
    summary.sieve_px = sieve_px
    return summary


def scene_geojson(
    result: SceneResult, min_area_ha: float = 0.0, simplify_px: float = 1.0
) -> dict:
    """The arable-polygon GeoJSON dict (RFC 7946, EPSG:4326) with `area_ha` per feature."""
    return polygons_geojson(scene_polygons(result, simplify_px, min_area_ha))


def quicklook(raster: Raster, result: SceneResult, max_side: int = QUICKLOOK_MAX_SIDE) -> Image.Image:
    """An RGB preview: arable pixels tinted gold, nodata dark grey, longest side at most `max_side`."""
    return preview_image(raster.rgb, result.mask, result.valid, max_side)


def write_quicklook(path: Path | str, raster: Raster, result: SceneResult, max_side: int = QUICKLOOK_MAX_SIDE) -> Path:
    """Write the quick-look PNG atomically."""
    return write_png(path, quicklook(raster, result, max_side))


