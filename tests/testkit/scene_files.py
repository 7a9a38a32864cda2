"""Synthetic scene files for the tests: a uint16 B2,B3,B4,B8 GeoTIFF/COG with one green field and nodata margins."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.transform import from_origin

UTM = from_origin(500_000.0, 5_000_000.0, 10.0, 10.0)
FIELD = (slice(100, 420), slice(150, 620))  # crosses several 128 px blocks in both directions


def write_scene(
    path: Path,
    height: int = 500,
    width: int = 700,
    dtype: str = "uint16",
    cog: bool = False,
    crs: str | None = "EPSG:32633",
) -> Path:
    """uint16 (or uint8) B2,B3,B4,B8 stack: soil, one green field, zero (nodata) margins."""
    rng = np.random.default_rng(7)
    data = np.empty((4, height, width), dtype=np.uint16)
    for band, (lo, hi) in enumerate([(900, 1100), (1400, 1600), (1900, 2100), (2500, 3000)]):
        data[band] = rng.integers(lo, hi, (height, width))
    data[1][FIELD] += 1500
    data[2][FIELD] -= 800
    data[:, :, :40] = 0
    data[:, height - 25 :, :] = 0
    if dtype == "uint8":
        data = (data // 16).astype(np.uint8)
    profile = {"width": width, "height": height, "count": 4, "dtype": dtype, "transform": UTM}
    if crs:
        profile["crs"] = crs
    profile.update(driver="COG", compress="deflate") if cog else profile.update(driver="GTiff")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if cog:  # the COG driver only copies: write a plain file, then copy it
            plain = path.with_suffix(".plain.tif")
            with rasterio.open(plain, "w", **{**profile, "driver": "GTiff"}) as dst:
                dst.write(data)
            rasterio.shutil.copy(plain, path, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=256)
            plain.unlink()
        else:
            with rasterio.open(path, "w", **profile) as dst:
                dst.write(data)
    return path


def greenness(batch: np.ndarray) -> np.ndarray:
    f = batch.astype(np.float32) / 255.0
    return 1.0 / (1.0 + np.exp(-20.0 * (f[..., 1] - 0.5 * (f[..., 0] + f[..., 2]))))
