"""The Sentinel-2 benchmark scene: a uint16 B2,B3,B4,B8 mosaic of the shipped real EuroSAT tiles, written by windows.

Classes are laid out in 8 x 8-tile patches (5 km fields of one land cover), each tile rotated at random, its 8-bit RGB
mapped back to the L2A digital numbers the quickstart models' radiometry contract reads, plus +-15 DN noise; B8 is a
fixed blend of the visible bands (labelled synthetic). Used by `python -m bench.sentinel2_tile`.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from bench.common import ROOT

log = logging.getLogger(__name__)

SAMPLES = ROOT / "samples" / "eurosat-rgb"
PATCH = 8  # tiles per side of one land-cover patch


def sample_tiles() -> dict[str, np.ndarray]:
    """Every shipped EuroSAT tile, uint8 [n, 64, 64, 3] per class."""
    from PIL import Image

    out = {}
    for folder in sorted(p for p in SAMPLES.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.jpg"))
        out[folder.name] = np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files])
    return out


def write_scene(path: Path, side: int, seed: int = 0) -> Path:
    """The mosaic scene described in the module docstring, written 1,024 rows (16 tile rows) at a time."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    if path.is_file():
        return path
    rng = np.random.default_rng(seed)
    tiles = sample_tiles()
    classes = sorted(tiles)
    n = math.ceil(side / 64)
    patch_class = rng.integers(0, len(classes), (math.ceil(n / PATCH), math.ceil(n / PATCH)))
    profile = {
        "driver": "GTiff",
        "width": side,
        "height": side,
        "count": 4,
        "dtype": "uint16",
        "crs": "EPSG:32633",
        "transform": from_origin(300_000, 5_600_040, 10, 10),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "zlevel": 1,
        "BIGTIFF": "YES",
        "nodata": 0,
    }
    tmp = path.with_suffix(".part.tif")
    started = time.monotonic()
    with rasterio.open(tmp, "w", **profile) as dst:
        for row0 in range(0, n, 16):
            rows = min(16, n - row0)
            rgb = np.empty((rows * 64, n * 64, 3), dtype=np.uint8)
            for r in range(rows):
                for c in range(n):
                    pool = tiles[classes[patch_class[(row0 + r) // PATCH, c // PATCH]]]
                    tile = np.rot90(pool[rng.integers(len(pool))], k=int(rng.integers(4)))
                    rgb[r * 64 : (r + 1) * 64, c * 64 : (c + 1) * 64] = tile[:, ::-1] if rng.random() < 0.5 else tile
            y = row0 * 64
            h = min(rows * 64, side - y)
            dn = rgb[:h, :side].astype(np.float32) * (0.275 * 10000 / 255)
            dn += rng.normal(0, 15, dn.shape).astype(np.float32)
            red, green, blue = dn[..., 0], dn[..., 1], dn[..., 2]
            nir = 0.4 * red + 1.6 * green - 0.2 * blue  # synthetic B8: the RGB models never read it
            bands = np.stack([blue, green, red, nir]).clip(1, 65535).astype(np.uint16)
            dst.write(bands, window=Window(0, y, side, h))
    tmp.replace(path)
    log.info(
        "wrote %s (%d x %d, %.0f MB) in %.0f s",
        path,
        side,
        side,
        path.stat().st_size / 2**20,
        time.monotonic() - started,
    )
    return path
