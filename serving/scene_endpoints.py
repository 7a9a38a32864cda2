"""POST /segment_scene and /cluster_scene: one spooled GeoTIFF, read window by window, through the shared micro-batchers."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from contract.manifest import Manifest
from inference.models.futures import then
from inference.pixels import PixelSpec
from inference.scenes.cluster import cell_size_px, cluster_scene
from inference.scenes.geo import SceneLimits
from inference.scenes.ground_resolution import pixel_size_m
from inference.scenes.polygons import TooManyPolygons, polygons_geojson
from inference.scenes.request import OptionError, ResolvedScene, SceneRequest
from inference.scenes.segment import segment_file
from inference.scenes.source import GeoTiffSource
from serving.config import ServeSettings
from serving.engine import Engine
from serving.scene_extras import PREVIEW_SIDE, geoparquet_base64, web_preview
from serving.scene_queue import TICKET_HEADER, parse_ticket
from serving.scene_schemas import SceneOptions, SegmentSceneOptions, SegmentSceneResponse
from serving.scene_uploads import SceneUpload, check_upload, receive_scene
from serving.scene_work import ScenePredict, run_scene, scene_folder
from serving.schemas import ApiError

log = logging.getLogger(__name__)

GEOJSON = "application/geo+json"


def scene_request(options: SegmentSceneOptions) -> SceneRequest:
    """The scene request of a /segment_scene form (the same type `agriland segment` and `agriland batch` build)."""
    return SceneRequest(
        mask_mode=options.mask_mode,
        quality=options.quality,
        threshold=options.threshold,
        overlap=options.overlap,
        sieve_px=options.sieve_px,
        bands=options.bands,
        scaling=options.scaling,
        simplify=options.simplify,
        min_area_ha=options.min_area_ha,
    )


def resolve(options: SegmentSceneOptions, manifest: Manifest, batch_size: int) -> ResolvedScene:
    """The request resolved against the answering model; an option it cannot answer with is a 400."""
    try:
        return scene_request(options).resolve(manifest, batch_size)
    except OptionError as err:
        raise ApiError(400, f"invalid options: {err}") from err


def scene_ticket(request: Request) -> str | None:
    """The client's X-Agriland-Ticket (to read its place in the scene queue), checked."""
    return parse_ticket(request.headers.get(TICKET_HEADER))


# ----- the handlers -----------------------------------------------------------------------------------------


def _segment_answer(
    upload: SceneUpload,
    options: SegmentSceneOptions,
    predict: ScenePredict,
    scene: ResolvedScene,
    manifest: Manifest,
    settings: ServeSettings,
    folder: Path,
) -> Response:
    """Segment, vectorise and encode the answer (runs in the worker thread) with the windowed engine that
    `agriland segment` and `agriland batch` use: the spooled file is read window by window, sieved, and the
    raster answer is the COG that engine writes."""
    check_upload(upload, settings.max_scene_pixels)
    started = time.monotonic()
    raster = options.format == "geotiff" or options.include_mask
    cog = folder / f"{upload.path.stem}_{options.product}.tif"
    try:
        result = segment_file(
            upload.path,
            predict,
            scene,
            {options.product: cog} if raster else {},
            limits=SceneLimits(max_pixels=settings.max_scene_pixels),
            vectorise=options.format != "geotiff",
            max_polygons=settings.max_polygons,
            preview_side=PREVIEW_SIDE if options.include_preview and options.format == "json" else 0,
        )
    except TooManyPolygons as err:
        raise too_many_polygons(err, options) from err
    log.info(
        "%s: %d tiles in %d batches, %.1f s",
        result.name,
        result.stats.n_tiles,
        predict.batches,
        time.monotonic() - started,
    )
    if options.format == "geotiff":
        headers = {"Content-Disposition": f'attachment; filename="{cog.name}"'}
        if result.radiometry is not None:  # also in the file's AGRILAND_RADIOMETRY tag
            headers["X-Agriland-Radiometry"] = result.radiometry.model_dump_json(exclude_none=True)
        return Response(cog.read_bytes(), media_type="image/tiff", headers=headers)
    geojson = polygons_geojson(result.polygons)
    if options.format == "geojson":  # RFC 7946 allows foreign members: the facts a GIS user needs
        geojson["agriland"] = {
            "model": manifest.name,
            "model_version": manifest.version,
            "name": result.name,
            "summary": result.summary.model_dump(),
            "radiometry": None if result.radiometry is None else result.radiometry.model_dump(),
        }
        return Response(_dumps(geojson), media_type=GEOJSON)
    params = scene.params
    body = SegmentSceneResponse(
        model=manifest.name,
        model_version=manifest.version,
        name=result.name,
        summary=result.summary,
        threshold=params.threshold,
        tile_size=params.tile_size,
        overlap=params.overlap,
        n_tiles=result.stats.n_tiles,
        n_tiles_skipped=result.stats.n_tiles_skipped,
        bands=list(result.bands),
        source_dtype=result.source_dtype,
        radiometry=result.radiometry,
        polygons=geojson,
        mask_geotiff_base64=base64.b64encode(cog.read_bytes()).decode("ascii") if options.include_mask else None,
        preview=None
        if result.preview is None
        else web_preview(
            result.preview[0], result.preview[2], result.crs, result.transform, result.height, result.width
        ),
        polygons_geoparquet_base64=geoparquet_base64(geojson) if options.include_geoparquet else None,
    )
    return Response(body.model_dump_json(), media_type="application/json")


