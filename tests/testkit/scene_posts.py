"""Scenes posted to a running service: synthetic GeoTIFFs, the standard set of three, multipart posts, GeoTIFF reads."""

from __future__ import annotations

import warnings
from pathlib import Path

import httpx
import numpy as np
import rasterio
from affine import Affine
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

UTM = "EPSG:32633"
UTM_TRANSFORM = from_origin(500_000.0, 5_000_000.0, 10.0, 10.0)
WGS_TRANSFORM = from_origin(15.0, 45.0, 1e-4, 1e-4)
LEFT, BOTTOM = 90, 60  # nodata margins of the odd-size scene


def write_scene(
    path: Path,
    height: int,
    width: int,
    crs: str | None = UTM,
    transform: Affine = UTM_TRANSFORM,
    bands: int = 4,
    dtype: str = "uint16",
    left: int = 0,
    bottom: int = 0,
    **profile: object,
) -> Path:
    """A B,G,R,NIR-like stack: soil with one greener field; zero (nodata) margins on the left and bottom."""
    rng = np.random.default_rng(0)
    scale = 20 if dtype == "uint16" else 1
    data = (rng.integers(60, 120, (bands, height, width)) * scale).astype(dtype)
    if bands >= 3:
        data[1, height // 4 : height // 2, width // 4 : width // 2] += 100 * scale
    if left:
        data[:, :, :left] = 0
    if bottom:
        data[:, height - bottom :, :] = 0
    options: dict[str, object] = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": bands,
        "dtype": dtype,
        "transform": transform,
        **profile,
    }
    if crs is not None:
        options["crs"] = crs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", **options) as dst:
            dst.write(data)
    return path


def standard_scenes(folder: Path) -> dict[str, Path]:
    """An odd-size UTM scene with nodata margins, a WGS84 scene with a nodata tag, a small uint8 one."""
    return {
        "utm": write_scene(folder / "utm.tif", 777, 1000, left=LEFT, bottom=BOTTOM),
        "wgs84": write_scene(
            folder / "wgs84.tif", 300, 257, crs="EPSG:4326", transform=WGS_TRANSFORM, bands=3, left=20, nodata=0
        ),
        "small": write_scene(folder / "small.tif", 100, 90, bands=3, dtype="uint8"),
    }


def post_scene(client: httpx.Client, path: str, scene: Path | bytes, **fields: str) -> httpx.Response:
    """A multipart scene request. /segment_scene tests here are about the mask itself (georeferencing, nodata,
    sieve, caps), so they ask for the plain per-pixel cut unless they name a mask_mode (fields: test_fields)."""
    data = scene.read_bytes() if isinstance(scene, Path) else scene
    if path.startswith("/segment_scene"):
        fields.setdefault("mask_mode", "threshold")
    return client.post(path, files={"file": ("scene.tif", data, "image/tiff")}, data=fields)


def read_tif(data: bytes) -> tuple[np.ndarray, rasterio.crs.CRS, Affine, float | None]:
    with MemoryFile(data) as memfile, memfile.open() as dataset:
        return dataset.read(1), dataset.crs, dataset.transform, dataset.nodata


# ----- answers ---------------------------------------------------------------------------------------------
