"""Real-imagery part of docs/unet_evaluation.md: U-Net encoders on EuroSAT mosaics and Forest Aerial, grouped splits."""

# Reproduce (2 shared CPU cores; about 45 minutes for every encoder, a few minutes for the default one):
#     nice -n 10 .venv/bin/python bench/unet_eval_real.py --eurosat ../shared/data/eurosat-rgb \
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
import platform
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import training  # noqa: E402,F401  (environment for TF / segmentation-models)
from bench.common import replace_section  # noqa: E402
from training.mosaics import ARABLE_CLASSES, MosaicConfig, build_mosaics  # noqa: E402
from training.unet_config import UnetConfig, get_profile  # noqa: E402
from training.unet_train import (  # noqa: E402
    MODEL_FILE,
    OVERLAYS_FILE,
    SUMMARY_FILE,
    load_segmentation_data,
    train_unet,
)

log = logging.getLogger("unet_eval_real")

BEGIN = "<!-- real-imagery-evaluation:begin (bench/unet_eval_real.py regenerates this part) -->"
END = "<!-- real-imagery-evaluation:end -->"
LEFT_OUT = ("Pasture", "HerbaceousVegetation")  # vegetation, not cropland: not in the AUC
# `efficientnet-lite0@profile`: the default model again, at the quick profile's own epochs and patience.
PROFILE_RUN = "efficientnet-lite0@profile"
ENCODERS = ("efficientnet-lite0", "inceptionv3", "resnet50", "vgg16", "none", "handbuilt", PROFILE_RUN)
LABELS = {"efficientnet-lite0": "efficientnet-lite0 (ImageNet, default)",
          PROFILE_RUN: "efficientnet-lite0 (ImageNet, default) at the profile's budget",
          "inceptionv3": "inceptionv3 (random init)",
          "resnet50": "resnet50 (random init)", "vgg16": "vgg16 (random init)",
          "none": "none (plain U-Net, untrained encoder)", "handbuilt": "hand-built InceptionV3 (random init)"}
# Only EuroSAT (MIT) pictures go into docs/: Forest Aerial images may not be redistributed, so their overlays
# stay in the run folders (runs/unet_eval_real/).
OVERLAY_FILES = {"mosaics": "unet_real_overlays_mosaics.png"}
MAX_PNG_BYTES = 1_000_000


def run_config(dataset: str, encoder: str, args: argparse.Namespace) -> UnetConfig:
    """The `quick` profile at this data set's tile size and budget; only pretrained encoders get a frozen warm-up."""
    profile = get_profile("quick")
    arch, enc = ("handbuilt", "inceptionv3") if encoder == "handbuilt" else ("unet", encoder.split("@")[0])
    epochs = args.epochs_mosaics if dataset == "mosaics" else args.epochs_forest
    epochs, patience = (profile.epochs, profile.patience) if encoder == PROFILE_RUN else (epochs, epochs)
    return profile.with_overrides(
        tile_size=64 if dataset == "mosaics" else args.forest_size, arch=arch, encoder=enc, epochs=epochs,
        patience=patience, freeze_encoder_epochs=1 if enc == "efficientnet-lite0" else 0, n_overlays=6,
        seed=args.seed).validate()


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
    return {"auc": float(roc_auc_score(crop[scored], score[scored])), "n": int(scored.sum()),
            "n_crop": int((crop & scored).sum()),
            "fraction_by_class": {c: float(fraction[names == c].mean()) for c in sorted(set(classes))}}


def copy_figure(source: Path, target: Path) -> Path:
    """Copy a run's overlay PNG into docs/, palette-quantised when it would exceed 1 MB."""
    from PIL import Image

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    if target.stat().st_size > MAX_PNG_BYTES:
        Image.open(target).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(
            target, optimize=True)
    return target


def _shown(runs: dict) -> str | None:
    """The default model whose overlays and per-class shares the page shows: the profile-budget run if present."""
    return next((e for e in (PROFILE_RUN, "efficientnet-lite0") if e in runs), None)


