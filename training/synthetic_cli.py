"""`agriland synth`: write a synthetic farmland data set and, optionally, a contact sheet of sample tiles."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from training.synthetic import write_dataset
from training.synthetic_io import write_contact_sheet


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agriland synth",
        description="Write synthetic farmland tiles (images/, masks/, pairs.csv, eurosat/, scenes/).",
    )
    parser.add_argument("--out", type=Path, help="data set folder to create (e.g. data/synth)")
    parser.add_argument("--tiles", type=int, default=1000, help="number of tiles (default 1000)")
    parser.add_argument("--tile-size", type=int, default=64, help="tile edge in pixels (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same bytes")
    parser.add_argument("--scenes", type=int, default=2, help="whole scenes written to scenes/ (default 2)")
    parser.add_argument("--scene-size", type=int, default=1024, help="scene edge in pixels (default 1024)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    parser.add_argument(
        "--contact-sheet",
        type=Path,
        metavar="PNG",
        help="also draw a contact sheet of sample tiles (4x6 pairs of 128 px) to this file",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.out is None and args.contact_sheet is None:
        parser.error("give --out and/or --contact-sheet")
    if args.tiles < 1 or args.tile_size < 8 or args.scenes < 0 or args.scene_size < 64:
        parser.error("need --tiles >= 1, --tile-size >= 8, --scenes >= 0, --scene-size >= 64")
    if args.out is not None:
        out = write_dataset(
            args.out,
            args.tiles,
            args.tile_size,
            seed=args.seed,
            n_scenes=args.scenes,
            scene_size=args.scene_size,
            overwrite=args.overwrite,
        )
        summary = json.loads((out / "dataset.json").read_text())
        print(f"wrote {summary['n_tiles']} tiles of {args.tile_size} px to {out}: {summary['tiles_per_class']}")
    if args.contact_sheet is not None:
        sheet = write_contact_sheet(args.contact_sheet, seed=args.seed)
        print(f"wrote contact sheet {sheet}")
    return 0
