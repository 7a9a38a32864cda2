"""The endpoint handlers called directly, without a server: (request, engine, settings) in, a Response out.

A real engine (the tiny exported models, really loaded and warmed up) answers; the requests are real Starlette
requests over an in-memory ASGI receive channel. Refusals are ApiErrors with their 4xx status."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from starlette.requests import Request
from starlette.responses import Response

from serving.config import ServeSettings
from serving.engine import Engine
from serving.raw_endpoints import cluster_raw_handler, segment_raw_handler
from serving.scene_endpoints import segment_scene_handler
from serving.scene_queue import SceneQueue
from serving.schemas import ApiError
from serving.tile_endpoints import cluster_handler, segment_handler
from testkit.scene_files import write_scene


@pytest.fixture(scope="module")
def settings(exported_models: Path) -> ServeSettings:
    return ServeSettings.from_env(
        {"AGRILAND_MODELS_DIR": str(exported_models), "AGRILAND_PROVIDERS": "cpu", "AGRILAND_MAX_BATCH_SIZE": "4"}
    )


@pytest.fixture(scope="module")
def engine(settings: ServeSettings) -> Iterator[Engine]:
    engine = Engine(settings)
    assert engine.ready, engine.not_ready_reason()
    yield engine
    engine.close()


def request(body: bytes, content_type: str, path: str = "/", query: str = "", accept: str = "") -> Request:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    if accept:
        headers.append((b"accept", accept.encode()))
    chunks = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict:
        return chunks.pop(0) if chunks else {"type": "http.disconnect"}

    scope = {"type": "http", "method": "POST", "path": path, "query_string": query.encode(), "headers": headers}
    return Request(scope, receive)


def call(handler, req: Request, engine: Engine, settings: ServeSettings) -> Response:
    async def run() -> Response:
        # the scene queue's semaphore belongs to the loop it is used on (in the service: the worker's one loop)
        engine.scene_queue = SceneQueue(settings.max_scenes, settings.max_scene_queue)
        return await handler(req, engine, settings)

    return asyncio.run(run())


def png(tile: int, green: bool = True) -> bytes:
    rgb = np.zeros((tile, tile, 3), np.uint8)
    rgb[..., 1 if green else 2] = 200
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def test_segment_answers_json_for_base64_tiles(engine: Engine, settings: ServeSettings) -> None:
    tile = engine.tile_size("unet")
    body = json.dumps(
        {"tiles": [{"image_b64": base64.b64encode(png(tile)).decode()}] * 2, "mask_mode": "threshold"}
    ).encode()
    response = call(segment_handler, request(body, "application/json"), engine, settings)
    answer = json.loads(response.body)
    assert response.status_code == 200 and answer["model"] == "unet" and len(answer["results"]) == 2


def test_segment_answers_a_png_mask_when_accept_asks(engine: Engine, settings: ServeSettings) -> None:
    tile = engine.tile_size("unet")
    response = call(segment_handler, request(png(tile), "image/png", accept="image/png"), engine, settings)
    assert response.media_type == "image/png" and response.body.startswith(b"\x89PNG")
    assert 0.0 <= float(response.headers["x-arable-fraction"]) <= 1.0


def test_cluster_answers_each_tile(engine: Engine, settings: ServeSettings) -> None:
    tile = engine.tile_size("dec")
    response = call(cluster_handler, request(png(tile, green=False), "image/png"), engine, settings)
    result = json.loads(response.body)["results"][0]
    assert 0.0 <= result["confidence"] <= 1.0 and isinstance(result["cluster"], int)


def test_raw_paths_answer_arrays_as_npy_when_accept_asks(engine: Engine, settings: ServeSettings) -> None:
    tile = engine.tile_size("unet")
    tiles = np.zeros((3, tile, tile, 3), np.uint8)
    req = request(
        tiles.tobytes(), "application/octet-stream", query=f"shape=3,{tile},{tile},3", accept="application/x-npy"
    )
    masks = np.load(io.BytesIO(call(segment_raw_handler, req, engine, settings).body))
    assert masks.shape == (3, tile, tile) and masks.dtype == np.uint8
    req = request(tiles.tobytes(), "application/octet-stream", query=f"shape=3,{tile},{tile},3")
    response = call(cluster_raw_handler, req, engine, settings)
    assert response.headers["x-shape"].startswith("3,") and response.headers["x-dtype"] == "float32"


@pytest.mark.parametrize(
    "handler, body, content_type, query, status, message",
    [
        (segment_handler, b"{not json", "application/json", "", 400, "not valid JSON"),
        (segment_handler, b'{"tiles": []}', "application/json", "", 400, "non-empty list"),
        (segment_handler, b"x", "text/plain", "", 415, "unsupported content type"),
        (segment_handler, b"", "image/png", "", 400, "empty request body"),
        (cluster_handler, b"\x89PNG", "image/png", "bogus=1", 400, "unknown query parameter"),
        (segment_raw_handler, b"\x00" * 10, "application/octet-stream", "shape=1,2,3", 400, "shape"),
        (cluster_raw_handler, b"\x00", "application/octet-stream", "threshold=0.5&shape=1,1,1,3", 400, "raw path"),
        (segment_scene_handler, b"not a tiff", "text/csv", "", 415, "unsupported content type"),
    ],
)
def test_malformed_requests_are_4xx(
    engine: Engine,
    settings: ServeSettings,
    handler,
    body: bytes,
    content_type: str,
    query: str,
    status: int,
    message: str,
) -> None:
    with pytest.raises(ApiError) as refused:
        call(handler, request(body, content_type, query=query), engine, settings)
    assert refused.value.status == status and message in refused.value.message


def test_segment_scene_answers_polygons(engine: Engine, settings: ServeSettings, tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "scene.tif", height=200, width=260).read_bytes()
    req = request(scene, "image/tiff", query="bands=sentinel2-10m&mask_mode=threshold&threshold=0")
    answer = json.loads(call(segment_scene_handler, req, engine, settings).body)
    assert answer["polygons"]["type"] == "FeatureCollection" and answer["n_tiles"] > 0
    with pytest.raises(ApiError, match="smaller than half the model tile"):
        call(segment_scene_handler, request(scene, "image/tiff", query="overlap=60"), engine, settings)
