"""`agriland demo`: post sample tiles and a synthetic GeoTIFF scene to a running service and draw the answers."""

from __future__ import annotations

import argparse
import base64
import io
import logging
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

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
    """A synthetic scene as a georeferenced GeoTIFF (UTM 33N, 10 m pixels), like a Sentinel-2 RGB crop."""
    import rasterio
    from rasterio.io import MemoryFile
    from rasterio.transform import from_origin

    height, width = image.shape[:2]
    profile = {
        "driver": "GTiff", "height": height, "width": width, "count": 3, "dtype": "uint8",
        "crs": SCENE_CRS, "transform": from_origin(500_000.0, 5_800_000.0, SCENE_PIXEL_M, SCENE_PIXEL_M),
    }
    with MemoryFile() as memfile:
        with memfile.open(**profile) as dataset:
            dataset.write(np.moveaxis(image, -1, 0))
        return memfile.read()


def _check(response: httpx.Response, what: str) -> dict | bytes:
    if response.status_code != 200:
        raise AgrilandError(f"{what} answered {response.status_code}: {response.text[:300]}")
    if response.headers.get("content-type", "").startswith("application/json"):
        return response.json()
    return response.content


def run_demo(url: str, out: Path, n_tiles: int = 4, scene_size: int = 768, seed: int = 7) -> Path:
    """Post tiles to /segment and /cluster and a scene to /segment_scene; write a PNG of the answers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.synthetic import LANDCOVER_CLASSES, make_scene, make_tiles

    with httpx.Client(base_url=url, timeout=300.0) as client:
        try:
            ready = client.get("/readyz")
        except httpx.HTTPError as err:
            raise AgrilandError(f"no agriland service at {url} ({err}); start it with `make run`") from err
        if ready.status_code != 200:
            raise AgrilandError(f"the service at {url} is not ready yet ({ready.status_code}); try again shortly")
        tiles = make_tiles(n_tiles * 5, 256, seed=seed)
        picks = [int(np.flatnonzero(tiles.labels == code)[0]) for code in range(min(n_tiles, len(LANDCOVER_CLASSES)))]
        files = [("file", (f"tile{i}.png", _png_bytes(tiles.images[i]), "image/png")) for i in picks]
        segment = _check(client.post("/segment", files=files), "/segment")
        cluster = _check(client.post("/cluster", files=files), "/cluster")
        scene = make_scene(scene_size, scene_size, seed=seed)
        scene_tif = _scene_geotiff(scene.image)
        summary = _check(
            client.post("/segment_scene", files=[("file", ("scene.tif", scene_tif, "image/tiff"))],
                        data={"format": "json", "include_mask": "true"}),
            "/segment_scene",
        )
    log.info("demo: /segment, /cluster and /segment_scene answered")

    fig = plt.figure(figsize=(4 * len(picks), 9.5), dpi=100)
    grid = fig.add_gridspec(2, len(picks), height_ratios=[1, 1.6])
    for column, (index, seg, clu) in enumerate(zip(picks, segment["results"], cluster["results"])):
        mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(seg["mask_png_base64"])))) > 127
        axis = fig.add_subplot(grid[0, column])
        axis.imshow(_overlay(tiles.images[index], mask))
        verdict = "ARABLE" if clu["is_arable"] else "not arable"
        axis.set_title(
            f"truth: {LANDCOVER_CLASSES[tiles.labels[index]]}\n"
            f"cluster {clu['cluster']} '{clu['cluster_name'] or '?'}' ({clu['confidence']:.2f}) {verdict}\n"
            f"U-Net arable {seg['arable_fraction']:.0%}",
            fontsize=10,
        )
        axis.axis("off")
    scene_mask = _scene_mask(summary)
    axis = fig.add_subplot(grid[1, :])
    axis.imshow(np.concatenate([scene.image, _overlay(scene.image, scene_mask)], axis=1))
    stats = summary.get("summary", {})
    axis.set_title(
        f"/segment_scene on a {scene_size}x{scene_size} px GeoTIFF ({SCENE_CRS}, {SCENE_PIXEL_M:.0f} m): "
        f"{stats.get('arable_ha', float('nan')):.0f} ha arable in {stats.get('n_polygons', '?')} polygons, "
        f"{stats.get('arable_fraction', float('nan')):.0%} of valid area "
        f"(truth {scene.arable_mask.mean():.0%})",
        fontsize=11,
    )
    axis.axis("off")
    fig.suptitle("agriland demo: tiles through /segment + /cluster (top), a scene through /segment_scene (bottom)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out)
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
    parser.add_argument("--scene-size", type=int, default=768)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    out = run_demo(args.url, args.out, scene_size=args.scene_size, seed=args.seed)
    print(f"wrote {out}")
    return 0
