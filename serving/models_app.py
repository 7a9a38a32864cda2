"""GET /models/: which models this worker serves — name, variant, version (the release names it), task, checksum —
and why any model is not loaded. Mounted beside the BentoML APIs; read-only."""

from __future__ import annotations

from typing import Any

import bentoml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MODELS_PATH = "/models"


def models_report(engine: Any) -> dict[str, Any]:
    """The served models of an Engine and its load errors, as JSON-ready data."""
    served = []
    for name, model in sorted(engine.models.items()):
        manifest = model.manifest
        served.append(
            {
                "name": name,
                "variant": manifest.variant,
                "version": manifest.version,
                "task": manifest.task,
                "tile_size": manifest.tile_size,
                "n_clusters": manifest.n_clusters,
                "provider": model.provider,
                "onnx_sha256": manifest.onnx_sha256,
                "created_at": manifest.created_at.isoformat(),
            }
        )
    return {"models": served, "not_loaded": dict(sorted(engine.errors.items()))}


def build_models_app() -> Starlette:
    """The Starlette app behind /models/ (GET /models redirects here)."""

    async def report(_: Request) -> Response:
        return JSONResponse(models_report(bentoml.get_current_service().engine))

    return Starlette(routes=[Route("/", report)])
