"""Scene uploads: one GeoTIFF spooled to disk from a multipart part or the raw body, with options and limits."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import rasterio
from rasterio.errors import RasterioError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from contract.formats import is_tiff
from serving.request_body import OptionsT, bounded, form_value, media_type, parse_options
from serving.schemas import ApiError

RAW_TYPES = ("image/tiff", "image/tif", "image/geotiff", "application/octet-stream")
_COPY_CHUNK = 1 << 20


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
    content_type = media_type(request.headers.get("content-type"))
    values: dict[str, Any] = dict(request.query_params.items())
    limited = bounded(request, max_bytes, "the scene upload limit")
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
    return upload, parse_options(options_model, values)


# ----- checks of the spooled file --------------------------------------------------------------------------


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
            413,
            f"{upload.path.name} has {pixels:,} pixels, over the scene limit of {max_pixels:,}; cut it into "
            "smaller scenes",
        )
