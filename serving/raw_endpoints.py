"""/segment_raw and /cluster_raw: uint8 NHWC tiles in, raw masks / soft assignments out; no image codecs, no JSON."""

from __future__ import annotations

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from serving.config import ServeSettings
from serving.engine import Engine
from serving.offload import run_sized
from serving.raw_arrays import NPY_TYPES, RawOptions, encode, raw_options, raw_tiles
from serving.request_body import accepted, content_type, read_body
from serving.schemas import ApiError


async def _tiles(request: Request, model_tile: int, settings: ServeSettings) -> tuple[RawOptions, np.ndarray, bool]:
    options = raw_options(request.query_params.multi_items())
    body = await read_body(request, settings.max_upload_bytes)
    raw = raw_tiles(body, content_type(request), options, model_tile, settings.max_tiles, settings.max_upload_bytes)
    as_npy = raw.answer_npy or (options.format is None and accepted(request) in NPY_TYPES)
    return options, raw.tiles, as_npy


def _masks(probabilities: np.ndarray, threshold: float) -> np.ndarray:
    return (probabilities >= threshold).view(np.uint8)


async def segment_raw_handler(request: Request, engine: Engine, settings: ServeSettings) -> Response:
    """uint8 [N, H, W] 0/1 masks (or float32 probabilities with product=probability) of uint8 [N, H, W, 3] tiles."""
    model = engine.models["unet"]
    options, tiles, as_npy = await _tiles(request, model.tile_size, settings)
    threshold = model.manifest.threshold if options.threshold is None else options.threshold
    probabilities = await engine.predict_masks(tiles)
    answer = _masks(probabilities, threshold) if options.product == "mask" else probabilities
    body, media_type, headers = await run_sized(answer.nbytes, encode, answer, as_npy)
    headers["X-Threshold"] = str(threshold)
    return Response(body, media_type=media_type, headers=headers)


async def cluster_raw_handler(request: Request, engine: Engine, settings: ServeSettings) -> Response:
    """float32 [N, K] DEC soft assignments (rows sum to 1; argmax is the cluster) of uint8 [N, H, W, 3] tiles."""
    model = engine.models["dec"]
    options, tiles, as_npy = await _tiles(request, model.tile_size, settings)
    if options.threshold is not None or options.product != "mask":
        raise ApiError(400, "threshold and product are /segment_raw options; /cluster_raw answers q [N, K]")
    q, _ = await engine.predict_clusters(tiles)
    body, media_type, headers = encode(q, as_npy)
    return Response(body, media_type=media_type, headers=headers)
