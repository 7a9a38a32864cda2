"""POST /segment_scene and /cluster_scene: whole GeoTIFF scenes through the same micro-batcher as tile requests."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

import anyio
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from agriland.errors import AgrilandError
from serving.config import ServeSettings
from serving.geo import Raster, SceneLimits, scene_from_bytes
from serving.http_input import parse_tiles, validation_message
from serving.scene import cluster_scene, segment_scene
from serving.scene_outputs import geotiff_bytes, scene_polygons, scene_summary
from serving.polygons import polygons_geojson
from serving.schemas import ApiError

if TYPE_CHECKING:  # pragma: no cover
    from serving.service import Agriland

log = logging.getLogger(__name__)

Handler = Callable[[Request, "Agriland"], Awaitable[Response]]


class SceneOptions(BaseModel):
    """Options of /segment_scene (multipart form fields, JSON fields, or query parameters)."""

    model_config = ConfigDict(extra="forbid")

    bands: str | None = Field(default=None, max_length=64,
                              description="band preset (rgb, sentinel2, sentinel2-10m, landsat8, landsat7, bgrn) or '4,3,2'")
    overlap: int | None = Field(default=None, ge=0, le=512,
                                description="pixels shared by neighbouring tiles (default: 1/8 of the model tile)")
    threshold: float | None = Field(default=None, ge=0.0, le=1.0, description="default: the manifest's threshold")
    wgs84: bool = Field(default=False, description="GeoJSON in EPSG:4326 instead of the scene CRS")
    min_area_ha: float = Field(default=0.0, ge=0.0, description="drop arable polygons smaller than this")
    simplify: float = Field(default=1.0, ge=0.0, le=100.0, description="polygon simplification tolerance, pixels")
    format: Literal["json", "geojson", "geotiff"] = Field(
        default="json", description="json: summary + polygons; geojson: polygons only; geotiff: the mask raster"
    )
    include_mask: bool = Field(default=False, description="with format=json: the mask GeoTIFF as base64 too")


class ClusterSceneOptions(BaseModel):
    """Options of /cluster_scene."""

    model_config = ConfigDict(extra="forbid")

    bands: str | None = Field(default=None, max_length=64, description="band preset or '4,3,2'")
    wgs84: bool = Field(default=False, description="cells in EPSG:4326 instead of the scene CRS")


def _bands(spec: str | None) -> str | tuple[int, ...] | None:
    """A preset name, or '4,3,2' as a tuple (geo.parse_bands validates either)."""
    if spec is None or not spec.strip():
        return None
    spec = spec.strip()
    if all(part.strip().isdigit() for part in spec.split(",")):
        return tuple(int(part) for part in spec.split(","))
    return spec


async def _read_scene(request: Request, options_model: type[BaseModel], settings: ServeSettings,
                      tile_size: int) -> tuple[Raster, BaseModel]:
    uploads, options = await parse_tiles(request, options_model, settings.max_scene_bytes, 1)
    query_format = request.query_params.get("format")  # parse_tiles leaves `format` to the endpoint
    if query_format is not None and "format" in options_model.model_fields:
        try:
            options = options_model.model_validate({**options.model_dump(exclude_unset=True), "format": query_format})
        except ValidationError as err:
            raise ApiError(400, validation_message(err, "query parameters: ")) from err
    upload = uploads[0]
    limits = SceneLimits(max_pixels=settings.max_scene_pixels)

    def decode() -> Raster:
        return scene_from_bytes(upload.data, _bands(options.bands), limits, name=upload.name or "the scene")

    try:
        raster = await anyio.to_thread.run_sync(decode)
    except AgrilandError as err:
        status = 413 if "over the limit" in str(err) else 400
        raise ApiError(status, str(err)) from err
    if min(raster.height, raster.width) < 1:
        raise ApiError(400, f"{raster.name} has no pixels")
    return raster, options


def _batched_predict(call: Callable[[np.ndarray], Awaitable[object]], loop: asyncio.AbstractEventLoop):
    """A synchronous predict for the scene code (running in a worker thread) that awaits the shared batcher."""

    def predict(tiles: np.ndarray) -> object:
        return asyncio.run_coroutine_threadsafe(call(tiles), loop).result()

    return predict


async def segment_scene_handler(request: Request, service: "Agriland", settings: ServeSettings) -> Response:
    """Segment a GeoTIFF scene: summary + arable polygons (hectares), or the mask GeoTIFF."""
    model = service.engine.models["unet"]
    tile = model.tile_size
    raster, options = await _read_scene(request, SceneOptions, settings, tile)
    overlap = tile // 8 if options.overlap is None else options.overlap
    if overlap >= tile // 2:
        raise ApiError(400, f"overlap={overlap} must be smaller than half the model tile ({tile // 2} px)")
    threshold = model.manifest.threshold if options.threshold is None else options.threshold
    predict = _batched_predict(service.predict_masks, asyncio.get_running_loop())

    def run() -> Response:
        # Tiles go to the batcher in chunks of the max batch size, so tile requests interleave with them.
        result = segment_scene(raster, predict, tile, overlap, threshold, settings.max_batch_size)
        if options.format == "geotiff":
            return Response(geotiff_bytes(result, "mask"), media_type="image/tiff",
                            headers={"Content-Disposition": 'attachment; filename="mask.tif"'})
        polygons = scene_polygons(result, options.simplify, options.min_area_ha)
        geojson = polygons_geojson(polygons, wgs84=options.wgs84)
        if options.format == "geojson":
            return Response(json.dumps(geojson), media_type="application/geo+json")
        summary = scene_summary(result, polygons, options.min_area_ha)
        body: dict[str, object] = {
            "model": "unet", "model_version": model.manifest.version, "name": raster.name,
            "threshold": threshold, "tile_size": tile, "overlap": overlap,
            "n_tiles": result.n_tiles, "n_tiles_skipped": result.n_tiles_skipped,
            "summary": summary.model_dump(), "polygons": geojson,
        }
        if options.include_mask:
            body["mask_geotiff_base64"] = base64.b64encode(geotiff_bytes(result, "mask")).decode("ascii")
        return Response(json.dumps(body), media_type="application/json")

    async with service.scene_slots:
        return await anyio.to_thread.run_sync(run)


async def cluster_scene_handler(request: Request, service: "Agriland", settings: ServeSettings) -> Response:
    """Cluster a GeoTIFF scene tile by tile: GeoJSON grid cells with cluster id, name and arable verdict."""
    model = service.engine.models["dec"]
    raster, options = await _read_scene(request, ClusterSceneOptions, settings, model.tile_size)

    async def predict_q(tiles: np.ndarray) -> np.ndarray:
        q, _ = await service.predict_clusters(tiles)
        return q

    predict = _batched_predict(predict_q, asyncio.get_running_loop())

    def run() -> Response:
        cells = cluster_scene(raster, predict, model.tile_size, model.manifest, settings.max_batch_size,
                              wgs84=options.wgs84)
        return Response(json.dumps(cells), media_type="application/geo+json")

    async with service.scene_slots:
        return await anyio.to_thread.run_sync(run)
