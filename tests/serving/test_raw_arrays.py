"""The bulk wire format: raw uint8 NHWC with ?shape= or .npy in; raw or .npy answers out; every bad body a 4xx."""

from __future__ import annotations

import io

import numpy as np
import pytest
from numpy.lib import format as npy_format

from serving.raw_arrays import encode
from serving.raw_arrays import raw_options as parse_options
from serving.raw_arrays import raw_tiles as parse_tiles
from serving.schemas import ApiError

TILE = 64


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _header(descr: str, fortran: bool = False) -> bytes:
    """A .npy header numpy itself writes, for a dtype np.save would refuse without pickles."""
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": fortran, "shape": (1, TILE, TILE, 3)})
    assert buffer.getvalue().startswith(b"\x93NUMPY")
    return buffer.getvalue()


def _parse(body: bytes, content_type: str = "application/octet-stream", **query: str):
    options = parse_options(list(query.items()))
    return parse_tiles(body, content_type, options, TILE, max_tiles=8, max_bytes=1 << 20)


def test_raw_body_with_shape_is_a_zero_copy_view() -> None:
    tiles = np.random.default_rng(0).integers(0, 256, (2, TILE, TILE, 3), dtype=np.uint8)
    parsed = _parse(tiles.tobytes(), shape="2,64,64,3")
    assert parsed.tiles.shape == (2, TILE, TILE, 3) and not parsed.answer_npy
    np.testing.assert_array_equal(parsed.tiles, tiles)


def test_npy_body_is_answered_as_npy_and_format_overrides() -> None:
    tiles = np.zeros((3, TILE, TILE, 3), dtype=np.uint8)
    assert _parse(_npy(tiles), "application/x-npy").answer_npy
    assert not _parse(_npy(tiles), "application/x-npy", format="raw").answer_npy
    assert _parse(tiles.tobytes(), shape="3,64,64,3", format="npy").answer_npy


@pytest.mark.parametrize(
    ("body", "content_type", "query", "status", "word"),
    [
        (b"", "application/octet-stream", {"shape": "1,64,64,3"}, 400, "empty"),
        (bytes(100), "application/octet-stream", {}, 400, "shape="),
        (bytes(100), "application/octet-stream", {"shape": "1,64,64,3"}, 400, "exactly"),
        (bytes(TILE * TILE * 3 + 1), "application/octet-stream", {"shape": "1,64,64,3"}, 400, "exactly"),
        (bytes(32 * 32 * 3), "application/octet-stream", {"shape": "1,32,32,3"}, 400, "64x64"),
        (bytes(12), "application/octet-stream", {"shape": "1,2,2"}, 400, "[N, H, W, 3]"),
        (bytes(12), "application/octet-stream", {"shape": "a,b"}, 400, "integers"),
        (bytes(12), "application/octet-stream", {"shape": "0,64,64,3"}, 400, "out of range"),
        (bytes(12), "application/octet-stream", {"shape": "99999999999999999999,64,64,3"}, 413, "out of range"),
        (bytes(12), "application/octet-stream", {"shape": "9,64,64,3"}, 413, "limit is 8"),
        (bytes(12), "application/octet-stream", {"shape": "1,64,64,3", "dtype": "float32"}, 400, "dtype"),
        (bytes(12), "application/octet-stream", {"shape": "1,64,64,3", "colour": "red"}, 400, "colour"),
        (bytes(12), "application/octet-stream", {"shape": "1,64,64,3", "threshold": "2"}, 400, "threshold"),
        (bytes(12), "image/png", {"shape": "1,64,64,3"}, 415, "image/png"),
        (_npy(np.zeros((1, TILE, TILE, 3), np.float32)), "application/x-npy", {}, 400, "float32"),
        (_npy(np.zeros((1, TILE, TILE, 3), np.uint16)), "application/x-npy", {}, 400, "uint16"),
        (_npy(np.zeros((1, TILE, TILE, 3), np.uint8))[:-5], "application/x-npy", {}, 400, "exactly"),
        (_npy(np.zeros((1, TILE, TILE, 3), np.uint8)), "application/x-npy", {"shape": "1,64,64,3"}, 400, "own shape"),
        (_npy(np.zeros((2, TILE, TILE), np.uint8)), "application/x-npy", {}, 400, "[N, H, W, 3]"),
        (b"\x93NUMPY\x01\x00\x10\x00{'descr': 'xx'  }", "application/x-npy", {}, 400, "malformed"),
        (b"\x93NUMPY\x01\x00\xff\xffnot a header", "application/x-npy", {}, 400, "malformed"),
        (b"\x93NUMPY\x09\x00\x10\x00{}", "application/x-npy", {}, 400, "npy"),
        (_header("|O") + bytes(8), "application/x-npy", {}, 400, "object"),
        (_header("|u1", fortran=True) + bytes(TILE * TILE * 3), "application/x-npy", {}, 400, "Fortran"),
        (_npy(np.zeros((1, TILE, TILE, 3), np.uint8)), "application/octet-stream", {}, 200, ""),
    ],
)
def test_bad_bodies_are_4xx_with_a_clear_message(
    body: bytes, content_type: str, query: dict, status: int, word: str
) -> None:
    if status == 200:  # a .npy body sent as application/octet-stream is recognised by its magic
        assert _parse(body, content_type, **query).tiles.shape == (1, TILE, TILE, 3)
        return
    with pytest.raises(ApiError) as caught:
        _parse(body, content_type, **query)
    assert caught.value.status == status
    assert word.lower() in caught.value.message.lower(), caught.value.message


def test_answers_raw_bytes_or_npy_with_shape_headers() -> None:
    masks = np.random.default_rng(1).integers(0, 2, (2, TILE, TILE), dtype=np.uint8)
    body, media_type, headers = encode(masks, as_npy=False)
    assert (
        media_type == "application/octet-stream" and headers["X-Shape"] == "2,64,64" and headers["X-Dtype"] == "uint8"
    )
    np.testing.assert_array_equal(np.frombuffer(body, np.uint8).reshape(2, TILE, TILE), masks)
    body, media_type, _ = encode(masks, as_npy=True)
    assert media_type == "application/x-npy"
    np.testing.assert_array_equal(np.load(io.BytesIO(body), allow_pickle=False), masks)