def too_many_polygons(err: TooManyPolygons, options: SegmentSceneOptions) -> ApiError:
    """422 for a polygon answer over AGRILAND_MAX_POLYGONS, saying how to get a smaller one."""
    found = f"{'more than ' if not err.exact else ''}{err.count:,}"
    return ApiError(
        422,
        f"the scene has {found} arable polygons at min_area_ha={options.min_area_ha:g} and "
        f"sieve_px={options.sieve_px}, over this server's limit of {err.limit:,} per answer "
        "(AGRILAND_MAX_POLYGONS); raise min_area_ha or sieve_px, ask for format=geotiff (the mask raster), "
        "or run it offline with `agriland segment` or `agriland batch`, which write every polygon to a file",
        detail={
            "n_polygons": err.count,
            "exact": err.exact,
            "max_polygons": err.limit,
            "min_area_ha": options.min_area_ha,
            "sieve_px": options.sieve_px,
        },
    )


def _dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


async def segment_scene_handler(request: Request, engine: Engine, settings: ServeSettings) -> Response:
    """POST /segment_scene: mask, arable polygons with hectares and a summary of one GeoTIFF."""
    async with scene_folder(engine.scene_queue, settings, scene_ticket(request)) as folder:
        upload, options = await receive_scene(request, SegmentSceneOptions, settings.max_scene_bytes, folder)
        field_model = engine.field_model_for(options.mask_mode)
        model = field_model or engine.models["unet"]
        submit = engine.submit_field_planes if field_model is not None else engine.submit_masks
        scene = resolve(options, model.manifest, settings.max_batch_size)

        def work(cancelled: threading.Event) -> Response:
            predict = ScenePredict(
                submit, cancelled, settings.max_latency_ms / 1000.0, settings.run_timeout_ms / 1000.0
            )
            return _segment_answer(upload, options, predict, scene, model.manifest, settings, folder)

        return await run_scene(engine.scene_queue, work)


async def cluster_scene_handler(request: Request, engine: Engine, settings: ServeSettings) -> Response:
    """POST /cluster_scene: the DEC cluster of every tile of a GeoTIFF, as a GeoJSON grid of cells."""
    model = engine.models["dec"]
    tile = model.tile_size
    async with scene_folder(engine.scene_queue, settings, scene_ticket(request)) as folder:
        upload, options = await receive_scene(request, SceneOptions, settings.max_scene_bytes, folder)

        def submit_q(batch: np.ndarray) -> Future[np.ndarray]:
            return then(engine.submit_clusters(batch), lambda out: out[0])

        def work(cancelled: threading.Event) -> Response:
            check_upload(upload, settings.max_scene_pixels)
            predict = ScenePredict(
                submit_q, cancelled, settings.max_latency_ms / 1000.0, settings.run_timeout_ms / 1000.0
            )
            pixels = PixelSpec(model.manifest.radiometry, scaling=options.scaling)
            limits = SceneLimits(max_pixels=settings.max_scene_pixels)
            with GeoTiffSource(upload.path, options.bands, pixels, limits) as source:
                source_gsd = pixel_size_m(source.crs, source.transform, source.height, source.width)
                cell = cell_size_px(source_gsd, model.manifest.radiometry.gsd_m, tile)
                grid = cluster_scene(
                    source, predict, tile, model.manifest, batch_size=settings.max_batch_size, cell_px=cell
                )
                applied = source.radiometry.applied
                grid["agriland"] = {
                    "model": "dec",
                    "model_version": model.manifest.version,
                    "name": source.name,
                    "tile_size": tile,
                    "cell_px": cell,
                    "gsd_m": None if source_gsd is None else round(source_gsd, 3),
                    "rows": -(-source.height // cell),
                    "cols": -(-source.width // cell),
                    "width": source.width,
                    "height": source.height,
                    "crs": source.crs.to_string(),
                    "bands": list(source.chosen),
                    "radiometry": None if applied is None else applied.model_dump(exclude_none=True),
                }
            return Response(_dumps(grid), media_type=GEOJSON)

        return await run_scene(engine.scene_queue, work)
