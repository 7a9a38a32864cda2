"""`agriland train-fields`: train the field model (background / interior / boundary) from field polygons."""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

from contract.errors import AgrilandError

SHIPPED_NEGATIVES = Path(__file__).resolve().parents[1] / "samples" / "eurosat-rgb"


def build_parser() -> argparse.ArgumentParser:
    from training.field_train import PROFILES

    parser = argparse.ArgumentParser(prog="agriland train-fields", description=__doc__)
    parser.add_argument(
        "--polygons",
        type=Path,
        required=True,
        help="field polygons: a VGG Image Annotator JSON (every region a field), or GeoJSON / "
        "GeoPackage / GeoParquet polygons over GeoTIFFs",
    )
    parser.add_argument(
        "--images",
        type=Path,
        nargs="+",
        required=True,
        help="the VIA export's image folder, or the GeoTIFF(s) (or a folder of them) under the vectors",
    )
    parser.add_argument(
        "--gsd",
        type=float,
        default=None,
        help="metres per pixel of plain (non-georeferenced) images (default 1.0); GeoTIFFs say theirs",
    )
    parser.add_argument(
        "--negatives",
        type=Path,
        default=None,
        help="EuroSAT-layout folder whose Forest/River/SeaLake/Residential/Industrial/Highway tiles "
        "are background everywhere (default: the shipped sample; 'none' for no negatives)",
    )
    parser.add_argument("--run", type=Path, default=Path("runs/fields"), help="run folder (default runs/fields)")
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="quick",
        help="tiny: seconds (tests); quick: ~10 min on 2 CPU cores; full: for a GPU",
    )
    group = parser.add_argument_group("overrides (default: the profile's value)")
    group.add_argument("--epochs", type=int)
    group.add_argument("--steps-per-epoch", type=int)
    group.add_argument("--batch-size", type=int)
    group.add_argument("--lr", dest="learning_rate", type=float)
    group.add_argument("--tile-size", type=int)
    group.add_argument("--encoder", choices=("efficientnet-lite0", "none"))
    group.add_argument("--seed", type=int)
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    from training.field_chips import load_negative_tiles
    from training.field_polygons import read_fields
    from training.field_train import PROFILES, SUMMARY_FILE, train_fields

    args = build_parser().parse_args(argv)
    if not args.quiet:
        logging.getLogger("training").setLevel(logging.INFO)
    overrides = {
        k: getattr(args, k)
        for k in ("epochs", "steps_per_epoch", "batch_size", "learning_rate", "tile_size", "encoder", "seed")
        if getattr(args, k) is not None
    }
    config = replace(PROFILES[args.profile], **overrides).validate()
    images = read_fields(args.polygons, list(args.images), args.gsd)
    negatives_dir = args.negatives if args.negatives is not None else SHIPPED_NEGATIVES
    negatives = None
    if str(negatives_dir).lower() != "none":
        if not Path(negatives_dir).is_dir():
            raise AgrilandError(f"negative tile folder not found: {negatives_dir}")
        negatives = load_negative_tiles(negatives_dir, config.negatives_per_class, config.seed)
    info = {
        "polygons": str(args.polygons),
        "images": [str(p) for p in args.images],
        "n_images": len(images),
        "n_fields": int(sum(i.n_fields for i in images)),
        "negatives": None if negatives is None else str(negatives_dir),
    }
    summary = train_fields(images, negatives, config, args.run, info, verbose=0)
    t = summary["training"]
    print(
        f"field model {summary['encoder']} at {config.tile_size} px on {len(images)} images "
        f"({info['n_fields']} fields): {t['epochs_run']} epochs in {t['fit_seconds']} s, best epoch {t['best_epoch']}"
    )
    print(f"  run folder: {args.run} (inference_model.keras, curve.png, {SUMMARY_FILE})")
    print(f"  next: agriland export fields --run {args.run}")
    return 0
