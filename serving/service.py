"""The BentoML service `serving.service:Agriland`: POST /cluster and /segment on ONNX Runtime, micro-batched."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import anyio
import bentoml
import numpy as np
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contract.errors import AgrilandError
from serving.batching import Overloaded
from serving.config import ServeSettings
from serving.decoding import DecodeLimits
from serving.endpoints import cluster_results, prepare_tiles, segment_results
from serving.engine import Engine
from serving.http_input import parse_tiles
from serving.masks import mask_png
from serving.scene_endpoints import cluster_scene_handler, segment_scene_handler
from serving.schemas import ApiError, ClusterOptions, ClusterResponse, SegmentOptions, SegmentResponse, openapi_spec

log = logging.getLogger(__name__)

try:
    SETTINGS, SETTINGS_ERROR = ServeSettings.from_env(), None
except AgrilandError as _err:  # a bad variable must not kill the process: it stays up, not ready
    SETTINGS, SETTINGS_ERROR = ServeSettings(), str(_err)

Handler = Callable[[Request, "Agriland"], Awaitable[Response]]


def _error(status: int, message: str, retry_after_s: int | None = None, detail: object = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    body = {"error": message, "status": status}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


def _service() -> "Agriland":
    service = bentoml.get_current_service()
    if service is None:  # pragma: no cover - only outside `bentoml serve`
        raise ApiError(503, "the service is starting", retry_after_s=5)
    return service


def _endpoint(name: str, model: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Admission control, readiness and the error policy shared by every POST endpoint."""

    async def endpoint(request: Request) -> Response:
        try:
            service = _service()
        except ApiError as err:
            return _error(err.status, err.message, err.retry_after_s)
        engine = service.engine
        if service.in_flight >= SETTINGS.max_concurrency:
            engine.metrics["rejected"].labels(endpoint=name, status="429").inc()
            return _error(
                429,
                f"too many requests in flight ({service.in_flight}, limit {SETTINGS.max_concurrency} per worker); "
                "retry after the Retry-After seconds",
                retry_after_s=engine.retry_after_s(),
            )
        service.in_flight += 1
        try:
            reason = engine.not_ready_reason(model)
            if reason is not None:
                raise ApiError(503, f"the {model} model is not loaded: {reason}", retry_after_s=30)
            return await handler(request, service)
        except ApiError as err:
            response = _error(err.status, err.message, err.retry_after_s, err.detail)
        except Overloaded as err:
            response = _error(503, str(err), retry_after_s=max(1, round(err.retry_after_s)))
        except AgrilandError as err:
            response = _error(400, str(err))
        except Exception:  # noqa: BLE001 - a bug must still answer JSON and leave the server serving
            log.exception("unexpected error on %s", name)
            response = _error(500, "internal error; the server log has the traceback")
        finally:
            service.in_flight -= 1
        engine.metrics["rejected"].labels(endpoint=name, status=str(response.status_code)).inc()
        return response

    return endpoint


def _wants_png(request: Request) -> bool:
    flag = request.query_params.get("format", "json").lower()
    if flag not in {"json", "png"}:
        raise ApiError(400, f"query parameter format={flag!r}: use json or png")
    accept = request.headers.get("accept", "")
    return flag == "png" or accept.split(",")[0].split(";")[0].strip().lower() == "image/png"


def _limits(tile_size: int) -> tuple[DecodeLimits, int]:
    max_side = tile_size * SETTINGS.max_side_factor
    return DecodeLimits(max_bytes=SETTINGS.max_upload_bytes, max_pixels=SETTINGS.max_pixels, max_side=16384), max_side


