"""Image tiles of /segment and /cluster: JSON with base64, a multipart upload, or one raw image -> bytes + options."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

import anyio.to_thread
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from serving.request_body import OptionsT, form_value, media_type, parse_options, read_body, validation_message
from serving.schemas import ApiError, TileIn

RAW_TYPES = (
    "image/png",
    "image/jpeg",
    "image/jpg",
    "image/tiff",
    "image/tif",
    "image/webp",
    "application/octet-stream",
)
QUERY_FLAGS = frozenset({"format"})


@dataclass(frozen=True)
class TileUpload:
    """The raw bytes of one tile and the name it came with."""

    name: str | None
    data: bytes
    label: str  # how error messages refer to it, e.g. "tiles[2]" or "file 'a.png'"


def decode_base64(text: str, label: str) -> bytes:
    """Standard or URL-safe base64, optionally as a `data:<type>;base64,` URL; whitespace is ignored."""
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if ";base64" not in header:
            raise ApiError(400, f"{label}.image_b64: data URL is not base64-encoded")
    compact = "".join(text.split())
    try:
        if "-" in compact or "_" in compact:
            data = base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
        else:
            data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ApiError(400, f"{label}.image_b64 is not valid base64 ({err})") from err
    if not data:
        raise ApiError(400, f"{label}.image_b64 decodes to no bytes")
    return data


def _query_values(request: Request, model: type[BaseModel]) -> dict[str, object]:
    values: dict[str, object] = {}
    for key, value in request.query_params.multi_items():
        if key in QUERY_FLAGS:
            continue
        if key not in model.model_fields:
            allowed = ", ".join(sorted([*model.model_fields, *QUERY_FLAGS]))
            raise ApiError(400, f"unknown query parameter {key!r}; allowed: {allowed}")
        values[key] = value
    return values


def _from_json(
    body: bytes, options_model: type[OptionsT], query: dict[str, object]
) -> tuple[list[TileUpload], OptionsT]:
    """JSON parsing and base64 decoding: CPU work, run in a worker thread (never on the event loop)."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ApiError(400, f"request body is not valid JSON ({err})") from err
    if not isinstance(payload, dict):
        raise ApiError(400, "JSON body must be an object with a 'tiles' list")
    if "tiles" not in payload:
        raise ApiError(400, "JSON body has no 'tiles' field (a list of {\"image_b64\": ...} objects)")
    raw_tiles = payload.pop("tiles")
    if not isinstance(raw_tiles, list) or not raw_tiles:
        raise ApiError(400, "'tiles' must be a non-empty list of {\"image_b64\": ...} objects")
    options = parse_options(options_model, {**query, **payload}, "JSON fields")
    uploads = []
    for index, raw in enumerate(raw_tiles):
        label = f"tiles[{index}]"
        try:
            tile = TileIn.model_validate(raw)
        except ValidationError as err:
            raise ApiError(400, f"invalid {label}: {validation_message(err)}") from err
        uploads.append(TileUpload(tile.name, decode_base64(tile.image_b64, label), label))
    return uploads, options


async def _from_multipart(
    request: Request, options_model: type[OptionsT], query: dict[str, object], max_tiles: int
) -> tuple[list[TileUpload], OptionsT]:
    try:
        form = await request.form(max_files=max_tiles + 1, max_fields=len(options_model.model_fields) + 10)
    except HTTPException as err:
        raise ApiError(400, f"malformed multipart body: {err.detail}") from err
    except Exception as err:  # python-multipart raises several types for broken bodies
        raise ApiError(400, f"malformed multipart body: {err}") from err
    uploads: list[TileUpload] = []
    values: dict[str, object] = dict(query)
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                label = f"file {value.filename or key!r}"
                uploads.append(TileUpload(value.filename, await value.read(), label))
            else:
                values[key] = form_value(value)
    finally:
        await form.close()
    if not uploads:
        raise ApiError(400, "multipart body has no file part; send tiles as files, e.g. -F file=@tile.png")
    return uploads, parse_options(options_model, values, "form fields")


async def image_tiles(
    request: Request, options_model: type[OptionsT], max_bytes: int, max_tiles: int
) -> tuple[list[TileUpload], OptionsT]:
    """Tiles and options from any accepted content type; every problem is an ApiError with a 4xx status."""
    content_type = media_type(request.headers.get("content-type"))
    query = _query_values(request, options_model)
    body = await read_body(request, max_bytes)
    if not body:
        raise ApiError(400, "empty request body; send JSON with base64 tiles, a multipart upload, or an image")
    if content_type == "application/json" or content_type.endswith("+json"):
        uploads, options = await anyio.to_thread.run_sync(_from_json, body, options_model, query)
    elif content_type == "multipart/form-data":
        uploads, options = await _from_multipart(request, options_model, query, max_tiles)
    elif content_type in RAW_TYPES:
        uploads, options = [TileUpload(None, body, "body")], parse_options(options_model, query, "query parameters")
    else:
        raise ApiError(
            415,
            f"unsupported content type {content_type or '(none)'!r}; use application/json, multipart/form-data "
            "or image/png|jpeg|tiff",
        )
    if len(uploads) > max_tiles:
        raise ApiError(400, f"{len(uploads)} tiles in one request; the limit is {max_tiles}")
    return uploads, options
