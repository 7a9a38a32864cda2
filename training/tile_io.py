"""Single-file readers for tiles: RGB images (PNG/JPEG/TIFF), binary masks and GeoTIFF bands, resized to a tile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from contract.errors import AgrilandError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"})
TIFF_SUFFIXES = frozenset({".tif", ".tiff"})


def image_files(folder: Path, suffixes: frozenset[str] = IMAGE_SUFFIXES) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def open_image(path: Path) -> Image.Image:
    if not path.is_file():
        raise AgrilandError(f"image file not found: {path}")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise AgrilandError(f"cannot read image {path}: {err}") from err
    return image


def read_rgb(path: Path | str, tile_size: int) -> np.ndarray:
    """One image file as a (T, T, 3) uint8 array; 16-bit or multi-band TIFFs go through `read_geotiff`."""
    path = Path(path)
    if path.suffix.lower() in TIFF_SUFFIXES:
        try:
            return _read_rgb_pil(path, tile_size)
        except AgrilandError:
            from contract.radiometry import DEFAULT_RADIOMETRY, to_model_input

            data, valid = read_geotiff(path, (4, 3, 2) if _band_count(path) in (12, 13) else None)
            return to_tile(to_model_input(data, DEFAULT_RADIOMETRY, valid), tile_size)  # uint16/float: no wrap
    return _read_rgb_pil(path, tile_size)


def _band_count(path: Path) -> int:
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(path) as src:
            return int(src.count)
    except RasterioIOError as err:
        raise AgrilandError(f"cannot read image {path}: {err}") from err


def _read_rgb_pil(path: Path, tile_size: int) -> np.ndarray:
    image = open_image(path)
    if image.mode not in ("RGB", "RGBA", "L", "P", "LA", "CMYK", "YCbCr"):
        raise AgrilandError(f"cannot read image {path}: unsupported mode {image.mode}")
    image = image.convert("RGB")
    if image.size != (tile_size, tile_size):
        image = image.resize((tile_size, tile_size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def native_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file without decoding its pixels."""
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError):
        data, _ = read_geotiff(path)
        return data.shape[1], data.shape[0]


def read_mask(path: Path | str, tile_size: int, expect_size: tuple[int, int] | None = None) -> np.ndarray:
    """One mask file as (T, T) uint8 {0,1}; `expect_size` (W, H) is checked against the image's size first."""
    path = Path(path)
    image = open_image(path)
    if expect_size is not None and image.size != expect_size:
        raise AgrilandError(
            f"mask {path} is {image.size[0]}x{image.size[1]} but its image is {expect_size[0]}x{expect_size[1]}"
        )
    array = np.asarray(image.convert("L") if image.mode not in ("L", "1", "P", "I", "I;16") else image)
    if array.ndim != 2:
        raise AgrilandError(f"mask {path} must have one band, got shape {array.shape}")
    binary = (array > 0) if array.max(initial=0) <= 1 else (array >= 128)
    mask = Image.fromarray(binary.astype(np.uint8))
    if mask.size != (tile_size, tile_size):
        mask = mask.resize((tile_size, tile_size), Image.Resampling.NEAREST)
    return np.asarray(mask, dtype=np.uint8)


def to_tile(array: np.ndarray, tile_size: int) -> np.ndarray:
    """Resize an (H, W, 3) uint8 array to (T, T, 3) bilinearly (no-op when it already fits)."""
    if array.shape[:2] == (tile_size, tile_size):
        return array
    image = Image.fromarray(np.ascontiguousarray(array), mode="RGB")
    return np.asarray(image.resize((tile_size, tile_size), Image.Resampling.BILINEAR), dtype=np.uint8)


def read_geotiff(path: Path | str, bands: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A raster's selected bands as (H, W, 3) in its own dtype, and its valid-pixel mask (rasterio)."""
    import rasterio
    from rasterio.errors import RasterioIOError

    from contract.radiometry import select_bands, valid_mask

    path = Path(path)
    try:
        with rasterio.open(path) as src:
            data = np.moveaxis(src.read(), 0, -1)
            nodata = src.nodata
    except RasterioIOError as err:
        raise AgrilandError(f"cannot read GeoTIFF {path}: {err}") from err
    try:
        rgb = select_bands(data, bands)
    except AgrilandError as err:
        raise AgrilandError(f"{path}: {err}") from err
    return rgb, valid_mask(data, nodata)
