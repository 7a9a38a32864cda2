"""Request bodies to tiles + options: JSON with base64, multipart uploads, raw images, and clear 4xx refusals."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import anyio
import httpx
import pytest
from PIL import Image
from starlette.requests import Request

from serving.http_input import TileUpload, decode_base64
from serving.http_input import image_tiles as parse_tiles
from serving.request_body import form_value
from serving.schemas import ApiError, SegmentOptions

MAX_BYTES = 1 << 20


def _png(colour: tuple[int, int, int], side: int = 16) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(out, format="PNG")
    return out.getvalue()


RED, GREEN = _png((200, 10, 10)), _png((10, 200, 10))


def _request(
    body: bytes, content_type: str | None, query: str = "", length: str | None | bool = True, chunk: int = 700
) -> Request:
    """A real starlette Request over an ASGI scope whose body arrives in `chunk`-byte messages."""
    headers = [] if content_type is None else [(b"content-type", content_type.encode())]
    if length is True:
        headers.append((b"content-length", str(len(body)).encode()))
    elif isinstance(length, str):
        headers.append((b"content-length", length.encode()))
    parts = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/segment",
        "query_string": query.encode(),
        "headers": headers,
        "http_version": "1.1",
        "scheme": "http",
        "server": ("test", 80),
        "client": ("test", 1),
        "root_path": "",
    }
    return Request(scope, receive)


def _parse(request: Request, max_tiles: int = 8, max_bytes: int = MAX_BYTES) -> tuple[list[TileUpload], SegmentOptions]:
    async def run() -> tuple[list[TileUpload], SegmentOptions]:
        return await parse_tiles(request, SegmentOptions, max_bytes, max_tiles)

    return anyio.run(run)


def _json(payload: object) -> bytes:
    return json.dumps(payload).encode()


def _multipart(files: list[tuple[str, bytes]], data: dict[str, str]) -> tuple[bytes, str]:
    built = httpx.Request(
        "POST", "http://test/segment", data=data, files=[("file", (name, blob, "image/png")) for name, blob in files]
    )
    return built.read(), built.headers["content-type"]


def test_json_tiles_in_every_base64_form_with_options_from_body_and_query() -> None:
    body = _json(
        {
            "tiles": [
                {"image_b64": base64.b64encode(RED).decode(), "name": "red"},
                {"image_b64": base64.urlsafe_b64encode(GREEN).decode().rstrip("=")},
                {"image_b64": "data:image/png;base64," + base64.b64encode(GREEN).decode()},
                {"image_b64": "\n".join(base64.b64encode(RED).decode()[i : i + 60] for i in range(0, 400, 60))},
            ],
            "threshold": 0.3,
            "mask_mode": "threshold",
        }
    )
    uploads, options = _parse(_request(body, "application/json; charset=utf-8", query="gsd=2.5&format=json"))
    assert [u.data for u in uploads] == [RED, GREEN, GREEN, RED]
    assert [u.name for u in uploads] == ["red", None, None, None]
    assert [u.label for u in uploads] == ["tiles[0]", "tiles[1]", "tiles[2]", "tiles[3]"]
    assert (options.threshold, options.mask_mode, options.gsd, options.fit) == (0.3, "threshold", 2.5, "auto")


def test_multipart_files_and_form_fields_as_curl_or_bentoml_clients_send_them() -> None:
    body, content_type = _multipart(
        [("a.png", RED), ("b.png", GREEN)], {"threshold": "0.7", "fit": '"pad"', "bands": "null"}
    )
    uploads, options = _parse(_request(body, content_type, query="include_fields=true"))
    assert [(u.name, u.data, u.label) for u in uploads] == [
        ("a.png", RED, "file 'a.png'"),
        ("b.png", GREEN, "file 'b.png'"),
    ]
    assert (options.threshold, options.fit, options.bands, options.include_fields) == (0.7, "pad", None, True)


def test_a_raw_image_body_is_one_tile_with_options_from_the_query() -> None:
    uploads, options = _parse(_request(GREEN, "image/png", query="threshold=0.2&scaling=percentile"))
    assert uploads == [TileUpload(None, GREEN, "body")]
    assert options.threshold == 0.2 and options.scaling == "percentile"
    uploads, _ = _parse(_request(RED, "application/octet-stream", length=False, chunk=10))  # chunked, undeclared
    assert uploads[0].data == RED


@pytest.mark.parametrize(
    ("body", "content_type", "query", "status", "message"),
    [
        (b"", "application/json", "", 400, "empty request body"),
        (b"{not json", "application/json", "", 400, "request body is not valid JSON"),
        (_json([1, 2]), "application/json", "", 400, "JSON body must be an object"),
        (_json({"threshold": 0.5}), "application/json", "", 400, "JSON body has no 'tiles' field"),
        (_json({"tiles": []}), "application/json", "", 400, "'tiles' must be a non-empty list"),
        (
            _json({"tiles": [{"image_b64": "no*base64!"}]}),
            "application/json",
            "",
            400,
            r"tiles\[0\]\.image_b64 is not valid base64",
        ),
        (
            _json({"tiles": [{"image_b64": "data:image/png,abc"}]}),
            "application/json",
            "",
            400,
            "data URL is not base64-encoded",
        ),
        (
            _json({"tiles": [{"image_b64": "AAAA", "colour": "red"}]}),
            "application/json",
            "",
            400,
            r"invalid tiles\[0\]: colour: Extra inputs are not permitted",
        ),
        (
            _json({"tiles": [{"image_b64": "AAAA"}], "threshold": 2}),
            "application/json",
            "",
            400,
            "invalid JSON fields: threshold: Input should be less than or equal to 1",
        ),
        (RED, "image/png", "colour=red", 400, "unknown query parameter 'colour'; allowed: .*format"),
        (RED, "image/png", "fit=stretch", 400, "invalid query parameters: fit"),
        (b"hello", "text/plain", "", 415, "unsupported content type 'text/plain'"),
        (b"hello", None, "", 415, r"unsupported content type '\(none\)'"),
        (
            b'--x\r\nContent-Disposition: form-data; name="threshold"\r\n\r\n0.5\r\n--x--\r\n',
            "multipart/form-data; boundary=x",
            "",
            400,
            "multipart body has no file part",
        ),
    ],
)
def test_bad_requests_are_refused_with_a_clear_4xx(
    body: bytes, content_type: str | None, query: str, status: int, message: str
) -> None:
    with pytest.raises(ApiError, match=message) as raised:
        _parse(_request(body, content_type, query))
    assert raised.value.status == status


def test_bodies_over_the_limit_are_refused_before_or_while_reading() -> None:
    with pytest.raises(ApiError, match="request body is 2000 bytes; the limit is 1000") as declared:
        _parse(_request(b"x" * 2000, "image/png"), max_bytes=1000)
    assert declared.value.status == 413
    with pytest.raises(ApiError, match="over the 1000-byte limit") as streamed:
        _parse(_request(b"x" * 2000, "image/png", length=False, chunk=300), max_bytes=1000)
    assert streamed.value.status == 413
    with pytest.raises(ApiError, match="invalid Content-Length header 'lots'") as bad:
        _parse(_request(RED, "image/png", length="lots"))
    assert bad.value.status == 400


def test_more_tiles_than_the_limit_are_refused_whatever_the_body() -> None:
    body = _json({"tiles": [{"image_b64": base64.b64encode(RED).decode()}] * 3})
    with pytest.raises(ApiError, match="3 tiles in one request; the limit is 2") as raised:
        _parse(_request(body, "application/json"), max_tiles=2)
    assert raised.value.status == 400
    body, content_type = _multipart([(f"{i}.png", RED) for i in range(3)], {})
    with pytest.raises(ApiError, match="3 tiles in one request; the limit is 2"):
        _parse(_request(body, content_type), max_tiles=2)
    body, content_type = _multipart([(f"{i}.png", RED) for i in range(5)], {})  # stopped while parsing the form
    with pytest.raises(ApiError, match="malformed multipart body: Too many files"):
        _parse(_request(body, content_type), max_tiles=2)


def test_a_broken_multipart_body_is_a_400() -> None:
    body, content_type = _multipart([("a.png", RED)], {})
    with pytest.raises(ApiError, match="malformed multipart body: Missing boundary") as raised:
        _parse(_request(body, "multipart/form-data"))
    assert raised.value.status == 400
    nameless = body.replace(b"Content-Disposition: form-data; ", b"Content-Disposition: ", 1)
    with pytest.raises(ApiError, match="malformed multipart body: .*name"):
        _parse(_request(nameless, content_type))
    with pytest.raises(ApiError, match="multipart body has no file part"):  # cut off inside its only file
        _parse(_request(body[: len(body) // 2], content_type))


def test_base64_that_decodes_to_nothing_is_refused() -> None:
    with pytest.raises(ApiError, match="decodes to no bytes"):
        decode_base64("", "tiles[0]")
    assert decode_base64(" " + base64.b64encode(RED).decode() + "\n", "t") == RED


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("auto", "auto"),
        ('"auto"', "auto"),
        ("null", None),
        ('"5"', "5"),
        ('"unterminated', '"unterminated'),
        ('"a" "b"', '"a" "b"'),
        ("", ""),
    ],
)
def test_form_values_plain_or_json_encoded(raw: str, value: str | None) -> None:
    assert form_value(raw) == value