def _row(label: str, s: dict[str, object], auc: dict[str, object] | None) -> str:
    m, t = s["metrics"], s["training"]  # type: ignore[index]
    cfg = s["config"]  # type: ignore[index]
    frozen = f" ({cfg['freeze_encoder_epochs']} frozen)" if cfg["freeze_encoder_epochs"] else ""
    budget = f"{t['epochs_run']}/{cfg['epochs']} ep{frozen}"
    cells = [label, f"{m['iou']:.3f}", f"{m['f1']:.3f}", f"{m['precision']:.3f}", f"{m['recall']:.3f}",
             f"{m['mean_tile_iou']:.3f}", f"{s['model']['params'] / 1e6:.1f} M", budget,  # type: ignore[index]
             f"{t['best_epoch']}", f"{t['fit_seconds']:.0f}"]
    if auc is not None:
        cells.append(f"{auc['auc']:.3f}" if auc else "–")
    return "| " + " | ".join(cells) + " |"


def render(results: dict[str, dict[str, dict]], aucs: dict[str, dict], args: argparse.Namespace, command: str,
           forest_native: int) -> str:
    """The real-imagery section, between the markers."""
    cfg = next(iter(next(iter(results.values())).values()))["config"]
    lines = [BEGIN, "", "# U-Net evaluation on real imagery", "",
             "Reproduce (every number and picture in this part):", "", "```", command, "```", "",
             f"Machine: {platform.machine()} CPU, {os.cpu_count()} cores shared with other jobs (times are wall clock "
             f"and indicative), no GPU, Python {platform.python_version()}. Every model is trained by "
             "`training.unet_train.train_unet` (the code path `agriland train-unet` runs), `quick` profile "
             f"(Adam {cfg['learning_rate']:g}, batch {cfg['batch_size']}, loss {cfg['loss']}, geometric + "
             f"photometric + scale augmentation (crops down to {cfg['min_crop_scale']:g} of the edge), BatchNorm "
             f"momentum {cfg['bn_momentum']:g}, best epoch by validation IoU) but with **short CPU budgets**: "
             f"{args.epochs_mosaics} epochs on the mosaics and {args.epochs_forest} on Forest Aerial for every "
             f"encoder (the profile itself trains up to {get_profile('quick').epochs}, early stopping patience "
             f"{get_profile('quick').patience}; the rows marked \"at the profile's budget\" do), so the short-budget "
             "models are under-trained and the "
             "table ranks early progress, not final quality. Only EfficientNet-Lite0 starts from ImageNet weights "
             "(it gets one warm-up epoch with the encoder frozen); no other ImageNet file is reachable offline, so "
             "the other encoders start from random weights. Metrics: pixels pooled over the held-out test split "
             "(micro-averaged, threshold 0.5, `training/seg_metrics.py`); mean tile IoU averages per tile.",
             "", "## Split method", ""]
    if "mosaics" in results:
        s0 = next(iter(results["mosaics"].values()))
        d = s0["data"]
        lines.append(
            f"- **EuroSAT mosaics** (arable = AnnualCrop or PermanentCrop): {args.mosaics} mosaics of 64 px built "
            f"by `training.mosaics.build_mosaics` (the `agriland mosaics` builder, seed {args.seed}) from the "
            f"EuroSAT RGB development tiles: every source tile is first assigned to exactly one split (per class "
            f"70 % train / 10 % val / 20 % test), and a mosaic is assembled only from tiles of its own split "
            f"(layouts: one tile, halves, quarters, guillotine cuts; crops of randomly turned/flipped tiles), so "
            f"**no test pixel comes from a tile seen in training**. The `split` column of pairs.csv carries that "
            f"to `train_unet` (grouped split): {d['n_train']} train / {d['n_val']} val / {d['n_test']} test mosaics.")
    if "forest" in results:
        s0 = next(iter(results["forest"].values()))
        d = s0["data"]
        resize = (f"downsampled from {forest_native} px to {args.forest_size} px (bilinear images, nearest masks) "
                  "to fit the CPU budget" if args.forest_size != forest_native else f"at {forest_native} px")
        lines.append(
            f"- **Forest Aerial** (real forest masks, the workflow's own data set; mask = forest): 1,195 tiles "
            f"{resize}. Split by **source scene** (the number before `_sat_` in the file name), never by tile: "
            f"scenes are shuffled (seed {args.seed}) and dealt to test (15 %) / val (15 %) / train by tile count "
            f"(`split_by_group`): {d['n_train']} train / {d['n_val']} val / {d['n_test']} test tiles.")
    lines.append("")
    titles = {"mosaics": "EuroSAT mosaics (arable masks, 64 px)",
              "forest": f"Forest Aerial (forest masks, {args.forest_size} px)"}
    for dataset, runs in results.items():
        with_auc = dataset == "mosaics"
        lines += [f"## {titles[dataset]}", "",
                  "| encoder | IoU | F1 | precision | recall | mean tile IoU | params | budget | best epoch | "
                  "train s |" + (" tile AUC |" if with_auc else ""),
                  "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|" + ("---:|" if with_auc else "")]
        for encoder, summary in runs.items():
            lines.append(_row(LABELS[encoder], summary, aucs.get(encoder, {}) if with_auc else None))
        missing = [LABELS[e].split(" (")[0] for e in ENCODERS if e not in runs and e != PROFILE_RUN]
        lines += ["", "Budget: epochs run / allowed; best epoch: the checkpoint kept (highest validation IoU), which "
                  "the test metrics score; a run stops early after `patience` epochs without a better one."
                  + (f" Not run here for lack of CPU time: {', '.join(missing)}." if missing else ""), ""]
        if with_auc and aucs:
            a = next(iter(aucs.values()))
            lines += [
                f"Tile AUC: {a['n']} real EuroSAT tiles from the mosaics' **test** split (never in a training "
                f"mosaic; up to {args.auc_per_class} per class, {a['n_crop']} of them cropland), each fed whole at "
                "64 px; score = the tile's mean mask probability; cropland (AnnualCrop, PermanentCrop) against "
                "Forest, Highway, Industrial, Residential, River, SeaLake; Pasture and HerbaceousVegetation left "
                "out (vegetation, not cropland).", ""]
            shown = _shown(aucs)
            if shown:
                frac = aucs[shown]["fraction_by_class"]
                lines += [f"Share of pixels called arable per class ({LABELS[shown]}, same tiles): "
                          + ", ".join(f"{c} {v:.2f}" for c, v in frac.items()) + ".", ""]
        if dataset in OVERLAY_FILES and _shown(runs):
            lines += [f"![{dataset}: held-out tiles, truth (gold) and {LABELS[_shown(runs)]} prediction (cyan)]"
                      f"({OVERLAY_FILES[dataset]})", "",
                      "Overlays (`training.unet_evaluate.write_overlays`, written by the run): held-out test tiles, "
                      f"ground truth in gold, the prediction of {LABELS[_shown(runs)]} in cyan, per-tile IoU"
                      + (" (the panel titles say \"arable\"; here the mask is forest)." if dataset == "forest"
                         else "."),
                      ""]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this evaluation's part of the page (between its markers) and keep everything else."""
    replace_section(path, BEGIN, END, section, append=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eurosat", type=Path, required=True, help="EuroSAT-style class folders of real tiles")
    parser.add_argument("--forest", type=Path, required=True, help="Forest Aerial folder (meta_data.csv, images/, "
                                                                   "masks/)")
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=ENCODERS,
                        help="encoders for the mosaics table")
    parser.add_argument("--forest-encoders", nargs="+", choices=ENCODERS,
                        help="encoders for the forest table (default: --encoders)")
    parser.add_argument("--mosaics", type=int, default=2000, help="mosaics in all splits (2000)")
    parser.add_argument("--epochs-mosaics", type=int, default=4)
    parser.add_argument("--epochs-forest", type=int, default=4)
    parser.add_argument("--forest-size", type=int, default=128, help="forest tile size (native 256)")
    parser.add_argument("--auc-per-class", type=int, default=150)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "unet_eval_real",
                        help="mosaics and run folders (not committed)")
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
            copy_figure(args.work / dataset / _shown(results[dataset]) / OVERLAYS_FILE,
                        args.figures / OVERLAY_FILES[dataset])
    paths, classes = eurosat_test_tiles(mosaics_pairs.parent, args.auc_per_class, args.seed)
    for encoder in plan["mosaics"]:
        aucs[encoder] = tile_auc(args.work / "mosaics" / encoder, paths, classes)
        log.info("mosaics/%s: tile AUC %.3f", encoder, aucs[encoder]["auc"])

    from training.tile_io import native_size

    forest_native = native_size(next((args.forest / "images").iterdir()))[0]
    given = [a for a in (sys.argv[1:] if argv is None else argv) if a != "--reuse"]
    command = "nice -n 10 .venv/bin/python bench/unet_eval_real.py " + " ".join(
        os.path.relpath(a, ROOT) if Path(a).is_absolute() else a for a in given)
    section = render(results, aucs, args, command, forest_native)
    write_section(args.out, section)
    (args.work / "results.json").write_text(json.dumps({"aucs": aucs, "runs": {
        d: {e: {k: s[k] for k in ("metrics", "training", "data", "config")} for e, s in r.items()}
        for d, r in results.items()}}, indent=2, default=float))
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
