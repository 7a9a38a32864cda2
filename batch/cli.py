"""`agriland batch INPUT... --out DIR`: many scenes on Ray Data (local or a cluster), resumable."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from batch.config import BatchConfig
from batch.inputs import resolve_inputs
from batch.job import MERGED, RUN_MANIFEST, SUMMARY, run_batch
from batch.vectors import VECTOR_FORMATS
from inference.scenes.geo import BAND_PRESETS
from inference.scenes.windowed import DEFAULT_BLOCK, DEFAULT_SIEVE_PX

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The `agriland batch` options."""
    parser = argparse.ArgumentParser(
        prog="agriland batch",
        description="Segment many GeoTIFF/COG scenes on Ray Data with bounded memory. Per scene: mask COG and "
        f"polygons; per run: {MERGED} (EPSG:4326), {SUMMARY} and {RUN_MANIFEST}. A rerun skips finished scenes. "
        "Exit status 0: all scenes done; 1: some failed (see the run manifest); 2: bad arguments.",
    )
    parser.add_argument(
        "inputs", nargs="+", help="scene files, folders of .tif, .txt lists of paths/URLs, STAC Item(Collection) .json"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (created; reused to resume)")
    parser.add_argument("--models", type=Path, default=Path("models"), help="models folder (default: models)")
    parser.add_argument(
        "--variant",
        default="fp32",
        help="model variant: fp32, fp16 or int8, or a preference list such as int8,fp32 "
        "(the first one exported is used; default: fp32)",
    )
    parser.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda", "tensorrt"])
    parser.add_argument(
        "--address",
        default=None,
        help="Ray cluster address (ray://host:10001 or auto); default RAY_ADDRESS or a local Ray",
    )
    parser.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--actors", type=int, default=None, help="ONNX Runtime actors (default: CPUs / threads)")
    parser.add_argument("--threads-per-actor", type=int, default=1, help="ONNX Runtime threads per actor (default 1)")
    parser.add_argument("--gpus-per-actor", type=float, default=0.0, help="GPUs per actor (e.g. 1 or 0.5)")
    parser.add_argument(
        "--format",
        dest="formats",
        action="append",
        choices=VECTOR_FORMATS,
        default=None,
        help="polygon format per scene, repeatable (default: parquet; geojson is EPSG:4326)",
    )
    parser.add_argument("--probability", action="store_true", help="also write the probability COG per scene")
    parser.add_argument("--bands", default=None, help="R,G,B band numbers like 4,3,2, or: " + ", ".join(BAND_PRESETS))
    parser.add_argument(
        "--scaling",
        choices=("reflectance", "percentile"),
        default=None,
        help="16-bit/float bands: reflectance (DN/10000) or a 2-98 %% stretch (default: the manifest's)",
    )
    parser.add_argument("--asset", default=None, help="STAC asset key to read (default: the first GeoTIFF asset)")
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
        "--threshold",
        type=float,
        default=None,
        help="arable probability cut (default: the manifest's field_threshold for --mask-mode "
        "fields, its threshold for --mask-mode threshold)",
    )
    parser.add_argument(
        "--mask-mode",
        choices=("fields", "threshold"),
        default="fields",
        help="fields (default, as agriland segment and /segment_scene): one polygon per delineated "
        "field; threshold: the plain per-pixel cut",
    )
    parser.add_argument(
        "--quality",
        choices=("fast", "best"),
        default="fast",
        help="with a field model: fast (default) answers at each scene's own resolution (2.5-10 m), "
        "best at half its ground size (4x the pixels)",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="tiles per model call (default: 8)")
    parser.add_argument("--block-size", type=int, default=DEFAULT_BLOCK, help=f"window side (default {DEFAULT_BLOCK})")
    parser.add_argument("--min-area-ha", type=float, default=0.0, help="drop polygons smaller than this (hectares)")
    parser.add_argument("--simplify", type=float, default=1.0, help="polygon simplification tolerance in pixels")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the batch; the exit status says whether every scene finished."""
    args = build_parser().parse_args(argv)
    config = BatchConfig(
        out=args.out,
        models=args.models,
        variant=args.variant,
        provider=args.provider,
        overlap=args.overlap,
        sieve_px=args.sieve_px,
        mask_mode=args.mask_mode,
        quality=args.quality,
        threshold=args.threshold,
        batch_size=args.batch_size,
        block_size=args.block_size,
        bands=args.bands,
        scaling=args.scaling,
        formats=tuple(args.formats or ("parquet",)),
        probability=args.probability,
        min_area_ha=args.min_area_ha,
        simplify=args.simplify,
        actors=args.actors,
        threads_per_actor=args.threads_per_actor,
        gpus_per_actor=args.gpus_per_actor,
        address=args.address,
        num_cpus=args.num_cpus,
        asset=args.asset,
    )
    config.check()
    scenes = resolve_inputs(args.inputs, asset=args.asset, bands=args.bands)
    report = run_batch(config, scenes, progress=not args.no_progress)
    print(
        f"{report.ok} scene(s) done, {report.skipped} already done (skipped), {report.failed} failed; "
        f"run manifest {report.manifest_path}"
    )
    return report.exit_code
