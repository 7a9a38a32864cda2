"""`agriland mosaics`: arable-mask training data (PNG mosaics + pairs.csv) from a EuroSAT-style folder of real tiles."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.mosaics import MosaicConfig, build_mosaics


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agriland mosaics", description=__doc__)
    parser.add_argument(
        "--eurosat",
        type=Path,
        required=True,
        help="class folders of real tiles (AnnualCrop/, PermanentCrop/, Forest/, ...)",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (images/, masks/, pairs.csv)")
    parser.add_argument("--size", type=int, default=64, help="mosaic side in pixels (64)")
    parser.add_argument("--n", dest="n_mosaics", type=int, default=3000, help="mosaics in all splits (3000)")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="share of source tiles held out (0.2)")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="share of source tiles for validation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.size < 32 or args.n_mosaics < 3:
        raise SystemExit("agriland mosaics: --size must be >= 32 and --n >= 3")
    config = MosaicConfig(
        size=args.size,
        n_mosaics=args.n_mosaics,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
        seed=args.seed,
    )
    pairs = build_mosaics(args.eurosat, args.out, config, overwrite=args.overwrite)
    print(f"mosaics written: {pairs} (split column: train/val/test by source tile)")
    return 0
