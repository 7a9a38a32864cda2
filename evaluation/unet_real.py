"""Real-imagery part of docs/unet_evaluation.md: U-Net encoders on EuroSAT mosaics and Forest Aerial, grouped splits."""

# Reproduce (2 shared CPU cores; about 45 minutes for every encoder, a few minutes for the default one):
#     nice -n 10 .venv/bin/python -m evaluation.unet_real --eurosat ../shared/data/eurosat-rgb \
#         --forest ../shared/data/forest-aerial
# Each model is trained by `training.unet_train.train_unet` (the shipped code path; one run folder per data set and
# encoder under --work). `--reuse` takes a finished run folder whose config matches instead of training again, so
# encoders can be added one invocation at a time; the page is rendered from every requested run.

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import numpy as np

import training  # noqa: F401  (environment for TF / segmentation-models)
from evaluation.unet_real_report import (
    ENCODERS,
    OVERLAY_FILES,
    PROFILE_RUN,
    _shown,
    render,
    write_section,
)
from training.mosaics import ARABLE_CLASSES, MosaicConfig, build_mosaics
from training.unet_config import UnetConfig, get_profile
from training.unet_data import load_segmentation_data
from training.unet_train import MODEL_FILE, OVERLAYS_FILE, SUMMARY_FILE, train_unet

ROOT = Path(__file__).resolve().parents[1]

log = logging.getLogger("unet_eval_real")

LEFT_OUT = ("Pasture", "HerbaceousVegetation")  # vegetation, not cropland: not in the AUC
MAX_PNG_BYTES = 1_000_000


def run_config(dataset: str, encoder: str, args: argparse.Namespace) -> UnetConfig:
    """The `quick` profile at this data set's tile size and budget; only pretrained encoders get a frozen warm-up."""
    profile = get_profile("quick")
    arch, enc = ("handbuilt", "inceptionv3") if encoder == "handbuilt" else ("unet", encoder.split("@")[0])
    epochs = args.epochs_mosaics if dataset == "mosaics" else args.epochs_forest
    epochs, patience = (profile.epochs, profile.patience) if encoder == PROFILE_RUN else (epochs, epochs)
    return profile.with_overrides(
        tile_size=64 if dataset == "mosaics" else args.forest_size,
        arch=arch,
        encoder=enc,
        epochs=epochs,
        patience=patience,
        freeze_encoder_epochs=1 if enc == "efficientnet-lite0" else 0,
        n_overlays=6,
        seed=args.seed,
    ).validate()


def ensure_mosaics(args: argparse.Namespace) -> Path:
    """Mosaics of the EuroSAT tiles (`agriland mosaics` builder), reused when built with the same settings."""
    folder = args.work / "mosaics"
    config = MosaicConfig(size=64, n_mosaics=args.mosaics, seed=args.seed)
    stamp = folder / "mosaic_config.json"
    wanted = json.dumps({"config": config.__dict__, "source": str(args.eurosat.resolve())}, sort_keys=True)
    if (folder / "pairs.csv").is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return folder / "pairs.csv"
    pairs = build_mosaics(args.eurosat, folder, config, overwrite=True)
    stamp.write_text(wanted)
    return pairs


def train_or_reuse(dataset: str, encoder: str, data: tuple, args: argparse.Namespace) -> dict[str, object]:
    """Train one model with `train_unet` (or reuse a finished run with the same config)."""
    config = run_config(dataset, encoder, args)
    run_dir = args.work / dataset / encoder
    summary_path = run_dir / SUMMARY_FILE
    if args.reuse and summary_path.is_file():
        summary = json.loads(summary_path.read_text())
        if summary.get("config") == json.loads(json.dumps(config.to_dict())):
            log.info("%s/%s: reusing %s", dataset, encoder, run_dir)
            return summary
    images, masks, info = data
    log.info("%s/%s: training (%d epochs, %d px)", dataset, encoder, config.epochs, config.tile_size)
    return train_unet(images, masks, config, run_dir, dict(info), verbose=2)


def eurosat_test_tiles(mosaics_dir: Path, per_class: int, seed: int) -> tuple[list[str], list[str]]:
    """Source tiles of the mosaics' test split (never in a training mosaic), up to `per_class` per class."""
    with open(mosaics_dir / "splits.csv", newline="", encoding="utf-8") as handle:
        paths = [row["tile"] for row in csv.DictReader(handle) if row["split"] == "test"]
    by_class: dict[str, list[str]] = {}
    for path in paths:
        by_class.setdefault(Path(path).parent.name, []).append(path)
    rng = np.random.default_rng(seed)
    chosen, classes = [], []
    for name in sorted(by_class):
        files = sorted(by_class[name])
        pick = [files[i] for i in np.sort(rng.choice(len(files), min(per_class, len(files)), replace=False))]
        chosen += pick
        classes += [name] * len(pick)
    return chosen, classes


