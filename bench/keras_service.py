"""COMPARISON BASELINE ONLY (bench): the U-Net served by tf_keras instead of ONNX Runtime, POST /segment.

Same request parsing, tile fitting, greedy micro-batcher and response as `serving.service:Agriland`'s
/segment; only the model call differs (`model.predict_on_batch`). It imports TensorFlow, which is why it
lives in bench/ and never in serving/. Environment: BENCH_KERAS_MODEL (inference_model.keras),
BENCH_MANIFEST_DIR (the matching ONNX artifact folder, for threshold and version), AGRILAND_MAX_BATCH_SIZE.

    bentoml serve bench.keras_service:KerasSegment --port 3001
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import anyio
import bentoml
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contract.manifest import read_manifest
from inference.models.batching import MicroBatcher
from inference.tiles.decoding import DecodeLimits
from serving.endpoints import prepare_tiles, segment_results
from serving.http_input import parse_tiles
from serving.schemas import ApiError, SegmentOptions, SegmentResponse

log = logging.getLogger(__name__)

MAX_BATCH = int(os.environ.get("AGRILAND_MAX_BATCH_SIZE", "16"))
MAX_BYTES = 32 * 1024 * 1024


async def _segment(request: Request) -> Response:
    service = bentoml.get_current_service()
    try:
        uploads, options = await parse_tiles(request, SegmentOptions, MAX_BYTES, 64)
        tile = service.tile_size
        limits = DecodeLimits(max_bytes=MAX_BYTES, max_pixels=4096 * 4096, max_side=16384)
        prepared = await anyio.to_thread.run_sync(prepare_tiles, uploads, tile, options.fit, limits, tile * 8)
        out = (await service.batcher.submit(prepared.batch))["mask"]
        probabilities = np.asarray(out, dtype=np.float32)[..., 0]
        results, _ = await anyio.to_thread.run_sync(segment_results, probabilities, prepared, options,
                                                    service.manifest)
    except ApiError as err:
        return JSONResponse({"error": err.message, "status": err.status}, status_code=err.status)
    body = SegmentResponse(model="unet", model_version=service.manifest.version, results=results)
    return Response(body.model_dump_json(), media_type="application/json")


api = Starlette(routes=[Route("/segment", _segment, methods=["POST"])])


@bentoml.service(name="agriland-keras-baseline", workers=1, traffic={"timeout": 120})
@bentoml.asgi_app(api, path="/")
class KerasSegment:
    """tf_keras U-Net behind the project's micro-batcher (benchmark baseline, not a product endpoint)."""

    def __init__(self) -> None:
        import prometheus_client

        import training  # noqa: F401  (TF_USE_LEGACY_KERAS before TF loads)
        from training.keras_objects import load_inference_model

        self.model = load_inference_model(Path(os.environ["BENCH_KERAS_MODEL"]))
        self.manifest = read_manifest(Path(os.environ["BENCH_MANIFEST_DIR"]))
        self.tile_size = int(self.model.inputs[0].shape[1])
        self.model.predict_on_batch(np.zeros((1, self.tile_size, self.tile_size, 3), np.uint8))  # build the graph
        histogram = prometheus_client.Histogram("agriland_batch_size", "Tiles per Keras run (baseline)",
                                                labelnames=["model"],
                                                buckets=[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0])
        observe = histogram.labels(model="unet").observe
        self.batcher = MicroBatcher("keras-unet", self._run, max_batch_size=MAX_BATCH,
                                    observe=lambda size, _waited: observe(size))
        log.info("Keras baseline: %s, tile %d, batches up to %d", os.environ["BENCH_KERAS_MODEL"], self.tile_size,
                 MAX_BATCH)

    def _run(self, tiles: np.ndarray) -> dict[str, np.ndarray]:
        return {"mask": np.asarray(self.model.predict_on_batch(tiles))}
