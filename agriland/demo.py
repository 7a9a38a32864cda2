"""`agriland demo`: post real sample tiles and a scene assembled from real tiles to a running service; draw the answers."""

from __future__ import annotations

import argparse
import base64
import io
import logging
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from agriland.profiles import SAMPLE_DIR
from contract.atomic import atomic_file
from contract.errors import AgrilandError

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:3000"
SCENE_CRS = "EPSG:32633"
SCENE_PIXEL_M = 10.0


def _png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _scene_geotiff(image: np.ndarray) -> bytes:
    """A scene as a Sentinel-2 L2A-like GeoTIFF: uint16 reflectance x 10000 (UTM 33N, 10 m pixels)."""
    import rasterio  # noqa: F401  (MemoryFile needs the driver registry)
    from rasterio.io import MemoryFile
    from rasterio.transform import from_origin

    from contract.radiometry import DEFAULT_RADIOMETRY

    height, width = image.shape[:2]
    reflectance = image.astype(np.float64) / 255.0 * DEFAULT_RADIOMETRY.reflectance_white
    digital_numbers = np.rint(reflectance * DEFAULT_RADIOMETRY.reflectance_scale).astype(np.uint16)
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": 3,
        "dtype": "uint16",
        "crs": SCENE_CRS,
        "transform": from_origin(500_000.0, 5_800_000.0, SCENE_PIXEL_M, SCENE_PIXEL_M),
    }
    with MemoryFile() as memfile:
        with memfile.open(**profile) as dataset:
            dataset.write(np.moveaxis(digital_numbers, -1, 0))
        return memfile.read()


DEMO_CLASSES = ("AnnualCrop", "PermanentCrop", "Pasture", "Forest", "SeaLake", "Residential")
CROPLAND = ("AnnualCrop", "PermanentCrop")


def _sample_tiles(sample: Path) -> dict[str, list[np.ndarray]]:
    """The shipped real tiles, by class."""
    if not sample.is_dir():
        raise AgrilandError(f"the sample of real tiles is missing: {sample}")
    tiles = {}
    for class_dir in sorted(p for p in sample.iterdir() if p.is_dir()):
        files = sorted(class_dir.glob("*.jpg"))
        tiles[class_dir.name] = [np.asarray(Image.open(f).convert("RGB")) for f in files[:40]]
    return tiles