def tile_auc(run_dir: Path, paths: list[str], classes: list[str]) -> dict[str, object]:
    """AUC of the mean mask probability per real tile, cropland vs the rest (Pasture, HerbaceousVegetation out)."""
    from sklearn.metrics import roc_auc_score

    from training.keras_objects import load_inference_model
    from training.tile_io import read_rgb
    from training.unet_evaluate import predict_masks

    model = load_inference_model(run_dir / MODEL_FILE)
    size = int(model.input_shape[1])
    images = np.stack([read_rgb(p, size) for p in paths])
    probs = predict_masks(model, images, batch_size=64)
    score = probs.reshape(len(probs), -1).mean(1)
    names = np.asarray(classes)
    crop = np.isin(names, ARABLE_CLASSES)
    scored = ~np.isin(names, LEFT_OUT)
    fraction = (probs >= 0.5).reshape(len(probs), -1).mean(1)
    return {
        "auc": float(roc_auc_score(crop[scored], score[scored])),
        "n": int(scored.sum()),
        "n_crop": int((crop & scored).sum()),
        "fraction_by_class": {c: float(fraction[names == c].mean()) for c in sorted(set(classes))},
    }


def copy_figure(source: Path, target: Path) -> Path:
    """Copy a run's overlay PNG into docs/, palette-quantised when it would exceed 1 MB."""
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    if target.stat().st_size > MAX_PNG_BYTES:
        Image.open(target).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
            target, optimize=True
        )
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eurosat", type=Path, required=True, help="EuroSAT-style class folders of real tiles")
    parser.add_argument(
        "--forest", type=Path, required=True, help="Forest Aerial folder (meta_data.csv, images/, masks/)"
    )
    parser.add_argument(
        "--encoders", nargs="+", default=list(ENCODERS), choices=ENCODERS, help="encoders for the mosaics table"
    )
    parser.add_argument(
        "--forest-encoders", nargs="+", choices=ENCODERS, help="encoders for the forest table (default: --encoders)"
    )
    parser.add_argument("--mosaics", type=int, default=2000, help="mosaics in all splits (2000)")
    parser.add_argument("--epochs-mosaics", type=int, default=4)
    parser.add_argument("--epochs-forest", type=int, default=4)
    parser.add_argument("--forest-size", type=int, default=128, help="forest tile size (native 256)")
    parser.add_argument("--auc-per-class", type=int, default=150)
    parser.add_argument(
        "--work", type=Path, default=ROOT / "runs" / "unet_eval_real", help="mosaics and run folders (not committed)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "unet_evaluation.md")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs")
    parser.add_argument("--reuse", action="store_true", help="reuse finished run folders with the same config")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    forest_csv = args.forest / "meta_data.csv"
    plan = {"mosaics": args.encoders, "forest": args.forest_encoders or args.encoders}

    results: dict[str, dict[str, dict]] = {}
    aucs: dict[str, dict] = {}
    mosaics_pairs = ensure_mosaics(args)
    for dataset, encoders in plan.items():
        source = mosaics_pairs if dataset == "mosaics" else forest_csv
        data = load_segmentation_data(run_config(dataset, encoders[0], args), source)
        results[dataset] = {e: train_or_reuse(dataset, e, data, args) for e in encoders}
        del data
        if _shown(results[dataset]):
            copy_figure(
                args.work / dataset / _shown(results[dataset]) / OVERLAYS_FILE, args.figures / OVERLAY_FILES[dataset]
            )
    paths, classes = eurosat_test_tiles(mosaics_pairs.parent, args.auc_per_class, args.seed)
    for encoder in plan["mosaics"]:
        aucs[encoder] = tile_auc(args.work / "mosaics" / encoder, paths, classes)
        log.info("mosaics/%s: tile AUC %.3f", encoder, aucs[encoder]["auc"])

    from training.tile_io import native_size

    forest_native = native_size(next((args.forest / "images").iterdir()))[0]
    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--reuse"]
    command = "nice -n 10 .venv/bin/python -m evaluation.unet_real " + " ".join(
        os.path.relpath(a, ROOT) if Path(a).is_absolute() else a for a in given
    )
    section = render(results, aucs, args, command, forest_native)
    write_section(args.out, section)
    (args.work / "results.json").write_text(
        json.dumps(
            {
                "aucs": aucs,
                "runs": {
                    d: {e: {k: s[k] for k in ("metrics", "training", "data", "config")} for e, s in r.items()}
                    for d, r in results.items()
                },
            },
            indent=2,
            default=float,
        )
    )
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
