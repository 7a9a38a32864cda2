"""The map page and the cluster gallery, mounted in the service at /map: read-only GET routes, strict CSP.

Everything the pages need is served from here (no CDN): the HTML, their scripts and styles, and Leaflet, vendored
from the npm registry with its licence (`serving/static/vendor/leaflet/`). The pages post scenes and tiles to the
service's own `/segment_scene`, `/cluster_scene` and `/segment` (their bounded readers and limits); this app adds
no route that writes anything. An online basemap is used only when `AGRILAND_MAP_BASEMAP_URL` is set, and its
origin is then the only one beside the service's own that the Content-Security-Policy lets the page load.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import bentoml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from contract.manifest import Manifest
from serving.config import ServeSettings
from serving.scene_queue import parse_ticket
from serving.schemas import ApiError

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MAP_PATH = "/map"


def content_security_policy(settings: ServeSettings) -> str:
    """Self only: scripts, styles, fetches and images from the service (blob: for images the page decodes from an
    answer); a configured basemap's origin is added to img-src and nothing else."""
    images = "'self' blob:"
    if settings.map_basemap_url:
        parts = urlsplit(settings.map_basemap_url.replace("{s}", "a"))
        host = parts.netloc.replace("a.", "*.", 1) if "{s}" in settings.map_basemap_url else parts.netloc
        images += f" {parts.scheme}://{host}"
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        f"img-src {images}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


class SecurityHeaders:
    """Adds the CSP and its companions to every answer of the map app."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app = app
        self.headers = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, with_headers)


def _service() -> Any:
    return bentoml.get_current_service()


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def _page(name: str) -> Response:
    return FileResponse(
        STATIC / "map" / name, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


def _dec_manifest() -> Manifest | None:
    model = _service().engine.models.get("dec")
    return None if model is None else model.manifest


def _tile_counts(gallery: Path | None) -> Counter[int]:
    """Tiles per cluster from the training run's assignments.csv beside its galleries/ folder, where present."""
    table = None if gallery is None else gallery.parent / "assignments.csv"
    if table is None or not table.is_file():
        return Counter()
    with table.open(newline="") as handle:
        return Counter(int(row["cluster"]) for row in csv.DictReader(handle) if row.get("cluster", "").isdigit())


def build_map_app(settings: ServeSettings) -> ASGIApp:
    """The Starlette app behind /map."""
    gallery = settings.gallery_dir if settings.gallery_dir and settings.gallery_dir.is_dir() else None

    async def index(_: Request) -> Response:
        return _page("index.html")

    async def gallery_page(_: Request) -> Response:
        return _page("gallery.html")

    async def config(_: Request) -> Response:
        basemap = None
        if settings.map_basemap_url:
            basemap = {"url": settings.map_basemap_url, "attribution": settings.map_basemap_attribution or ""}
        engine = _service().engine
        return JSONResponse(
            {
                "basemap": basemap,
                "max_scene_bytes": settings.max_scene_bytes,
                "max_upload_bytes": settings.max_upload_bytes,
                "max_scenes": settings.max_scenes,
                "max_scene_queue": settings.max_scene_queue,
                "models": sorted(engine.models),
            }
        )

    async def queue(request: Request) -> Response:
        try:
            ticket = parse_ticket(request.query_params.get("ticket"))
        except ApiError as err:
            return _error(err.status, err.message.replace("X-Agriland-Ticket", "ticket"))
        if ticket is None:
            return _error(400, "give the ticket sent as X-Agriland-Ticket: /map/api/queue?ticket=...")
        return JSONResponse(_service().engine.scene_queue.position(ticket))

    async def clusters(_: Request) -> Response:
        manifest = _dec_manifest()
        if manifest is None or manifest.n_clusters is None:
            return _error(503, "the DEC model is not loaded: no clusters to show")
        counts = _tile_counts(gallery)
        items = [
            {
                "cluster": k,
                "name": manifest.cluster_name(k),
                "land_cover": manifest.land_cover(k),
                "cropland": manifest.is_cropland_cluster(k),
                "is_arable": manifest.is_arable_cluster(k),
                "n_tiles": counts.get(k),
                "sample": f"api/gallery/{k}.png" if gallery and (gallery / f"cluster_{k:03d}.png").is_file() else None,
            }
            for k in range(manifest.n_clusters)
        ]
        return JSONResponse(
            {
                "model_version": manifest.version,
                "n_clusters": manifest.n_clusters,
                "samples": gallery is not None,
                "clusters": items,
            }
        )

    async def cluster_sample(request: Request) -> Response:
        k = request.path_params["cluster"]
        path = None if gallery is None else gallery / f"cluster_{k:03d}.png"
        if path is None or not path.is_file():
            return _error(404, f"no sample tiles for cluster {k} (set AGRILAND_GALLERY_DIR to a run's galleries/)")
        return FileResponse(path, media_type="image/png")

    app = Starlette(
        routes=[
            Route("/", index),
            Route("/gallery", gallery_page),
            Route("/api/config", config),
            Route("/api/queue", queue),
            Route("/api/gallery", clusters),
            Route("/api/gallery/{cluster:int}.png", cluster_sample),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    )
    return SecurityHeaders(app, content_security_policy(settings))
