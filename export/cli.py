"""`agriland export dec|unet|fields`: ONNX artifacts with parity-checked manifests, one or all variants."""

from __future__ import annotations

import argparse
from pathlib import Path

from contract.artifacts import VARIANTS
from contract.manifest import read_manifest
from export.parity import MIN_GATE_TILES

GRAPH_OPTIMIZERS = ("auto", "tf2onnx", "onnxruntime")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agriland export", description="Export a trained model to ONNX (model.onnx + manifest.json)."
    )
    parser.add_argument("name", choices=("dec", "unet", "fields"), help="which model to export")
    parser.add_argument("--run", type=Path, default=None, help="training run folder (default runs/<name>)")
    parser.add_argument("--models", type=Path, default=Path("models"), help="artifact root (default models)")
    parser.add_argument(
        "--variant",
        choices=(*VARIANTS, "all"),
        default="fp32",
        help="fp32, fp16 (GPUs), int8 (CPUs, static QDQ) or all (default fp32)",
    )
    parser.add_argument(
        "--calibration-data",
        type=Path,
        default=None,
        help="real tiles (a folder, EuroSAT-style class folders, GeoTIFF tiles or a pairs CSV) for "
        "int8 calibration (default: the training data recorded in the run's "
        "training_summary.json, drawn disjoint from the parity tiles)",
    )
    parser.add_argument(
        "--parity-data",
        type=Path,
        default=None,
        help="tiles compared Keras vs ONNX (default: the run's training data; --calibration-data "
        "when that cannot be read)",
    )
    parser.add_argument("--calibration-tiles", type=int, default=64, help="tiles int8 calibration reads (default 64)")
    parser.add_argument("--parity-tiles", type=int, default=64, help="tiles compared Keras vs ONNX (default 64)")
    parser.add_argument(
        "--gate-tiles",
        type=int,
        default=MIN_GATE_TILES,
        help=f"fewest parity tiles the int8 gate accepts (default {MIN_GATE_TILES}; int8 must reach "
        "mask IoU 0.98 / cluster agreement 0.97 against Keras on them)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="fail when an fp16/int8 variant misses its parity gate (default: drop it with a "
        "warning, recorded in models/<name>/export_summary.json; fp32 always must pass)",
    )
    parser.add_argument(
        "--graph-optimizer",
        choices=GRAPH_OPTIMIZERS,
        default="auto",
        help="who optimises the converted graph: tf2onnx's optimisers, or ONNX Runtime's offline "
        "optimisation (bounded memory for graphs with huge weights, e.g. the full DEC); "
        "auto picks onnxruntime for graphs with a weight over 16 M elements",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import export  # noqa: F401  (TF env vars before TensorFlow loads)
    from export.pipeline import run_export

    run = args.run or Path("runs") / args.name
    variants = list(VARIANTS) if args.variant == "all" else [args.variant]
    outcomes = run_export(
        run,
        args.models,
        args.name,
        variants,
        args.calibration_data,
        args.parity_tiles,
        strict=args.strict,
        n_calibration_tiles=args.calibration_tiles,
        graph_optimizer=args.graph_optimizer,
        parity_source=args.parity_data,
        min_gate_tiles=args.gate_tiles,
    )
    for outcome in outcomes:
        if outcome.folder is None:
            print(f"{args.name}/{outcome.variant}: DROPPED, not exported ({outcome.reason})")
            if outcome.parity and outcome.parity.get("gate"):
                print(f"  {outcome.parity['gate']}")
            continue
        manifest = read_manifest(outcome.folder)
        p = manifest.parity
        figures = [
            f"max|diff| {p.max_abs_diff:.2e}" if p.max_abs_diff is not None else None,
            f"mask IoU {p.mask_iou:.4f}" if p.mask_iou is not None else None,
            f"cluster agreement {p.cluster_agreement:.4f}" if p.cluster_agreement is not None else None,
        ]
        print(
            f"{manifest.name}/{manifest.variant}: {outcome.folder / 'model.onnx'} "
            f"({', '.join(f for f in figures if f)} vs Keras on {p.n_tiles} tiles)"
        )
        gate = getattr(p, "gate", None)
        if gate:
            print(f"  {gate}")
    return 0
