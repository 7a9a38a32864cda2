"""`agriland via-to-masks`: convert a VGG Image Annotator JSON export to PNG masks and a pairs CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.annotations import via_to_masks


def _class_map(text: str) -> dict[str, int]:
    """Parse "arable=1,orchard=2" into {"arable": 1, "orchard": 2}."""
    mapping: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, number = item.partition("=")
        if not sep or not name.strip() or not number.strip().isdigit():
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE pairs separated by commas, got {item!r}")
        mapping[name.strip()] = int(number)
    return mapping


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agriland via-to-masks",
        description="VIA 2 JSON (project or exported annotations) -> masks/*.png + pairs.csv, written atomically.",
    )
    parser.add_argument("via_json", type=Path, help="VIA project or annotation JSON file")
    parser.add_argument("--images", type=Path, required=True, help="folder holding the annotated image files")
    parser.add_argument("--out", type=Path, required=True, help="output folder (masks/, pairs.csv)")
    parser.add_argument("--attribute", help="region attribute that selects regions (e.g. landcover)")
    parser.add_argument("--value", help="attribute value to keep (e.g. arable); without it any non-empty value")
    parser.add_argument(
        "--class-values",
        type=_class_map,
        metavar="NAME=V,...",
        help="multi-class masks: attribute value -> pixel value (1-255), needs --attribute",
    )
    parser.add_argument("--copy-images", action="store_true", help="copy the images into OUT/images/")
    parser.add_argument("--skip-empty", action="store_true", help="leave out images without selected regions")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.value or args.class_values) and not args.attribute:
        parser.error("--value and --class-values need --attribute")
    if args.value and args.class_values:
        parser.error("give either --value or --class-values, not both")
    out = via_to_masks(
        args.via_json,
        args.images,
        args.out,
        attribute=args.attribute,
        value=args.value,
        class_values=args.class_values,
        copy_images=args.copy_images,
        skip_empty=args.skip_empty,
        overwrite=args.overwrite,
    )
    rows = sum(1 for _ in open(out / "pairs.csv")) - 1
    print(f"wrote {rows} masks to {out / 'masks'} and {out / 'pairs.csv'}")
    return 0
