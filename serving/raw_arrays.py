"""The bulk fast path's wire format: uint8 NHWC tiles as raw bytes (shape in the query) or .npy, and raw answers."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.lib import format as npy_format
from pydantic import BaseModel, ConfigDict, Field

from serving.request_body import parse_options
from serving.schemas import ApiError

NPY_MAGIC = b"\x93NUMPY"
NPY_TYPES = ("application/x-npy", "application/npy")
RAW_TYPE = "application/octet-stream"
_MAX_NPY_HEADER = 4096  # a 4-D uint8 header is ~120 bytes; numpy's own default bound is 10,000
_MAX_DIM = 1 << 20  # any single dimension beyond this is nonsense, refused before any arithmetic


class RawOptions(BaseModel):
    """Query parameters of /segment_raw and /cluster_raw."""

    model_config = ConfigDict(extra="forbid")

    shape: str | None = Field(default=None, description="N,H,W,3 of a raw application/octet-stream body")
    dtype: Literal["uint8"] = Field(default="uint8", description="the body's element type (uint8 only)")
    threshold: float | None = Field(default=None, ge=0.0, le=1.0, description="/segment_raw: default the manifest's")
    product: Literal["mask", "probability"] = Field(
        default="mask", description="/segment_raw: uint8 0/1 masks [N,H,W] or float32 probabilities [N,H,W]"
    )
    format: Literal["raw", "npy"] | None = Field(
        default=None, description="answer as raw bytes (shape in X-Shape) or .npy; default: as the request came"
    )


@dataclass(frozen=True)
class RawTiles:
    """A validated uint8 [N, T, T, 3] batch and how the answer should be encoded."""

    tiles: np.ndarray
    answer_npy: bool


def raw_options(query: list[tuple[str, str]]) -> RawOptions:
    """Query parameters -> RawOptions; unknown or invalid ones are a 400 naming them."""
    values: dict[str, str] = {}
    for key, value in query:
        if key in values:
            raise ApiError(400, f"query parameter {key!r} given twice")
        values[key] = value
    return parse_options(RawOptions, values, "query parameters")


def _shape_from_query(text: str | None) -> tuple[int, ...]:
    if not text:
        raise ApiError(
            400, "a raw application/octet-stream body needs ?shape=N,H,W,3 (or send .npy as application/x-npy)"
        )
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError as err:
        raise ApiError(400, f"shape={text!r} is not a comma-separated list of integers like 8,64,64,3") from err
    return shape


def _npy_header(body: bytes) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, data offset) of a .npy body; pickles, Fortran order and odd versions are refused."""
    stream = io.BytesIO(body)
    try:
        version = npy_format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(stream, max_header_size=_MAX_NPY_HEADER)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(stream, max_header_size=_MAX_NPY_HEADER)
        else:
            raise ApiError(400, f".npy format version {version[0]}.{version[1]} is not supported (use 1.0 or 2.0)")
    except ApiError:
        raise
    except Exception as err:  # noqa: BLE001 - numpy's header parser raises ValueError, TokenError, SyntaxError...
        raise ApiError(400, f"the .npy header is malformed ({err})") from err
    if fortran:
        raise ApiError(400, "the .npy array is in Fortran order; send a C-ordered (row-major) array")
    return tuple(int(n) for n in shape), dtype, stream.tell()


def _check_shape(shape: tuple[int, ...], tile_size: int, max_tiles: int, max_bytes: int) -> None:
    if len(shape) != 4 or shape[3] != 3:
        raise ApiError(400, f"shape {list(shape)} is not [N, H, W, 3] (uint8 NHWC RGB tiles)")
    if any(n <= 0 or n > _MAX_DIM for n in shape):
        raise ApiError(400 if any(n <= 0 for n in shape) else 413, f"shape {list(shape)} has a dimension out of range")
    n, height, width, _ = shape
    if (height, width) != (tile_size, tile_size):
        raise ApiError(
            400,
            f"tiles are {height}x{width}; the raw path takes the model's {tile_size}x{tile_size} "
            "tiles exactly (other sizes: POST /segment or /cluster, which pad or resize)",
        )
    if n > max_tiles:
        raise ApiError(413, f"{n} tiles in one request; the limit is {max_tiles} (AGRILAND_MAX_TILES)")
    if n * height * width * 3 > max_bytes:
        raise ApiError(413, f"{n * height * width * 3} bytes of tiles; the limit is {max_bytes}")


def raw_tiles(
    body: bytes, content_type: str, options: RawOptions, tile_size: int, max_tiles: int, max_bytes: int
) -> RawTiles:
    """The body as a uint8 [N, T, T, 3] view (no copy); every problem is a 4xx ApiError."""
    if not body:
        raise ApiError(400, "empty request body; send uint8 NHWC tiles as application/octet-stream or .npy")
    is_npy = content_type in NPY_TYPES or body.startswith(NPY_MAGIC)
    if content_type not in (*NPY_TYPES, RAW_TYPE):
        raise ApiError(
            415,
            f"unsupported content type {content_type or '(none)'!r}; use application/octet-stream "
            "(with ?shape=N,H,W,3) or application/x-npy",
        )
    if is_npy:
        if options.shape is not None:
            raise ApiError(400, "a .npy body carries its own shape; leave out ?shape=")
        shape, dtype, offset = _npy_header(body)
        if dtype != np.uint8:
            raise ApiError(400, f"the .npy array is {dtype}; the raw path takes uint8 tiles only")
    else:
        shape, offset = _shape_from_query(options.shape), 0
    _check_shape(shape, tile_size, max_tiles, max_bytes)
    expected = int(np.prod(shape))
    if len(body) - offset != expected:
        raise ApiError(
            400,
            f"the body holds {len(body) - offset} bytes of tiles; shape {list(shape)} as uint8 "
            f"needs exactly {expected}",
        )
    tiles = np.frombuffer(body, dtype=np.uint8, count=expected, offset=offset).reshape(shape)
    answer_npy = options.format == "npy" if options.format is not None else is_npy
    return RawTiles(tiles, answer_npy)


def encode(array: np.ndarray, as_npy: bool) -> tuple[bytes, str, dict[str, str]]:
    """(body, media type, headers) of an answer array: .npy, or its raw C-order bytes with X-Shape / X-Dtype."""
    array = np.ascontiguousarray(array)
    headers = {"X-Shape": ",".join(map(str, array.shape)), "X-Dtype": str(array.dtype)}
    if as_npy:
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        return buffer.getvalue(), NPY_TYPES[0], headers
    return array.tobytes(), RAW_TYPE, headers
