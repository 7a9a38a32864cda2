"""`agriland segment`: a GeoTIFF/COG scene of any size, window by window, to mask COGs, GeoJSON and a quick-look."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from inference.fields import MODES
from inference.models.answering import load_answering_model
from inference.models.onnx_model import predictor
from inference.models.runtime import RuntimeOptions
from inference.scenes.geo import BAND_PRESETS
from inference.scenes.outputs import preview_image, write_json, write_png
from inference.scenes.polygons import polygons_geojson
from inference.scenes.segment import QUALITIES, SceneRequest, segment_file
from inference.scenes.windowed import DEFAULT_BLOCK, DEFAULT_SIEVE_PX

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
    parser.add_argument(
        "scene", type=str, help="GeoTIFF or COG scene (any size, uint8/uint16/float, with a CRS; a path or a GDAL URL)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    parser.add_argument("--models", type=Path, default=Path("models"), help="models folder (default: models)")
    parser.add_argument(
        "--variant",
        default="fp32",
        help="model variant: fp32, fp16 or int8, or a preference list such as int8,fp32 "
        "(the first one exported is used; default: fp32)",
    )
    parser.add_argument(
        "--overlap",
        type=int,
        default=None,
        help="pixels shared by neighbouring tiles (default: 1/8 of the model tile, as the service)",
    )
    parser.add_argument(
        "--sieve-px",
        type=int,
        default=DEFAULT_SIEVE_PX,
        help="merge arable specks and holes of fewer pixels into their surroundings before the "
        f"mask and polygons are made (default: {DEFAULT_SIEVE_PX}, as the service; 0 keeps all)",
    )
    parser.add_argument(
        "--bands",
        default=None,
        help="R,G,B band numbers (1-based) like 4,3,2, or a preset: "
        + ", ".join(BAND_PRESETS)
        + " (default: 1,2,3; one band is repeated as grayscale)",
    )
    parser.add_argument(
        "--scaling",
        choices=("reflectance", "percentile"),
        default=None,
        help="16-bit/float bands: reflectance (DN/10000, the model's rendering) or a 2-98 %% "
        "stretch (default: the model manifest's radiometry)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="arable probability cut (default: the manifest's field_threshold for --mask-mode "
        "fields, its threshold for --mask-mode threshold)",
    )
    parser.add_argument(
        "--mask-mode",
        choices=MODES,
        default="fields",
        help="fields (default): one mask region and one polygon per field, from the field model "
        "(models/fields) where exported, else the U-Net snapped to colour edges; threshold: the "
        "U-Net's plain per-pixel cut",
    )
    parser.add_argument(
        "--quality",
        choices=QUALITIES,
        default="fast",
        help="fast (default): the field model at the image's own resolution (2.5-10 m); best: at "
        "half its ground size (4x the pixels; docs/field_evaluation.md)",
    )
    parser.add_argument("--min-area-ha", type=float, default=0.0, help="drop polygons smaller than this (hectares)")
    parser.add_argument("--simplify", type=float, default=1.0, help="polygon simplification tolerance in pixels")
    parser.add_argument("--batch-size", type=int, default=8, help="tiles per model call (default: 8)")
    parser.add_argument(
        "--block-size",
        type=int,
        default=DEFAULT_BLOCK,
        help=f"output block side in pixels; memory follows it, not the scene (default: {DEFAULT_BLOCK})",
    )
    parser.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"])
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Segment one scene and write its outputs (each file written atomically)."""
    args = build_parser().parse_args(argv)
    request = SceneRequest(
        mask_mode=args.mask_mode,
        quality=args.quality,
        threshold=args.threshold,
        overlap=args.overlap,
        sieve_px=args.sieve_px,
        bands=args.bands,
        scaling=args.scaling,
        simplify=args.simplify,
        min_area_ha=args.min_area_ha,
    )
    model, field_model = load_answering_model(
        args.models, args.variant, args.mask_mode, args.provider, runtime=RuntimeOptions.from_env()
    )
    scene = request.resolve(model.manifest, args.batch_size, args.block_size)
    params = scene.params
    out: Path = args.out  # created only once the scene has opened (a bad scene leaves nothing behind)
    result = segment_file(
        args.scene,
        predictor(model),
        scene,
        outputs={"mask": out / OUTPUT_FILES["mask"], "probability": out / OUTPUT_FILES["probability"]},
        progress=not args.no_progress,
        preview_side=1024,
    )
    summary = result.summary
    write_json(out / OUTPUT_FILES["geojson"], polygons_geojson(result.polygons))
    if result.preview is not None:
        write_png(out / OUTPUT_FILES["quicklook"], preview_image(*result.preview))
    record = {
        "scene": str(args.scene),
        "model": str(model.folder),
        "quality": args.quality,
        "model_version": model.manifest.version,
        "threshold": params.threshold,
        "mask_mode": args.mask_mode,
        "tiles": result.stats.n_tiles,
        "tile_size": result.tile_size,
        "source_gsd_m": result.source_gsd_m,
        "model_gsd_m": (
            field_model.working_gsd(result.source_gsd_m, args.quality)
            if field_model
            else model.manifest.radiometry.gsd_m
        ),
        "tiles_skipped_nodata": result.stats.n_tiles_skipped,
        "seconds": round(result.seconds, 3),
        "overlap": params.overlap,
        "radiometry": None if result.radiometry is None else result.radiometry.model_dump(),
        **summary.model_dump(),
    }
    write_json(out / OUTPUT_FILES["summary"], record)
    print(
        f"{result.name}: {summary.arable_ha:.2f} ha arable in {summary.n_polygons} polygons, "
        f"{100 * summary.arable_fraction:.1f}% of {summary.valid_ha:.2f} ha valid; wrote {out}/"
    )
    return 0
