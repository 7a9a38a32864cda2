"""Scene results out: mask/probability GeoTIFF (bytes or file), GeoJSON, summary and a quick-look PNG."""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
from PIL import Image
from rasterio.io import MemoryFile

from inference.scenes.cluster import SceneResult
from inference.scenes.geo import Raster
from inference.scenes.polygons import ArablePolygons, SceneSummary, extract_polygons, polygons_geojson, summarize

log = logging.getLogger(__name__)

Kind = Literal["mask", "probability"]
MASK_NODATA = 255
QUICKLOOK_MAX_SIDE = 1024
_ARABLE_RGB = np.array([255, 215, 0], dtype=np.float32)  # gold overlay on arable pixels
_NODATA_RGB = np.array([40, 40, 40], dtype=np.uint8)


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


def _atomic_bytes(path: Path, data: bytes) -> Path:
    """Write bytes to a temp file beside `path`, then rename over it (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_geotiff(path: Path | str, result: SceneResult, kind: Kind = "mask") -> Path:
    """Write the mask or probability GeoTIFF with the scene's CRS and transform, atomically."""
    path = Path(path)
    data, profile = _profile(result, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tif", dir=path.parent)
    os.close(fd)
    try:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data, 1)
            dst.update_tags(**_tags(result, kind))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.info("wrote %s (%s, %dx%d)", path, kind, result.shape[1], result.shape[0])
    return path


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


def write_json(path: Path | str, payload: dict) -> Path:
    """Write a JSON document atomically."""
    return _atomic_bytes(Path(path), (json.dumps(payload, indent=1) + "\n").encode("utf-8"))


def quicklook(raster: Raster, result: SceneResult, max_side: int = QUICKLOOK_MAX_SIDE) -> Image.Image:
    """An RGB preview: arable pixels tinted gold, nodata dark grey, longest side at most `max_side`."""
    return preview_image(raster.rgb, result.mask, result.valid, max_side)


def preview_image(rgb: np.ndarray, mask: np.ndarray, valid: np.ndarray, max_side: int = QUICKLOOK_MAX_SIDE) -> Image.Image:
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


def write_quicklook(path: Path | str, raster: Raster, result: SceneResult, max_side: int = QUICKLOOK_MAX_SIDE) -> Path:
    """Write the quick-look PNG atomically."""
    return write_png(path, quicklook(raster, result, max_side))


def write_png(path: Path | str, image: Image.Image) -> Path:
    """Write a PNG atomically."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return _atomic_bytes(Path(path), buffer.getvalue())
