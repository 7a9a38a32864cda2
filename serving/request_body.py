"""Reading request bodies, the one place: headers (Content-Type, Accept, Content-Length), bounded body reads, options.

Every endpoint reads its body through here, so a size limit, a malformed header or an invalid option is the same
4xx JSON everywhere: tiles (serving.http_input), raw arrays (serving.raw_arrays) and scene uploads
(serving.scene_uploads) only turn the bytes into their own inputs.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from serving.schemas import ApiError

OptionsT = TypeVar("OptionsT", bound=BaseModel)


def media_type(value: str | None) -> str:
    """The first media type of a Content-Type or Accept value, lower case, parameters dropped."""
    return (value or "").split(",")[0].split(";")[0].strip().lower()


def content_type(request: Request) -> str:
    return media_type(request.headers.get("content-type"))


def accepted(request: Request) -> str:
    """The client's first choice of answer type (the Accept header's first entry), or ""."""
    return media_type(request.headers.get("accept"))


def form_value(raw: str) -> str | None:
    """A form field as sent by curl (`fit=auto`) or JSON-encoded by BentoML's clients (`fit="auto"`, `null`)."""
    if raw == "null":
        return None
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        try:
            decoded = json.loads(raw)
        except json.JSONDecodeError:
            return raw
        return decoded if isinstance(decoded, str) else raw
    return raw


def validation_message(err: ValidationError, prefix: str = "") -> str:
    """One readable line per pydantic error: `field.path: message`."""
    parts = []
    for item in err.errors(include_url=False):
        loc = ".".join(str(p) for p in item.get("loc", ())) or "body"
        parts.append(f"{prefix}{loc}: {item.get('msg', 'invalid')}")
    return "; ".join(parts)


def parse_options(model: type[OptionsT], values: dict[str, Any], where: str = "options") -> OptionsT:
    """The request's options as `model`; invalid ones are a 400 naming each field."""
    try:
        return model.model_validate(values)
    except ValidationError as err:
        raise ApiError(400, f"invalid {where}: {validation_message(err)}") from err


def declared_length(request: Request, max_bytes: int, limit: str = "the limit") -> int | None:
    """The Content-Length the client declared (None without one); 413 past `max_bytes`, 400 when malformed."""
    declared = request.headers.get("content-length")
    if declared is None:
        return None
    try:
        size = int(declared)
    except ValueError as err:
        raise ApiError(400, f"invalid Content-Length header {declared!r}") from err
    if size > max_bytes:
        raise ApiError(413, f"request body is {size} bytes; {limit} is {max_bytes}")
    return size


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, refusing (413) anything over `max_bytes` before reading it all."""
    declared_length(request, max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, f"request body is over the {max_bytes}-byte limit")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # noqa: SLF001 - lets request.form() parse the bytes already read
    return body


def bounded(request: Request, max_bytes: int, limit: str) -> Request:
    """The same request whose body stream answers 413 once more than `max_bytes` arrived (for spooled uploads)."""
    declared_length(request, max_bytes, limit)
    cached = getattr(request, "_body", None)  # a task's body, already stored by BentoML's task queue
    if cached is not None:
        if len(cached) > max_bytes:
            raise ApiError(413, f"request body is {len(cached)} bytes; {limit} is {max_bytes}")
        return request
    seen = 0
    receive = request.receive

    async def limited_receive() -> Any:
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise ApiError(413, f"request body is over {limit} of {max_bytes} bytes")
        return message

    return Request(request.scope, limited_receive)