async def _segment(request: Request, service: "Agriland") -> Response:
    want_png = _wants_png(request)
    uploads, options = await parse_tiles(request, SegmentOptions, SETTINGS.max_upload_bytes, SETTINGS.max_tiles)
    if want_png and len(uploads) != 1:
        raise ApiError(400, f"a mask image (format=png / Accept: image/png) needs exactly one tile, got {len(uploads)}")
    model = service.engine.models["unet"]
    limits, max_side = _limits(model.tile_size)
    prepared = await anyio.to_thread.run_sync(prepare_tiles, uploads, model.tile_size, options.fit, limits, max_side)
    probabilities = await service.predict_masks(prepared.batch)
    results, masks = await anyio.to_thread.run_sync(segment_results, probabilities, prepared, options, model.manifest)
    if want_png:
        headers = {"X-Arable-Fraction": f"{results[0].arable_fraction:.6f}", "X-Threshold": str(results[0].threshold)}
        return Response(mask_png(masks[0]), media_type="image/png", headers=headers)
    body = SegmentResponse(model="unet", model_version=model.manifest.version, results=results)
    return Response(body.model_dump_json(), media_type="application/json")


async def _cluster(request: Request, service: "Agriland") -> Response:
    uploads, options = await parse_tiles(request, ClusterOptions, SETTINGS.max_upload_bytes, SETTINGS.max_tiles)
    model = service.engine.models["dec"]
    limits, max_side = _limits(model.tile_size)
    prepared = await anyio.to_thread.run_sync(prepare_tiles, uploads, model.tile_size, options.fit, limits, max_side)
    q, embedding = await service.predict_clusters(prepared.batch)
    results = cluster_results(q, embedding, prepared, options, model.manifest)
    n_clusters = model.manifest.n_clusters or int(q.shape[1])
    body = ClusterResponse(model="dec", model_version=model.manifest.version, n_clusters=n_clusters, results=results)
    return Response(body.model_dump_json(), media_type="application/json")


async def _segment_scene(request: Request, service: "Agriland") -> Response:
    return await segment_scene_handler(request, service, SETTINGS)


async def _cluster_scene(request: Request, service: "Agriland") -> Response:
    return await cluster_scene_handler(request, service, SETTINGS)


async def _openapi(_: Request) -> Response:
    return JSONResponse(openapi_spec())


async def _http_error(_: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 answers as JSON like every other error."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return _error(status, str(detail))


api = Starlette(
    routes=[
        Route("/segment", _endpoint("segment", "unet", _segment), methods=["POST"]),
        Route("/cluster", _endpoint("cluster", "dec", _cluster), methods=["POST"]),
        Route("/segment_scene", _endpoint("segment_scene", "unet", _segment_scene), methods=["POST"]),
        Route("/cluster_scene", _endpoint("cluster_scene", "dec", _cluster_scene), methods=["POST"]),
        Route("/openapi.json", _openapi, methods=["GET"]),
    ],
    exception_handlers={HTTPException: _http_error},
)


@bentoml.service(
    name="agriland",
    workers=SETTINGS.workers,
    traffic={"timeout": SETTINGS.timeout_s},
    logging={"access": {"enabled": True}},
)
@bentoml.asgi_app(api, path="/")
class Agriland:
    """Loads both models once per worker; /readyz stays 503 while either failed to load."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.scene_slots = asyncio.Semaphore(SETTINGS.max_scenes)  # scenes decoded/stitched at once
        self.engine = Engine(SETTINGS, SETTINGS_ERROR)

    def __is_ready__(self) -> bool:
        reason = self.engine.not_ready_reason()
        if reason is not None:
            log.warning("not ready: %s", reason)
        return reason is None

    async def predict_masks(self, tiles: np.ndarray) -> np.ndarray:
        """uint8 [N, T, T, 3] -> float32 [N, T, T] probabilities via the shared micro-batcher (for scene endpoints)."""
        return await self.engine.predict_masks(tiles)

    async def predict_clusters(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [N, T, T, 3] -> (q [N, K], embedding [N, D]) via the shared micro-batcher."""
        return await self.engine.predict_clusters(tiles)

    @bentoml.on_shutdown
    def _close(self) -> None:
        self.engine.close()
