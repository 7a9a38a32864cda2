"""Results of the in-memory reference path: one-pass segmentation of a Raster, its GeoTIFFs, polygons and quick-look."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
from affine import Affine
from PIL import Image
from rasterio.crs import CRS
from rasterio.io import MemoryFile

from contract.atomic import atomic_file
from inference.scenes.outputs import MASK_NODATA, QUICKLOOK_MAX_SIDE, preview_image, write_png
from inference.scenes.polygons import ArablePolygons, SceneSummary, extract_polygons, polygons_geojson, summarize
from inference.scenes.windowed import DEFAULT_BLOCK, Predict, WindowedSegmenter, WindowParams
from testkit.in_memory import ArraySink, ArraySource, Raster

Kind = Literal["mask", "probability"]


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
    result: SceneResult,
    simplify_px: float = 1.0,
    min_area_ha: float = 0.0,
    sieve_px: int = 0,
    max_polygons: int | None = None,
) -> ArablePolygons:
    """Arable polygons of a segmented scene, in its CRS, with geodesic hectares; regions of fewer than
    `sieve_px` pixels sieved away first, TooManyPolygons past `max_polygons` (see extract_polygons)."""
    return extract_polygons(
        result.mask,
        result.transform,
        result.crs,
        simplify_px,
        min_area_ha,
        sieve_px=sieve_px,
        valid=result.valid,
        max_polygons=max_polygons,
    )


def scene_summary(
    result: SceneResult, polygons: ArablePolygons, min_area_ha: float = 0.0, sieve_px: int = 0
) -> SceneSummary:
    """Total arable hectares, valid hectares and the arable fraction of the valid area."""
    summary = summarize(polygons, result.valid, result.transform, result.crs, min_area_ha)
    summary.sieve_px = sieve_px
    return summary


def scene_geojson(result: SceneResult, min_area_ha: float = 0.0, simplify_px: float = 1.0) -> dict:
    """The arable-polygon GeoJSON dict (RFC 7946, EPSG:4326) with `area_ha` per feature."""
    return polygons_geojson(scene_polygons(result, simplify_px, min_area_ha))


def quicklook(raster: Raster, result: SceneResult, max_side: int = QUICKLOOK_MAX_SIDE) -> Image.Image:
    """An RGB preview: arable pixels tinted gold, nodata dark grey, longest side at most `max_side`."""
    return preview_image(raster.rgb, result.mask, result.valid, max_side)


def write_quicklook(path: Path | str, raster: Raster, result: SceneResult, max_side: int = QUICKLOOK_MAX_SIDE) -> Path:
    """Write the quick-look PNG atomically."""
    return write_png(path, quicklook(raster, result, max_side))
