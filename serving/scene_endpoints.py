"""POST /segment_scene and /cluster_scene: one GeoTIFF upload, its tiles through the shared micro-batchers."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import logging
import re
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio
import anyio.to_thread
import numpy as np
import rasterio
from pydantic import BaseModel, ValidationError
from rasterio.errors import RasterioError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from contract.formats import is_tiff
from contract.manifest import Manifest
from inference.fields import FieldOptions
from inference.models.batching import Overloaded, RunTimeout
from inference.pixels import PixelSpec
from inference.scenes.cluster import cluster_scene
from inference.scenes.geo import Raster, SceneLimits, read_scene
from inference.scenes.polygons import TooManyPolygons, polygons_geojson
from inference.scenes.segment import segment_file
from inference.scenes.windowed import WindowParams, default_overlap
from serving.config import ServeSettings
from serving.engine import Engine
from serving.http_input import form_value, validation_message
from serving.schemas import ApiError, SceneOptions, SegmentSceneOptions, SegmentSceneResponse

log = logging.getLogger(__name__)

OptionsT = TypeVar("OptionsT", bound=BaseModel)
RAW_TYPES = ("image/tiff", "image/tif", "image/geotiff", "application/octet-stream")
GEOJSON = "application/geo+json"
_COPY_CHUNK = 1 << 20
BRIDGE_MARGIN_S = 5.0


class SceneService(Protocol):
    """What a scene handler needs of the service: its engine and the per-worker scene semaphore."""

    engine: Engine
    scene_slots: asyncio.Semaphore
    scenes_admitted: int


class SceneCancelled(Exception):
    """The request ended (client gone, timeout) while its scene was still being computed."""


@dataclass(frozen=True)
class SceneUpload:
    """An uploaded scene spooled to a file on disk (never held in memory as a whole)."""

    path: Path
    size: int


# ----- input: one GeoTIFF from a multipart part or the raw body, options from fields/query -----------------


def _safe_name(filename: str | None) -> str:
    """A file name for error messages and the temp copy: the upload's base name, harmless characters only."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(filename or "").name)[:120].lstrip(".")
    return name or "upload.tif"


def _options(model: type[OptionsT], values: dict[str, Any]) -> OptionsT:
    try:
        return model.model_validate(values)
    except ValidationError as err:
        raise ApiError(400, f"invalid options: {validation_message(err)}") from err


def _limited(request: Request, max_bytes: int) -> Request:
    """The same request whose body stream answers 413 once more than `max_bytes` arrived."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError as err:
            raise ApiError(400, f"invalid Content-Length header {declared!r}") from err
        if size > max_bytes:
            raise ApiError(413, f"request body is {size} bytes; the scene upload limit is {max_bytes}")
    cached = getattr(request, "_body", None)  # a task's body, already stored by BentoML's task queue
    if cached is not None:
        if len(cached) > max_bytes:
            raise ApiError(413, f"request body is {len(cached)} bytes; the scene upload limit is {max_bytes}")
        return request
    seen = 0
    receive = request.receive

    async def limited_receive() -> Any:
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise ApiError(413, f"request body is over the scene upload limit of {max_bytes} bytes")
        return message

    return Request(request.scope, limited_receive)


async def _save_raw(request: Request, path: Path) -> int:
    size = 0
    async with await anyio.open_file(path, "wb") as handle:
        async for chunk in request.stream():
            size += len(chunk)
            await handle.write(chunk)
    return size


def _copy_file(source: Any, path: Path) -> int:
    source.seek(0)
    with open(path, "wb") as handle:
        shutil.copyfileobj(source, handle, _COPY_CHUNK)
        return handle.tell()


async def _save_multipart(request: Request, folder: Path, n_fields: int) -> tuple[SceneUpload, dict[str, Any]]:
    try:
        form = await request.form(max_files=2, max_fields=n_fields + 10)
    except HTTPException as err:
        raise ApiError(400, f"malformed multipart body: {err.detail}") from err
    except ApiError:
        raise
    except Exception as err:  # python-multipart raises several types for broken bodies
        raise ApiError(400, f"malformed multipart body: {err}") from err
    try:
        files = [(k, v) for k, v in form.multi_items() if isinstance(v, UploadFile)]
        values = {k: form_value(v) for k, v in form.multi_items() if not isinstance(v, UploadFile)}
        if len(files) != 1:
            raise ApiError(
                400, f"send exactly one GeoTIFF as a multipart file part (e.g. -F file=@scene.tif), got {len(files)}"
            )
        upload = files[0][1]
        path = folder / _safe_name(upload.filename)
        size = await anyio.to_thread.run_sync(_copy_file, upload.file, path)
    finally:
        await form.close()
    return SceneUpload(path, size), values


async def receive_scene(
    request: Request, options_model: type[OptionsT], max_bytes: int, folder: Path
) -> tuple[SceneUpload, OptionsT]:
    """Spool the scene into `folder` (limit enforced while streaming) and validate the options."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    values: dict[str, Any] = dict(request.query_params.items())
    limited = _limited(request, max_bytes)
    if content_type == "multipart/form-data":
        upload, fields = await _save_multipart(limited, folder, len(options_model.model_fields))
        values.update(fields)
    elif content_type in RAW_TYPES:
        path = folder / "upload.tif"
        upload = SceneUpload(path, await _save_raw(limited, path))
    else:
        raise ApiError(
            415,
            f"unsupported content type {content_type or '(none)'!r}; send the GeoTIFF as multipart/form-data "
            "(-F file=@scene.tif) or as the body with Content-Type: image/tiff",
        )
    if upload.size == 0:
        raise ApiError(400, f"{'the request body' if content_type in RAW_TYPES else upload.path.name} is empty")
    return upload, _options(options_model, values)


