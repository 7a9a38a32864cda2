"""One scene file of any size to COG outputs and polygons with bounded memory (CLI, service and batch share it)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from contract.radiometry import AppliedRadiometry
from inference.field_model import field_model_refiner
from inference.fields import FieldOptions, delineate
from inference.scenes.geo import SceneLimits
from inference.scenes.ground_resolution import adapt_to_model_gsd, pixel_size_m
from inference.scenes.polygons import ArablePolygons, SceneSummary, scene_summary_of
from inference.scenes.request import QUALITIES, ResolvedScene, SceneRequest
from inference.scenes.sinks import CogSink, Kind, PolygonSink
from inference.scenes.source import GeoTiffSource
from inference.scenes.windowed import Predict, Refine, WindowedSegmenter, WindowedStats

log = logging.getLogger(__name__)

__all__ = ["QUALITIES", "FileResult", "ResolvedScene", "SceneRequest", "segment_file"]

GDAL_CACHE_MB = 128  # GDAL's block cache; its default (5% of RAM) would dominate peak memory


@dataclass
class FileResult:
    """What one scene produced: georeferencing, polygons with hectares, summary, output files and timings."""

    name: str
    width: int
    height: int
    crs: CRS
    transform: Affine
    polygons: ArablePolygons
    summary: SceneSummary
    stats: WindowedStats
    outputs: dict[Kind, Path] = field(default_factory=dict)
    source_dtype: str = "uint8"
    bands: tuple[int, ...] = (1, 2, 3)
    seconds: float = 0.0
    preview: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # rgb, mask, valid (decimated)
    tile_size: int = 0  # source pixels per model tile (differs from the model's where the scene's GSD does)
    source_gsd_m: float | None = None
    radiometry: AppliedRadiometry | None = None  # how the pixels were scaled, and why


def _summary(
    sink: PolygonSink, polygons: ArablePolygons, width: int, height: int, min_area_ha: float, sieve_px: int
) -> SceneSummary:
    summary = scene_summary_of(polygons, sink.valid_ha, width, height, sink.crs, min_area_ha)
    summary.sieve_px = sieve_px
    return summary


def _preview_mask(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """The mask COG decimated to `shape` (read from its overviews)."""
    with rasterio.open(path) as ds:
        return ds.read(1, out_shape=shape, resampling=rasterio.enums.Resampling.nearest)


def field_refiner(fields: FieldOptions, threshold: float, gsd_m: float) -> Refine | None:
    """The windowed engine's mask step for `fields` (None: the plain threshold)."""
    if fields.mode == "threshold":
        return None

    def refine(rgb: np.ndarray, probability: np.ndarray, valid: np.ndarray) -> np.ndarray:
        return delineate(rgb, probability, valid, threshold, gsd_m, fields).mask

    return refine


def segment_file(
    path: str | Path,
    predict: Predict,
    scene: ResolvedScene,
    outputs: dict[Kind, Path] | None = None,
    progress: bool = False,
    preview_side: int = 0,
    limits: SceneLimits | None = None,
    vectorise: bool = True,
    max_polygons: int | None = None,
) -> FileResult:
    """Segment a GeoTIFF/COG block by block: COGs for the requested `outputs` kinds, polygons, a summary.

    `scene` is a `SceneRequest` resolved against the answering model (`SceneRequest.resolve`): the CLI, the service
    and the batch job all build one and run scenes through here, so the same scene and request give the same
    polygons. Memory is bounded by the block size, not the scene size. On any error no output file is left behind.
    Pixels are scaled by `scene.pixels` (the model's radiometry contract); a scene at another ground resolution is
    cut into tiles of the model's ground size and resampled per tile, so every output stays on the input grid.
    `preview_side` > 0 also returns decimated RGB, mask and valid arrays for a quick-look. `scene.fields` decides
    how the mask is answered (inference/fields.py: delineated fields, one 4-connected region each, or the plain
    cut); with `scene.field_model` set, `predict` is a field model's: the scene is answered at the spec's working
    resolution for `scene.quality` and its fields come from the model's boundaries. `vectorise=False` skips the
    polygons (a raster answer); `max_polygons` raises TooManyPolygons past it.
    """
    started = time.monotonic()
    outputs = dict(outputs or {})
    params, pixels, fields, field_model = scene.params, scene.pixels, scene.fields, scene.field_model
    min_area_ha = scene.min_area_ha
    bands = scene.bands
    band_arg = bands if bands is None or isinstance(bands, str) else tuple(bands)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), GeoTiffSource(path, band_arg, pixels, limits) as source:
        source_gsd = pixel_size_m(source.crs, source.transform, source.height, source.width)
        if field_model is not None:  # `predict` is a field model's: planes of field extent and boundary
            model_gsd = field_model.working_gsd(source_gsd, scene.quality)
            predict, params = adapt_to_model_gsd(predict, params, source_gsd, model_gsd)
            refine = None if fields.mode == "threshold" else field_model_refiner(field_model, source_gsd or model_gsd)
        else:
            model_gsd = pixels.radiometry.gsd_m
            predict, params = adapt_to_model_gsd(predict, params, source_gsd, model_gsd)
            refine = field_refiner(fields, params.threshold, source_gsd or model_gsd)
        tags = {
            "AGRILAND_THRESHOLD": str(params.threshold),
            "AGRILAND_TILE_SIZE": str(params.tile_size),
            "AGRILAND_OVERLAP": str(params.overlap),
            "AGRILAND_SIEVE_PX": str(params.sieve_px),
        }
        applied = source.radiometry.applied
        if applied is not None:
            tags["AGRILAND_RADIOMETRY"] = applied.model_dump_json(exclude_none=True)
        rasters = [
            CogSink(p, kind, source.height, source.width, source.crs, source.transform, tags)
            for kind, p in outputs.items()
        ]
        polygons_sink = PolygonSink(
            source.height, source.width, source.transform, source.crs, vectorise, max_polygons, min_area_ha
        )
        written: dict[Kind, Path] = {}
        try:
            stats = WindowedSegmenter(source, predict, params, refine).run([*rasters, polygons_sink], progress=progress)
            for sink in rasters:
                written[sink.kind] = sink.close()
        except BaseException:
            for sink in rasters:
                sink.abort()
            for done in written.values():  # a later output failed: remove the earlier ones of this run
                done.unlink(missing_ok=True)
            raise
        polygons = (
            polygons_sink.polygons(scene.simplify_px, min_area_ha)
            if vectorise
            else ArablePolygons([], np.zeros(0), source.crs)
        )
        preview = None
        if preview_side > 0:
            rgb, valid = source.preview(preview_side)
            mask = _preview_mask(written["mask"], valid.shape) if "mask" in written else np.zeros(valid.shape, np.uint8)
            preview = (rgb, (mask == 1).astype(np.uint8), valid)
        result = FileResult(
            name=source.name,
            width=source.width,
            height=source.height,
            crs=source.crs,
            transform=source.transform,
            polygons=polygons,
            summary=_summary(polygons_sink, polygons, source.width, source.height, min_area_ha, params.sieve_px),
            stats=stats,
            outputs=written,
            source_dtype=source.source_dtype,
            bands=source.chosen,
            preview=preview,
            tile_size=params.tile_size,
            source_gsd_m=source_gsd,
            radiometry=applied,
        )
    result.seconds = time.monotonic() - started
    log.info(
        "%s: %.2f ha arable in %d polygons, %d tiles, %.1f s",
        result.name,
        result.summary.arable_ha,
        result.summary.n_polygons,
        stats.n_tiles,
        result.seconds,
    )
    return result
