"""`agriland segment`: a GeoTIFF scene through the exported U-Net to a mask GeoTIFF, GeoJSON and quick-look."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np

from contract.errors import AgrilandError
from serving.geo import BAND_PRESETS, DEFAULT_MAX_PIXELS, SceneLimits, read_scene
from serving.polygons import polygons_geojson
from serving.runtime import OnnxModel, artifact_folder
from serving.scene import Predict, segment_scene
from serving.scene_outputs import scene_polygons, scene_summary, write_geotiff, write_json, write_quicklook

log = logging.getLogger(__name__)

OUTPUT_FILES = {
    "mask": "mask.tif",
    "probability": "probability.tif",
    "geojson": "arable.geojson",
    "quicklook": "quicklook.png",
    "summary": "summary.json",
}


def build_parser() -> argparse.ArgumentParser:
    """The `agriland segment` options."""
    parser = argparse.ArgumentParser(
        prog="agriland segment",
        description="Segment arable land in a GeoTIFF scene with the exported U-Net. Writes "
        + ", ".join(OUTPUT_FILES.values())
        + " into --out.",
    )
    parser.add_argument("scene", type=Path, help="GeoTIFF scene (any size, uint8/uint16/float, with a CRS)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    parser.add_argument("--models", type=Path, default=Path("models"), help="models folder (default: models)")
    parser.add_argument("--variant", default="fp32", help="model variant: fp32, fp16 or int8 (default: fp32)")
    parser.add_argument("--overlap", type=int, default=32, help="pixels shared by neighbouring tiles (default: 32)")
    parser.add_argument(
        "--bands",
        default=None,
        help="R,G,B band numbers (1-based) like 4,3,2, or a preset: " + ", ".join(BAND_PRESETS)
        + " (default: 1,2,3; one band is repeated as grayscale)",
    )
    parser.add_argument("--threshold", type=float, default=None, help="arable probability cut (default: the manifest's)")
    parser.add_argument("--wgs84", action="store_true", help="write the GeoJSON in EPSG:4326 instead of the scene CRS")
    parser.add_argument("--min-area-ha", type=float, default=0.0, help="drop polygons smaller than this (hectares)")
    parser.add_argument("--simplify", type=float, default=1.0, help="polygon simplification tolerance in pixels")
    parser.add_argument("--batch-size", type=int, default=8, help="tiles per model call (default: 8)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger scenes")
    parser.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"])
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _predictor(model: OnnxModel) -> Predict:
    """The model's batched call, returning the `mask` output."""
    names = [spec.name for spec in model.manifest.outputs]
    output = "mask" if "mask" in names else names[0]

    def predict(batch: np.ndarray) -> np.ndarray:
        return model.run(batch)[output]

    return predict


def main(argv: list[str] | None = None) -> int:
    """Segment one scene and write its outputs (each file written atomically)."""
    args = build_parser().parse_args(argv)
    if args.min_area_ha < 0:
        raise AgrilandError(f"--min-area-ha must be >= 0, got {args.min_area_ha}")
    model = OnnxModel.load(artifact_folder(args.models, "unet", args.variant), providers=args.provider)
    if model.manifest.task != "segmentation":
        raise AgrilandError(f"{model.folder} holds a {model.manifest.task} model, not a segmentation U-Net")
    threshold = model.manifest.threshold if args.threshold is None else args.threshold
    raster = read_scene(args.scene, bands=args.bands, limits=SceneLimits(max_pixels=args.max_pixels))
    result = segment_scene(
        raster,
        _predictor(model),
        tile_size=model.tile_size,
        overlap=args.overlap,
        threshold=threshold,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    polygons = scene_polygons(result, simplify_px=args.simplify, min_area_ha=args.min_area_ha)
    summary = scene_summary(result, polygons, args.min_area_ha)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    write_geotiff(out / OUTPUT_FILES["mask"], result, "mask")
    write_geotiff(out / OUTPUT_FILES["probability"], result, "probability")
    write_json(out / OUTPUT_FILES["geojson"], polygons_geojson(polygons, wgs84=args.wgs84))
    write_quicklook(out / OUTPUT_FILES["quicklook"], raster, result)
    record = {
        "scene": str(args.scene),
        "model": str(model.folder),
        "model_version": model.manifest.version,
        "threshold": threshold,
        "tiles": result.n_tiles,
        "tiles_skipped_nodata": result.n_tiles_skipped,
        **summary.model_dump(),
    }
    write_json(out / OUTPUT_FILES["summary"], record)
    print(
        f"{args.scene.name}: {summary.arable_ha:.2f} ha arable in {summary.n_polygons} polygons, "
        f"{100 * summary.arable_fraction:.1f}% of {summary.valid_ha:.2f} ha valid; wrote {out}/"
    )
    return 0
