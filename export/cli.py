"""`agriland export dec|unet`: ONNX artifacts with parity-checked manifests, one or all variants."""

from __future__ import annotations

import argparse
from pathlib import Path

from contract.manifest import VARIANTS, read_manifest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agriland export",
                                     description="Export a trained model to ONNX (model.onnx + manifest.json).")
    parser.add_argument("name", choices=("dec", "unet"), help="which model to export")
    parser.add_argument("--run", type=Path, default=None, help="training run folder (default runs/<name>)")
    parser.add_argument("--models", type=Path, default=Path("models"), help="artifact root (default models)")
    parser.add_argument("--variant", choices=(*VARIANTS, "all"), default="fp32",
                        help="fp32, fp16 (GPUs), int8 (CPUs, static QDQ) or all (default fp32)")
    parser.add_argument("--calibration-data", type=Path, default=None,
                        help="tiles for parity and int8 calibration (default: the run's training data source)")
    parser.add_argument("--parity-tiles", type=int, default=16, help="tiles compared Keras vs ONNX (default 16)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import export  # noqa: F401  (TF env vars before TensorFlow loads)
    from export.pipeline import export_models

    run = args.run or Path("runs") / args.name
    variants = list(VARIANTS) if args.variant == "all" else [args.variant]
    folders = export_models(run, args.models, args.name, variants, args.calibration_data, args.parity_tiles)
    for folder in folders:
        manifest = read_manifest(folder)
        p = manifest.parity
        figures = [f"max|diff| {p.max_abs_diff:.2e}" if p.max_abs_diff is not None else None,
                   f"mask IoU {p.mask_iou:.4f}" if p.mask_iou is not None else None,
                   f"cluster agreement {p.cluster_agreement:.4f}" if p.cluster_agreement is not None else None]
        print(f"{manifest.name}/{manifest.variant}: {folder / 'model.onnx'} "
              f"({', '.join(f for f in figures if f)} vs Keras on {p.n_tiles} tiles)")
    return 0