# ----- decoding and the bridge from the worker thread to the async batchers --------------------------------


def check_upload(upload: SceneUpload, max_pixels: int) -> None:
    """400 for a file that is not a TIFF at all, 413 past the pixel limit (read from the header only)."""
    with open(upload.path, "rb") as handle:
        if not is_tiff(handle.read(4)):
            raise ApiError(400, f"{upload.path.name} is not a GeoTIFF (no TIFF header)")
    try:
        with rasterio.open(upload.path) as ds:
            pixels = ds.width * ds.height
    except RasterioError:
        pixels = 0  # the scene reader explains what is wrong with it
    if pixels > max_pixels:
        raise ApiError(
            413, f"{upload.path.name} has {pixels:,} pixels, over the scene limit of {max_pixels:,}; cut it into "
            "smaller scenes",
        )


def decode_scene(upload: SceneUpload, options: SceneOptions, max_pixels: int, manifest: Manifest) -> Raster:
    """The GeoTIFF as an in-memory Raster (the cluster grid); 413 past the pixel limit, 400 if unreadable."""
    check_upload(upload, max_pixels)
    return read_scene(upload.path, bands=options.bands, limits=SceneLimits(max_pixels=max_pixels),
                      pixels=PixelSpec(manifest.radiometry, scaling=options.scaling))


