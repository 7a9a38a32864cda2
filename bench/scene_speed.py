"""Scene level: a 2000x2000 synthetic GeoTIFF through POST /segment_scene, vs model-only tile throughput.

Also times the same scene in-process (inference.scenes.segment.segment_file on ONNX Runtime, no HTTP) to split the
cost between the model, tiling/stitching and the HTTP/decoding around it. When the server has no
/segment_scene yet, only the in-process figure is recorded and the result says so.
Reproduce: `.venv/bin/python -m bench.scene_speed [--quick]`.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import httpx
import numpy as np

from bench.common import TILE, WORK, load_average, machine_info, save_result, scene_tiles, setup_logging, time_runs
from bench.models import MODELS_DIR, prepare
from bench.server import Server

log = logging.getLogger(__name__)

SIDE = 2000
OVERLAP = TILE // 8  # the scene endpoint's default (tile // 8: 8 px at 64 px)
SCENE_PATH = WORK / f"scene_{SIDE}.tif"


def write_scene(path: Path = SCENE_PATH) -> Path:
    """A seeded synthetic 2000x2000 RGB GeoTIFF (UTM 33N, 10 m pixels)."""
    if path.is_file():
        return path
    import rasterio
    from rasterio.transform import from_origin

    from training.synthetic import make_scene

    image = make_scene(SIDE, SIDE, seed=5).image
    tmp = path.with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", driver="GTiff", height=SIDE, width=SIDE, count=3, dtype="uint8",
                       crs="EPSG:32633", transform=from_origin(500000, 5000000, 10, 10)) as ds:
        ds.write(np.moveaxis(image, -1, 0))
    tmp.replace(path)
    return path


def grid_tiles(overlap: int = OVERLAP) -> int:
    from inference.scenes.tiling import TileGrid

    return len(TileGrid(SIDE, SIDE, TILE, overlap))


def via_http(server: Server, path: Path, runs: int) -> dict:
    """POST the scene (multipart field `file`) `runs` times after one warm-up; seconds per scene."""
    data = path.read_bytes()
    times: list[float] = []
    body: dict = {}
    with httpx.Client(timeout=600.0) as client:
        for i in range(runs + 1):
            t0 = time.perf_counter()
            response = client.post(f"{server.url}/segment_scene", files={"file": (path.name, data, "image/tiff")})
            elapsed = time.perf_counter() - t0
            if response.status_code == 404:
                return {"available": False, "status": 404}
            if response.status_code != 200:
                raise RuntimeError(f"/segment_scene answered {response.status_code}: {response.text[:400]}")
            if i > 0:
                times.append(elapsed)
            ctype = response.headers.get("content-type", "")
            body = response.json() if "json" in ctype else {"content_type": ctype, "bytes": len(response.content)}
    n_tiles = _find_int(body, ("n_tiles", "tiles")) or grid_tiles()
    return {"available": True, "seconds": times, "seconds_median": float(np.median(times)), "n_tiles": n_tiles,
            "response_keys": sorted(body)[:30]}


def _find_int(body: object, keys: tuple[str, ...]) -> int | None:
    """The first integer under one of `keys`, searching nested dicts."""
    if isinstance(body, dict):
        for key in keys:
            if isinstance(body.get(key), int):
                return int(body[key])
        for value in body.values():
            found = _find_int(value, keys)
            if found is not None:
                return found
    return None


def in_process(path: Path, batch: int) -> dict:
    """inference.scenes.segment.segment_file with the fp32 ONNX model, no HTTP (windowed read + tile + run + blend)."""
    from inference.models.onnx_model import OnnxModel, predictor
    from inference.models.sessions import default_cpu_threads
    from inference.scenes.segment import ResolvedScene, segment_file
    from inference.scenes.windowed import WindowParams

    model = OnnxModel.load(MODELS_DIR / "unet" / "fp32", "cpu", default_cpu_threads(1))
    model.run(scene_tiles(1, seed=3))
    t0 = time.perf_counter()
    run = segment_file(path, predictor(model), ResolvedScene(WindowParams(TILE, OVERLAP, batch_size=batch)))
    return {"segment_s": time.perf_counter() - t0, "n_tiles": run.stats.n_tiles, "batch": batch}


def model_only(batches: tuple[int, ...], seconds: float) -> dict[str, float]:
    from inference.models.onnx_model import OnnxModel
    from inference.models.sessions import default_cpu_threads

    model = OnnxModel.load(MODELS_DIR / "unet" / "fp32", "cpu", default_cpu_threads(1))
    tiles = scene_tiles(32, seed=3)
    return {str(b): b / float(np.median(time_runs(lambda: model.run(tiles[:b]), 3, seconds))) for b in batches}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one timed scene instead of two")
    args = parser.parse_args(argv)
    setup_logging()
    prepare()
    path = write_scene()
    env = {"AGRILAND_MODELS_DIR": str(MODELS_DIR), "AGRILAND_PROVIDERS": "cpu"}
    result: dict = {"machine": machine_info(), "side": SIDE, "tile": TILE, "overlap": OVERLAP,
                    "grid_tiles": grid_tiles(), "tile_equivalents": SIDE * SIDE / TILE**2, "quick": args.quick}
    with Server("serving.service:Agriland", env, "scene") as server:
        result["http"] = via_http(server, path, 1 if args.quick else 2)
        result["server_peak_rss_mb"] = server.peak_rss_mb
    log.info("/segment_scene: %s", result["http"])
    result["in_process"] = in_process(path, 16)
    log.info("in-process segment_file: %s", result["in_process"])
    result["model_only_tiles_per_s"] = model_only((8, 16), 2.0 if args.quick else 5.0)
    result["load_average_after"] = load_average()
    log.info("wrote %s", save_result("scene_speed", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
