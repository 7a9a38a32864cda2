"""The BentoML service `serving.service:Agriland`: typed /segment, /cluster and scene APIs on ONNX Runtime."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import bentoml
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from contract.errors import AgrilandError
from inference.models.batching import Overloaded, RunTimeout
from inference.tiles.decoding import set_pillow_limits
from serving.api_specs import (
    ClusterInput,
    ClusterSceneInput,
    FeatureCollection,
    RawArrayOutput,
    RawTilesInput,
    SceneJobCancelled,
    SceneJobRef,
    SegmentInput,
    SegmentSceneInput,
)
from serving.config import ServeSettings
from serving.engine import Engine
from serving.http_errors import JsonRouterErrors
from serving.map_app import MAP_PATH, build_map_app
from serving.models_app import MODELS_PATH, build_models_app
from serving.raw_endpoints import cluster_raw_handler, segment_raw_handler
from serving.resources import service_resources
from serving.scene_endpoints import cluster_scene_handler, segment_scene_handler
from serving.scene_jobs import SceneJobs
from serving.scene_schemas import SegmentSceneResponse
from serving.schemas import ApiError, ClusterResponse, SegmentResponse
from serving.tile_endpoints import cluster_handler, segment_handler

log = logging.getLogger(__name__)

try:
    SETTINGS, SETTINGS_ERROR = ServeSettings.from_env(), None
except AgrilandError as _err:  # a bad variable must not kill the process: it stays up, not ready
    SETTINGS, SETTINGS_ERROR = ServeSettings.model_construct(), str(_err)  # defaults, the environment unread
set_pillow_limits(SETTINGS.max_pixels)

CLIENT_CLOSED = 499  # nginx's status for "the client closed the connection before the answer"
Handler = Callable[[Request, Engine, ServeSettings], Awaitable[Response]]


def _error(status: int, message: str, retry_after_s: int | None = None, detail: object = None) -> JSONResponse:
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    body = {"error": message, "status": status}
    if detail is not None:
        body["detail"] = detail
    return JSONResponse(body, status_code=status, headers=headers)


async def answer(service: Agriland, ctx: bentoml.Context, name: str, model: str, handler: Handler) -> Response:
    """Admission control, readiness and the error policy shared by every endpoint; never raises."""
    request = getattr(ctx.request.state, "agriland_request", ctx.request)
    engine = service.engine
    if service.in_flight >= SETTINGS.max_concurrency:
        response: Response = _error(
            429,
            f"too many requests in flight ({service.in_flight}, limit {SETTINGS.max_concurrency} per worker); "
            "retry after the Retry-After seconds",
            retry_after_s=engine.retry_after_s(),
        )
    else:
        service.in_flight += 1
        try:
            reason = engine.not_ready_reason(model)
            if reason is not None:
                raise ApiError(503, f"the {model} model is not loaded: {reason}", retry_after_s=30)
            response = await handler(request, engine, SETTINGS)
        except ApiError as err:
            response = _error(err.status, err.message, err.retry_after_s, err.detail)
        except Overloaded as err:
            response = _error(503, str(err), retry_after_s=max(1, round(err.retry_after_s)))
        except RunTimeout as err:
            response = _error(503, str(err), retry_after_s=max(1, round(SETTINGS.run_timeout_ms / 1000)))
        except ClientDisconnect:
            log.info("%d %s: the client disconnected before its request was complete", CLIENT_CLOSED, name)
            response = _error(CLIENT_CLOSED, "client closed the request")
        except AgrilandError as err:
            response = _error(400, str(err))
        except Exception:  # noqa: BLE001 - a bug must still answer JSON and leave the server serving
            log.exception("unexpected error on %s", name)
            response = _error(500, "internal error; the server log has the traceback")
        finally:
            service.in_flight -= 1
    if response.status_code >= 400:
        engine.metrics["rejected"].labels(endpoint=name, status=str(response.status_code)).inc()
    ctx.response.status_code = response.status_code  # BentoML copies the context's status onto the answer
    return response


@bentoml.service(
    name="agriland",
    workers=SETTINGS.workers,
    resources=service_resources(SETTINGS),
    traffic={"timeout": SETTINGS.timeout_s},
    logging={"access": {"enabled": SETTINGS.access_log}},
    # OpenTelemetry's ASGI middleware skips excluded URLs entirely; "." matches every path
    tracing={} if SETTINGS.tracing else {"excluded_urls": ["."]},
)
class Agriland:
    """Loads both models once per worker; /readyz stays 503 while either failed to load or a run is stuck."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.engine = Engine(SETTINGS, SETTINGS_ERROR)  # models, batchers, metrics and the scene queue
        self.jobs = SceneJobs()

    def __is_alive__(self) -> bool:
        """/livez fails once a model run has hung for AGRILAND_HUNG_AFTER_MS past its deadline: the session holds
        the worker's only device thread, so nothing short of a restart frees it (a liveness probe restarts it)."""
        reason = self.engine.hung_reason()
        if reason is not None:
            log.error("not alive (restart this worker): %s", reason)
        return reason is None

    def __is_ready__(self) -> bool:
        reason = self.engine.not_ready_reason()
        if reason is not None:
            log.warning("not ready: %s", reason)
        return reason is None

    @bentoml.api(route="/segment", input_spec=SegmentInput, output_spec=SegmentResponse)
    async def segment(self, ctx: bentoml.Context, **_: object) -> Response:
        """Arable-land mask of one or more tiles (JSON, or a PNG mask with Accept: image/png)."""
        return await answer(self, ctx, "segment", "unet", segment_handler)

    @bentoml.api(route="/cluster", input_spec=ClusterInput, output_spec=ClusterResponse)
    async def cluster(self, ctx: bentoml.Context, **_: object) -> Response:
        """DEC cluster, confidence and the manifest's name of one or more tiles."""
        return await answer(self, ctx, "cluster", "dec", cluster_handler)

    @bentoml.api(route="/segment_raw", input_spec=RawTilesInput, output_spec=RawArrayOutput)
    async def segment_raw(self, ctx: bentoml.Context, **_: object) -> Response:
        """Bulk fast path: uint8 [N, T, T, 3] tiles (raw bytes + ?shape=, or .npy) -> uint8 [N, T, T] 0/1 masks."""
        return await answer(self, ctx, "segment_raw", "unet", segment_raw_handler)

    @bentoml.api(route="/cluster_raw", input_spec=RawTilesInput, output_spec=RawArrayOutput)
    async def cluster_raw(self, ctx: bentoml.Context, **_: object) -> Response:
        """Bulk fast path: uint8 [N, T, T, 3] tiles -> float32 [N, K] DEC soft assignments."""
        return await answer(self, ctx, "cluster_raw", "dec", cluster_raw_handler)

    @bentoml.api(route="/segment_scene", input_spec=SegmentSceneInput, output_spec=SegmentSceneResponse)
    async def segment_scene(self, ctx: bentoml.Context, **_: object) -> Response:
        """Arable mask, polygons with hectares and a summary of one GeoTIFF scene (JSON, GeoJSON or GeoTIFF)."""
        return await answer(self, ctx, "segment_scene", "unet", segment_scene_handler)

    @bentoml.api(route="/cluster_scene", input_spec=ClusterSceneInput, output_spec=FeatureCollection)
    async def cluster_scene(self, ctx: bentoml.Context, **_: object) -> Response:
        """DEC cluster of every tile of a GeoTIFF scene, as GeoJSON grid cells."""
        return await answer(self, ctx, "cluster_scene", "dec", cluster_scene_handler)

    @bentoml.task(route="/segment_scene_job", input_spec=SegmentSceneInput, output_spec=SegmentSceneResponse)
    async def segment_scene_job(self, ctx: bentoml.Context, **_: object) -> Response:
        """/segment_scene as a job: POST .../submit, GET .../status and .../get?task_id=; cancel at /scene_jobs/cancel."""
        return await self._job(ctx, "segment_scene_job", "unet", segment_scene_handler)

    @bentoml.task(route="/cluster_scene_job", input_spec=ClusterSceneInput, output_spec=FeatureCollection)
    async def cluster_scene_job(self, ctx: bentoml.Context, **_: object) -> Response:
        """/cluster_scene as a job: POST .../submit, GET .../status and .../get?task_id=; cancel at /scene_jobs/cancel."""
        return await self._job(ctx, "cluster_scene_job", "dec", cluster_scene_handler)

    @bentoml.api(route="/scene_jobs/cancel", input_spec=SceneJobRef, output_spec=SceneJobCancelled)
    async def cancel_scene_job(self, task_id: str) -> SceneJobCancelled:
        """Stop a running scene job; answers once its work stopped and its temp files and slot are released."""
        return SceneJobCancelled(task_id=task_id, status=await self.jobs.cancel(task_id))

    async def _job(self, ctx: bentoml.Context, name: str, model: str, handler: Handler) -> Response:
        task_id = getattr(ctx.request.state, "task_id", None)
        self.jobs.started(task_id)
        try:
            return await answer(self, ctx, name, model, handler)
        except asyncio.CancelledError:
            if task_id not in self.jobs.cancelled:
                raise
            ctx.response.status_code = CLIENT_CLOSED
            return _error(CLIENT_CLOSED, f"scene job {task_id} was cancelled")
        finally:
            self.jobs.finished(task_id)

    @bentoml.on_shutdown
    def _close(self) -> None:
        self.engine.close()


# the class BentoML's decorator returns has add_asgi_middleware and mount_asgi_app; its stubs do not say so
Agriland.add_asgi_middleware(JsonRouterErrors)  # type: ignore[attr-defined]
Agriland.mount_asgi_app(build_map_app(SETTINGS), path=MAP_PATH, name="map")  # type: ignore[attr-defined]  # the map page and cluster gallery
Agriland.mount_asgi_app(build_models_app(), path=MODELS_PATH, name="models")  # type: ignore[attr-defined]  # which models and versions serve
