"""Image bytes -> uint8 RGB array: PNG, JPEG, TIFF/GeoTIFF, WebP, RGBA, grayscale, palette; limits first."""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from contract.errors import AgrilandError
from contract.formats import IMAGE_FORMATS, is_tiff
from contract.radiometry import select_bands, to_model_input, valid_mask
from inference.pixels import PixelSpec

log = logging.getLogger(__name__)

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated upload is an error, never a half-grey tile
_ROWS_PER_CHUNK = 256  # alpha compositing works on row blocks: no whole-image float or wide-int copies


class ImageDecodeError(AgrilandError):
    """The bytes are not an acceptable image; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class DecodeLimits:
    """Upper bounds checked from the header, before any pixel is decoded."""

    max_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    max_side: int = 16384
    max_bands: int = 16  # TIFF bands read at once (a 13-band Sentinel-2 tile fits)
    hint: str = ""  # appended to the 413 message, e.g. where larger images go


def set_pillow_limits(max_pixels: int) -> None:
    """Pillow's own decompression-bomb bound (it errors at twice MAX_IMAGE_PIXELS) from the service's limit."""
    Image.MAX_IMAGE_PIXELS = max_pixels


def _premultiply(image: Image.Image) -> np.ndarray:
    """RGB times alpha (transparent -> black, i.e. nodata) in integer arithmetic, a block of rows at a time."""
    rgba = np.asarray(image.convert("RGBA"), dtype=np.uint8)
    out = np.empty(rgba.shape[:2] + (3,), dtype=np.uint8)
    for start in range(0, rgba.shape[0], _ROWS_PER_CHUNK):
        block = rgba[start : start + _ROWS_PER_CHUNK].astype(np.uint16)
        out[start : start + _ROWS_PER_CHUNK] = (block[..., :3] * block[..., 3:] + 127) // 255
    return out


def _check_size(width: int, height: int, limits: DecodeLimits, label: str) -> None:
    if width <= 0 or height <= 0:
        raise ImageDecodeError(f"{label}: image has no pixels ({width}x{height})")
    if width > limits.max_side or height > limits.max_side or width * height > limits.max_pixels:
        raise ImageDecodeError(
            f"{label}: image is {width}x{height} pixels; the limit is {limits.max_pixels} pixels "
            f"and {limits.max_side} per side{limits.hint}",
            status=413,
        )


def _pillow_to_array(image: Image.Image, pixels: PixelSpec) -> np.ndarray:
    """Pixels of a loaded Pillow image as uint8 RGB (16-bit and float modes by the radiometry contract)."""
    mode = image.mode
    if mode in {"RGB"}:
        return np.asarray(image, dtype=np.uint8)
    if mode in {"RGBA", "RGBa", "LA", "La", "PA"}:
        return _premultiply(image)
    if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        array = np.asarray(image)
        if mode.startswith("I;16"):
            array = array.astype(np.uint16, copy=False)
        grey = array[..., None]
        return select_bands(to_model_input(grey, pixels.radiometry, valid_mask(grey), pixels.scaling))
    return np.asarray(image.convert("RGB"), dtype=np.uint8)  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _decode_with_pillow(data: bytes, limits: DecodeLimits, label: str, pixels: PixelSpec) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
        except UnidentifiedImageError as err:
            raise ImageDecodeError(f"{label}: not a PNG, JPEG, TIFF or WebP image") from err
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise ImageDecodeError(f"{label}: image dimensions are too large ({err})", status=413) from err
        with image:
            _check_size(image.width, image.height, limits, label)
            try:
                image.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
                raise ImageDecodeError(f"{label}: image dimensions are too large ({err})", status=413) from err
            except (OSError, ValueError, SyntaxError, EOFError) as err:
                if "truncated" in str(err).lower() or isinstance(err, EOFError):
                    raise ImageDecodeError(f"{label}: image data is truncated or corrupt ({err})") from err
                raise
            return _pillow_to_array(image, pixels)


def _decode_with_rasterio(data: bytes, limits: DecodeLimits, label: str, pixels: PixelSpec) -> np.ndarray:
    """TIFFs Pillow cannot read (multi-band 16-bit, float, GeoTIFF with nodata)."""
    try:
        from rasterio.errors import RasterioError
        from rasterio.io import MemoryFile
    except ImportError as err:  # pragma: no cover - rasterio is a serving requirement
        raise ImageDecodeError(f"{label}: this TIFF needs rasterio, which is not installed") from err
    try:
        with MemoryFile(data) as memfile, memfile.open() as dataset:
            _check_size(dataset.width, dataset.height, limits, label)
            if dataset.count > limits.max_bands:
                raise ImageDecodeError(
                    f"{label}: the TIFF has {dataset.count} bands; the limit is {limits.max_bands}", status=413
                )
            array = np.moveaxis(dataset.read(), 0, -1)
            nodata = dataset.nodata
    except ImageDecodeError:
        raise
    except (RasterioError, ValueError, OSError) as err:
        raise ImageDecodeError(f"{label}: TIFF could not be read ({err})") from err
    valid = valid_mask(array, nodata)
    try:
        bands = pixels.bands_for(array.shape[-1]) or ((1,) if array.shape[-1] == 2 else None)
        return to_model_input(select_bands(array, bands), pixels.radiometry, valid, pixels.scaling)
    except AgrilandError as err:
        raise ImageDecodeError(f"{label}: {err}") from err


def decode_image(
    data: bytes, limits: DecodeLimits | None = None, label: str = "image", pixels: PixelSpec | None = None
) -> np.ndarray:
    """Decode one image to the model's uint8 [H, W, 3]; raises ImageDecodeError with a clear message (and status).

    TIFFs go to rasterio first (bands, nodata, 16-bit and float by the radiometry contract), Pillow otherwise.
    """
    limits, pixels = limits or DecodeLimits(), pixels or PixelSpec()
    if not data:
        raise ImageDecodeError(f"{label}: empty file")
    if len(data) > limits.max_bytes:
        raise ImageDecodeError(f"{label}: {len(data)} bytes; the limit is {limits.max_bytes}", status=413)
    array = None
    if is_tiff(data):
        try:
            array = _decode_with_rasterio(data, limits, label, pixels)
        except ImageDecodeError as err:
            if err.status == 413 or pixels.bands is not None:
                raise
            log.debug("rasterio cannot read %s (%s); trying Pillow", label, err)
    if array is None:
        try:
            array = _decode_with_pillow(data, limits, label, pixels)
        except (OSError, ValueError, SyntaxError, TypeError, KeyError, IndexError) as err:
            raise ImageDecodeError(f"{label}: image could not be decoded ({err})") from err
        if pixels.bands is not None:  # e.g. 3,2,1 for a BGR rendering
            try:
                array = select_bands(array, pixels.bands)
            except AgrilandError as err:
                raise ImageDecodeError(f"{label}: {err}") from err
    if array.ndim != 3 or array.shape[-1] != 3 or array.dtype != np.uint8:
        raise ImageDecodeError(f"{label}: decoded to an unexpected array {array.dtype} {array.shape}")
    return np.ascontiguousarray(array)


def decode_cost(data: bytes) -> int:
    """Roughly how many bytes decoding `data` produces (3 per header pixel), read from the header only.

    TIFFs (rasterio, any band count and depth) and unreadable headers count as large: they are never decoded
    on the event loop.
    """
    if is_tiff(data[:4]):
        return 1 << 40
    try:
        with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as image:
            return 3 * image.width * image.height
    except Exception:  # noqa: BLE001 - the real decode reports the error; here it only means "not cheap"
        return 1 << 40
