"""Image decoding: every accepted format to uint8 RGB, and clear errors for broken or oversized input."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from inference.tiles.decoding import DecodeLimits, ImageDecodeError, decode_image

RGB = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)


def _save(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _geotiff(data: np.ndarray, nodata: float | None = None) -> bytes:
    count, height, width = data.shape
    with rasterio.MemoryFile() as memfile:
        with memfile.open(
            driver="GTiff",
            height=height,
            width=width,
            count=count,
            dtype=str(data.dtype),
            crs="EPSG:4326",
            transform=from_origin(10, 50, 0.001, 0.001),
            nodata=nodata,
        ) as dst:
            dst.write(data)
        return memfile.read()


@pytest.mark.parametrize(
    ("data", "exact"),
    [
        (_save(Image.fromarray(RGB), "PNG"), True),
        (_save(Image.fromarray(RGB), "TIFF"), True),
        (_save(Image.fromarray(RGB), "TIFF", compression="tiff_lzw"), True),
        (_save(Image.fromarray(RGB), "JPEG", quality=95), False),
    ],
    ids=["png", "tiff", "tiff-lzw", "jpeg"],
)
def test_rgb_formats(data: bytes, exact: bool) -> None:
    out = decode_image(data)
    assert out.dtype == np.uint8 and out.shape == (32, 48, 3)
    if exact:
        np.testing.assert_array_equal(out, RGB)
    else:  # lossy: the same pixels Pillow itself decodes
        np.testing.assert_array_equal(out, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


def test_grayscale_palette_and_rgba() -> None:
    gray = decode_image(_save(Image.fromarray(RGB[..., 0]), "PNG"))
    np.testing.assert_array_equal(gray, np.repeat(RGB[..., :1], 3, axis=-1))
    palette = Image.fromarray(RGB).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    np.testing.assert_array_equal(decode_image(_save(palette, "PNG")), np.asarray(palette.convert("RGB")))
    alpha = np.full(RGB.shape[:2], 255, np.uint8)
    alpha[:, :10] = 0
    rgba = decode_image(_save(Image.fromarray(np.dstack([RGB, alpha])), "PNG"))
    np.testing.assert_array_equal(rgba[:, 10:], RGB[:, 10:])
    assert not rgba[:, :10].any()  # transparent pixels are nodata (black)


def test_sixteen_bit_png_and_tiff_are_stretched() -> None:
    values = (np.arange(32 * 48, dtype=np.uint16).reshape(32, 48) * 20).astype(np.uint16)
    out = decode_image(_save(Image.fromarray(values), "PNG"))
    assert out.shape == (32, 48, 3) and out.min() == 0 and out.max() == 255
    rgb16 = np.stack([values, values // 2, values // 3])
    tiff = decode_image(_geotiff(rgb16))
    assert tiff.shape == (32, 48, 3) and tiff.dtype == np.uint8 and tiff.max() == 255


def test_geotiff_tile_with_four_bands_and_nodata() -> None:
    data = np.random.default_rng(2).integers(100, 3000, (4, 32, 48), dtype=np.uint16)
    data[:, :5, :] = 0
    out = decode_image(_geotiff(data, nodata=0))
    assert out.shape == (32, 48, 3)
    assert not out[:5].any() and out[5:].any()


def test_float_geotiff() -> None:
    data = np.random.default_rng(3).random((3, 16, 16)).astype(np.float32)
    out = decode_image(_geotiff(data))
    assert out.shape == (16, 16, 3) and out.max() == 255


@pytest.mark.parametrize(
    ("data", "word"),
    [
        (b"", "empty"),
        (b"this is text, not an image", "not a PNG"),
        (_save(Image.fromarray(RGB), "PNG")[:300], "truncated"),
        (_save(Image.fromarray(RGB), "JPEG")[:200], "image"),
        (_save(Image.fromarray(RGB), "TIFF")[:150], "truncated"),
        (b"GIF89a" + b"\x00" * 50, "not a PNG"),
    ],
    ids=["empty", "text", "truncated-png", "truncated-jpeg", "truncated-tiff", "gif"],
)
def test_broken_input_is_a_clear_400(data: bytes, word: str) -> None:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(data, label="upload")
    assert info.value.status == 400
    assert word.lower() in str(info.value).lower() and "upload" in str(info.value)


def _png_claiming(width: int, height: int) -> bytes:
    data = bytearray(_save(Image.fromarray(RGB[:8, :8]), "PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


@pytest.mark.parametrize("size", [(100_000, 100_000), (5000, 5000), (20_000, 10)])
def test_oversized_dimensions_are_refused_from_the_header(size: tuple[int, int]) -> None:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(_png_claiming(*size), DecodeLimits(max_pixels=4096 * 4096, max_side=16384))
    assert info.value.status == 413 and "pixels" in str(info.value)


def test_byte_limit() -> None:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(_save(Image.fromarray(RGB), "PNG"), DecodeLimits(max_bytes=100))
    assert info.value.status == 413
