"""Figures and files of the field evaluations: the image as a GeoTIFF, answer-vs-truth overlays and their sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_geotiff(path: Path, rgb: np.ndarray, gsd: float) -> None:
    """The image as a 3-band GeoTIFF at `gsd` m/px in a projected CRS (only the pixel size matters)."""
    import rasterio
    from rasterio.transform import from_origin

    h, w = rgb.shape[:2]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=3,
        dtype="uint8",
        crs="EPSG:32616",
        transform=from_origin(500_000.0, 4_500_000.0, gsd, gsd),
    ) as dst:
        dst.write(np.moveaxis(rgb, -1, 0))


def overlay(rgb: np.ndarray, answer_labels: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Hits green, false field red, missed field blue over the dimmed image; answered field outlines white."""
    from scipy import ndimage

    a, t = answer_labels > 0, truth > 0
    out = (rgb.astype(np.float32) * 0.55).astype(np.uint8)
    for where, colour in ((a & t, (40, 200, 60)), (a & ~t, (230, 40, 40)), (~a & t, (40, 90, 240))):
        out[where] = (0.5 * out[where] + 0.5 * np.array(colour)).astype(np.uint8)
    edge = (answer_labels != ndimage.grey_erosion(answer_labels, size=3)) & (answer_labels > 0)
    out[edge] = 255
    return out


def overlay_sheet(work: Path, out: Path) -> Path | None:
    """The overlays of seed 0 (each fold's first held-out image, as delivered and coarsened) in one figure."""
    paths = sorted(work.glob("overlay_x*_seed0_*.png"), key=lambda p: (p.name.split("_seed0_")[1], p.name))
    if not paths:
        return None
    side = 300
    sheet = Image.new("RGB", (side * len(paths), side), "white")
    for k, path in enumerate(paths):
        sheet.paste(Image.open(path).convert("RGB").resize((side, side), Image.Resampling.NEAREST), (k * side, 0))
    sheet.save(out)
    return out