class BatcherBridge:
    """A synchronous `predict(batch)` for a worker thread that awaits the engine on the event loop.

    Each call submits one batch (at most the batcher's batch size) and waits for it, so a scene never has
    more than one batch queued: tile requests that arrive meanwhile are queued ahead of its next batch.
    A full queue is retried until `patience_s` passes; then the scene fails with 503. No batch is waited for
    longer than `patience_s + run_timeout_s` (queueing plus one model run, plus a margin): past that the
    event loop or the batcher is wedged, the scene fails with RunTimeout (503) and its thread is freed.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        submit: Callable[[np.ndarray], Awaitable[Any]],
        cancelled: threading.Event,
        patience_s: float,
        run_timeout_s: float = 60.0,
    ) -> None:
        self._loop = loop
        self._submit = submit
        self._cancelled = cancelled
        self._patience_s = patience_s
        self.wait_s = patience_s + run_timeout_s + BRIDGE_MARGIN_S
        self.batches = 0

    async def _submit_patiently(self, batch: np.ndarray) -> Any:
        deadline = time.monotonic() + self._patience_s
        while True:
            try:
                return await self._submit(batch)
            except Overloaded as err:
                if self._cancelled.is_set() or time.monotonic() + err.retry_after_s > deadline:
                    raise
                await asyncio.sleep(min(err.retry_after_s, 1.0))

    def __call__(self, batch: np.ndarray) -> Any:
        if self._cancelled.is_set():
            raise SceneCancelled("the request ended before the scene was done")
        self.batches += 1
        future = asyncio.run_coroutine_threadsafe(self._submit_patiently(batch), self._loop)
        try:
            return future.result(timeout=self.wait_s)
        except concurrent.futures.TimeoutError as err:
            future.cancel()
            raise RunTimeout(f"a scene batch got no answer in {self.wait_s:.0f} s; the model or the server is stuck") from err


async def _run_scene(service: SceneService, work: Callable[[threading.Event], Any]) -> Any:
    """Run `work(cancelled)` in a thread, one scene slot held.

    A cancelled request sets `cancelled` (the scene stops before its next batch) and then waits for the
    thread to return: the slot, the temp folder and the memory are released only once the work stopped.
    """
    cancelled = threading.Event()
    async with service.scene_slots:
        running = asyncio.get_running_loop().run_in_executor(None, work, cancelled)
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            cancelled.set()
            log.info("scene request cancelled; waiting for its work to stop before releasing it")
            await asyncio.wait([running])
            raise
        finally:
            cancelled.set()


@contextlib.asynccontextmanager
async def scene_folder(service: SceneService, settings: ServeSettings) -> AsyncIterator[Path]:
    """A temp folder for one admitted scene; 503 before any byte is spooled when too many are in progress."""
    limit = settings.max_scenes * 2  # the running ones, and as many uploading or waiting for a slot
    if service.scenes_admitted >= limit:
        raise ApiError(
            503, f"{service.scenes_admitted} scenes are being uploaded or processed (limit {limit} per worker); "
            "retry later", retry_after_s=30,
        )
    service.scenes_admitted += 1
    try:
        with tempfile.TemporaryDirectory(prefix="agriland-scene-") as folder:
            yield Path(folder)
    finally:
        service.scenes_admitted -= 1


def _overlap(options: SegmentSceneOptions, tile: int) -> int:
    overlap = default_overlap(tile) if options.overlap is None else options.overlap
    if overlap >= tile // 2:  # more overlap multiplies the tiles to compute (near `tile`, without end)
        raise ApiError(
            400, f"invalid options: overlap={overlap} must be smaller than half the model tile ({tile // 2} px)"
        )
    return overlap


# ----- the handlers -----------------------------------------------------------------------------------------


def _segment_answer(
    upload: SceneUpload, options: SegmentSceneOptions, bridge: BatcherBridge, params: WindowParams,
    manifest: Manifest, settings: ServeSettings, folder: Path,
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
            upload.path, bridge, params, {options.product: cog} if raster else {}, bands=options.bands,
            pixels=PixelSpec(manifest.radiometry, scaling=options.scaling), simplify_px=options.simplify,
            min_area_ha=options.min_area_ha, limits=SceneLimits(max_pixels=settings.max_scene_pixels),
            vectorise=options.format != "geotiff", max_polygons=settings.max_polygons,
            fields=FieldOptions.parse(options.mask_mode),
        )
    except TooManyPolygons as err:
        raise too_many_polygons(err, options) from err
    log.info("%s: %d tiles in %d batches, %.1f s", result.name, result.stats.n_tiles, bridge.batches,
             time.monotonic() - started)
    if options.format == "geotiff":
        headers = {"Content-Disposition": f'attachment; filename="{cog.name}"'}
        if result.radiometry is not None:  # also in the file's AGRILAND_RADIOMETRY tag
            headers["X-Agriland-Radiometry"] = result.radiometry.model_dump_json(exclude_none=True)
        return Response(cog.read_bytes(), media_type="image/tiff", headers=headers)
    geojson = polygons_geojson(result.polygons)
    if options.format == "geojson":  # RFC 7946 allows foreign members: the facts a GIS user needs
        geojson["agriland"] = {"model": "unet", "model_version": manifest.version, "name": result.name,
                               "summary": result.summary.model_dump(),
                               "radiometry": None if result.radiometry is None else result.radiometry.model_dump()}
        return Response(_dumps(geojson), media_type=GEOJSON)
    body = SegmentSceneResponse(
        model="unet",
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
        detail={"n_polygons": err.count, "exact": err.exact, "max_polygons": err.limit,
                "min_area_ha": options.min_area_ha, "sieve_px": options.sieve_px},
    )


def _dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


async def segment_scene_handler(request: Request, service: SceneService, settings: ServeSettings) -> Response:
    """POST /segment_scene: mask, arable polygons with hectares and a summary of one GeoTIFF."""
    engine = service.engine
    model = engine.models["unet"]
    tile = model.tile_size
    async with scene_folder(service, settings) as folder:
        upload, options = await receive_scene(request, SegmentSceneOptions, settings.max_scene_bytes, folder)
        threshold = model.manifest.cut(options.mask_mode, options.threshold)
        params = WindowParams(tile, _overlap(options, tile), threshold, settings.max_batch_size,
                              sieve_px=options.sieve_px)
        loop = asyncio.get_running_loop()

        def work(cancelled: threading.Event) -> Response:
            bridge = BatcherBridge(loop, engine.predict_masks, cancelled, settings.max_latency_ms / 1000.0,
                                   settings.run_timeout_ms / 1000.0)
            return _segment_answer(upload, options, bridge, params, model.manifest, settings, folder)

        return await _run_scene(service, work)


async def cluster_scene_handler(request: Request, service: SceneService, settings: ServeSettings) -> Response:
    """POST /cluster_scene: the DEC cluster of every tile of a GeoTIFF, as a GeoJSON grid of cells."""
    engine = service.engine
    model = engine.models["dec"]
    tile = model.tile_size
    async with scene_folder(service, settings) as folder:
        upload, options = await receive_scene(request, SceneOptions, settings.max_scene_bytes, folder)
        loop = asyncio.get_running_loop()

        async def predict_q(batch: np.ndarray) -> np.ndarray:
            return (await engine.predict_clusters(batch))[0]

        def work(cancelled: threading.Event) -> Response:
            raster = decode_scene(upload, options, settings.max_scene_pixels, model.manifest)
            bridge = BatcherBridge(loop, predict_q, cancelled, settings.max_latency_ms / 1000.0,
                                   settings.run_timeout_ms / 1000.0)
            grid = cluster_scene(
                raster, bridge, tile, model.manifest, batch_size=settings.max_batch_size
            )
            grid["agriland"] = {
                "model": "dec",
                "model_version": model.manifest.version,
                "name": raster.name,
                "tile_size": tile,
                "rows": -(-raster.height // tile),
                "cols": -(-raster.width // tile),
                "width": raster.width,
                "height": raster.height,
                "crs": raster.crs.to_string(),
                "bands": list(raster.bands),
            }
            return Response(_dumps(grid), media_type=GEOJSON)

        return await _run_scene(service, work)