def _real_scene(
    tiles: dict[str, list[np.ndarray]], blocks: int, block_tiles: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A scene of real 64 px tiles: blocks x blocks areas of one land-cover class each; truth = cropland."""
    rng = np.random.default_rng(seed)
    side = 64 * block_tiles
    image = np.zeros((blocks * side, blocks * side, 3), np.uint8)
    truth = np.zeros(image.shape[:2], bool)
    for r in range(blocks):
        for c in range(blocks):
            name = DEMO_CLASSES[int(rng.integers(len(DEMO_CLASSES)))]
            for i in range(block_tiles):
                for j in range(block_tiles):
                    tile = tiles[name][int(rng.integers(len(tiles[name])))]
                    y, x = r * side + 64 * i, c * side + 64 * j
                    image[y : y + 64, x : x + 64] = tile
            truth[r * side : (r + 1) * side, c * side : (c + 1) * side] = name in CROPLAND
    return image, truth


def _check(response: httpx.Response, what: str) -> dict | bytes:
    if response.status_code != 200:
        raise AgrilandError(f"{what} answered {response.status_code}: {response.text[:300]}")
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.content


def run_demo(url: str, out: Path, sample: Path, blocks: int = 4, block_tiles: int = 3, seed: int = 7) -> Path:
    """Post real tiles to /segment and /cluster and a scene of real tiles to /segment_scene; draw the answers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tiles_by_class = _sample_tiles(sample)
    missing = [c for c in DEMO_CLASSES if c not in tiles_by_class]
    if missing:
        raise AgrilandError(f"{sample} lacks the class folder(s) {', '.join(missing)}")
    with httpx.Client(base_url=url, timeout=300.0) as client:
        try:
            ready = client.get("/readyz")
        except httpx.HTTPError as err:
            raise AgrilandError(f"no agriland service at {url} ({err}); start it with `make run`") from err
        if ready.status_code != 200:
            raise AgrilandError(f"the service at {url} is not ready yet ({ready.status_code}); try again shortly")
        images = [tiles_by_class[name][seed % len(tiles_by_class[name])] for name in DEMO_CLASSES]
        files = [("file", (f"{name}.png", _png_bytes(image), "image/png")) for name, image in zip(DEMO_CLASSES, images)]
        segment = _check(client.post("/segment", files=files), "/segment")
        cluster = _check(client.post("/cluster", files=files), "/cluster")
        scene, truth = _real_scene(tiles_by_class, blocks, block_tiles, seed)
        summary = _check(
            client.post(
                "/segment_scene",
                files=[("file", ("scene.tif", _scene_geotiff(scene), "image/tiff"))],
                data={"format": "json", "include_mask": "true"},
            ),
            "/segment_scene",
        )
    log.info("demo: /segment, /cluster and /segment_scene answered")

    fig = plt.figure(figsize=(3 * len(images), 9.5), dpi=100)
    grid = fig.add_gridspec(2, len(images), height_ratios=[1, 1.6])
    for column, (name, image, seg, clu) in enumerate(zip(DEMO_CLASSES, images, segment["results"], cluster["results"])):
        mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(seg["mask_png_base64"])))) > 127
        axis = fig.add_subplot(grid[0, column])
        axis.imshow(_overlay(image, mask), interpolation="nearest")
        verdict = "ARABLE" if clu["is_arable"] else "not arable"
        axis.set_title(
            f"EuroSAT: {name}\n"
            f"cluster {clu['cluster']} '{clu['cluster_name'] or '?'}' ({clu['confidence']:.2f}) {verdict}\n"
            f"U-Net arable {seg['arable_fraction']:.0%}",
            fontsize=10,
        )
        axis.axis("off")
    scene_mask = _scene_mask(summary)
    axis = fig.add_subplot(grid[1, :])
    axis.imshow(np.concatenate([scene, _overlay(scene, truth), _overlay(scene, scene_mask)], axis=1))
    stats = summary.get("summary", {})
    axis.set_title(
        f"/segment_scene on a {scene.shape[1]}x{scene.shape[0]} px uint16 GeoTIFF of real tiles ({SCENE_CRS}, "
        f"{SCENE_PIXEL_M:.0f} m) — image | truth (cropland blocks) | answer: "
        f"{stats.get('arable_ha', float('nan')):.0f} ha arable in {stats.get('n_polygons', '?')} polygons, "
        f"{stats.get('arable_fraction', float('nan')):.0%} of valid area "
        f"(truth {truth.mean():.0%})",
        fontsize=11,
    )
    axis.axis("off")
    fig.suptitle(
        "agriland demo on real Sentinel-2 tiles (EuroSAT sample): /segment + /cluster (top), /segment_scene (bottom)"
    )
    fig.tight_layout()
    with atomic_file(out, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return out


def _scene_mask(summary: dict) -> np.ndarray:
    """The scene mask from the JSON answer's base64 GeoTIFF (mask 1 = arable, 255 = nodata)."""
    from rasterio.io import MemoryFile

    encoded = summary.get("mask_geotiff_base64")
    if not encoded:
        raise AgrilandError("/segment_scene did not return the mask (include_mask=true)")
    with MemoryFile(base64.b64decode(encoded)) as memfile, memfile.open() as dataset:
        return dataset.read(1) == 1


def _overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Arable pixels tinted magenta."""
    tinted = image.astype(np.float32)
    tinted[mask] = 0.45 * tinted[mask] + 0.55 * np.array([255, 0, 200], dtype=np.float32)
    return tinted.astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agriland demo", description=__doc__)
    parser.add_argument("--url", default=DEFAULT_URL, help="the running service")
    parser.add_argument("--out", type=Path, default=Path("docs/demo.png"), help="picture to write")
    parser.add_argument("--sample", type=Path, default=SAMPLE_DIR, help="class folders of real tiles")
    parser.add_argument("--blocks", type=int, default=4, help="the scene has blocks x blocks land-cover areas")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if not 1 <= args.blocks <= 16:
        raise AgrilandError("--blocks must be between 1 and 16")
    out = run_demo(args.url, args.out, args.sample, blocks=args.blocks, seed=args.seed)
    print(f"wrote {out}")
    return 0
