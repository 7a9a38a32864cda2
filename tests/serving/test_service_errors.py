"""Every malformed request is a 4xx JSON error with a clear message, and the next good request still works."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import httpx
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow


def _png(height: int = 64, width: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A small valid PNG whose header claims huge dimensions (a decompression bomb's signature)."""
    data = bytearray(_png(8, 8))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


GOOD = _png()
B64 = base64.b64encode(GOOD).decode()
MULTI = "multipart/form-data"

# (id, method kwargs, expected status, a word the message must contain)
BAD_REQUESTS: list[tuple[str, str, dict, int, str]] = [
    ("not-an-image", "/segment", {"files": {"file": ("a.png", b"hello, not an image")}}, 400, "not a PNG"),
    (
        "not-an-image-raw",
        "/cluster",
        {"content": b"%PDF-1.4 xx", "headers": {"Content-Type": "image/png"}},
        400,
        "not a PNG",
    ),
    ("truncated-png", "/segment", {"files": {"file": ("t.png", GOOD[: len(GOOD) // 2])}}, 400, "truncated"),
    ("truncated-jpeg", "/cluster", {"files": {"file": ("t.jpg", _jpeg()[:400])}}, 400, "t.jpg"),
    ("too-large-for-endpoint", "/segment", {"files": {"file": ("big.png", _png(64, 600))}}, 413, "larger than"),
    ("decompression-bomb", "/segment", {"files": {"file": ("bomb.png", _png_claiming(60000, 60000))}}, 413, "pixels"),
    ("empty-file", "/segment", {"files": {"file": ("e.png", b"")}}, 400, "empty"),
    ("empty-body", "/segment", {"content": b"", "headers": {"Content-Type": "application/json"}}, 400, "empty"),
    ("no-content-type", "/cluster", {"content": b"abc"}, 415, "content type"),
    (
        "wrong-content-type",
        "/segment",
        {"content": b"abc", "headers": {"Content-Type": "text/plain"}},
        415,
        "text/plain",
    ),
    (
        "invalid-json",
        "/segment",
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        400,
        "JSON",
    ),
    ("json-array", "/cluster", {"json": [1, 2]}, 400, "object"),
    ("json-no-tiles", "/segment", {"json": {"images": [B64]}}, 400, "tiles"),
    ("json-empty-tiles", "/segment", {"json": {"tiles": []}}, 400, "tiles"),
    ("json-tile-wrong-field", "/segment", {"json": {"tiles": [{"image": B64}]}}, 400, "tiles[0]"),
    ("json-unknown-option", "/cluster", {"json": {"tiles": [{"image_b64": B64}], "topk": 3}}, 400, "topk"),
    ("json-bad-option-value", "/cluster", {"json": {"tiles": [{"image_b64": B64}], "top_k": 0}}, 400, "top_k"),
    ("json-bad-threshold", "/segment", {"json": {"tiles": [{"image_b64": B64}], "threshold": 2}}, 400, "threshold"),
    ("bad-base64", "/segment", {"json": {"tiles": [{"image_b64": "@@@not base64@@@"}]}}, 400, "base64"),
    (
        "base64-not-image",
        "/cluster",
        {"json": {"tiles": [{"image_b64": base64.b64encode(b"x" * 99).decode()}]}},
        400,
        "tiles[0]",
    ),
    ("too-many-tiles", "/cluster", {"json": {"tiles": [{"image_b64": B64}] * 65}}, 400, "limit"),
    ("multipart-no-file", "/segment", {"data": {"threshold": "0.5"}, "files": {}, "headers": {}}, 400, "file"),
    (
        "multipart-unknown-field",
        "/segment",
        {"files": {"file": ("a.png", GOOD)}, "data": {"colour": "red"}},
        400,
        "colour",
    ),
    (
        "multipart-broken",
        "/segment",
        {"content": b"--xx\r\ngarbage", "headers": {"Content-Type": f"{MULTI}; boundary=xx"}},
        400,
        "multipart",
    ),
    ("unknown-query", "/segment", {"files": {"file": ("a.png", GOOD)}, "params": {"foo": "1"}}, 400, "foo"),
    ("bad-format-flag", "/segment", {"files": {"file": ("a.png", GOOD)}, "params": {"format": "gif"}}, 400, "format"),
    (
        "png-needs-one-tile",
        "/segment",
        {"files": [("file", ("a.png", GOOD)), ("file", ("b.png", GOOD))], "params": {"format": "png"}},
        400,
        "exactly one",
    ),
    ("pad-too-large", "/segment", {"files": {"file": ("a.png", _png(80, 80))}, "data": {"fit": "pad"}}, 400, "padded"),
    ("wrong-method", "/segment", {"method": "GET"}, 405, "Method"),
    ("bad-scaling", "/segment", {"files": {"file": ("a.png", GOOD)}, "data": {"scaling": "log"}}, 400, "scaling"),
    ("bad-gsd", "/cluster", {"json": {"tiles": [{"image_b64": B64}], "gsd": 0}}, 400, "gsd"),
    ("bad-bands-spec", "/segment", {"files": {"file": ("a.png", GOOD)}, "data": {"bands": "red"}}, 400, "bands"),
    ("missing-band", "/segment", {"files": {"file": ("a.png", GOOD)}, "data": {"bands": "7,1,2"}}, 400, "band 7"),
    ("gsd-too-fine", "/segment", {"files": {"file": ("a.png", GOOD)}, "data": {"gsd": "9000"}}, 413, "too large"),
]


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "word"), [c[1:] for c in BAD_REQUESTS], ids=[c[0] for c in BAD_REQUESTS]
)
def test_bad_request_is_4xx_json_and_server_keeps_serving(
    client: httpx.Client, path: str, kwargs: dict, status: int, word: str
) -> None:
    kwargs = dict(kwargs)
    method = kwargs.pop("method", "POST")
    if kwargs.get("data") and kwargs.get("files") == {}:
        kwargs["files"] = None
        kwargs["headers"] = {"Content-Type": f"{MULTI}; boundary=b"}
        kwargs["content"] = b'--b\r\nContent-Disposition: form-data; name="threshold"\r\n\r\n0.5\r\n--b--\r\n'
        kwargs.pop("data")
    response = client.request(method, path, **{k: v for k, v in kwargs.items() if v is not None})
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert word.lower() in body["error"].lower(), body
    good = client.post("/segment", files={"file": ("good.png", GOOD)})
    assert good.status_code == 200, good.text
