"""The real-imagery U-Net evaluation's report: table rows and the docs/ section that `python -m evaluation.unet_real` writes."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

from contract.reports import replace_section
from training.unet_config import get_profile

BEGIN = "<!-- real-imagery-evaluation:begin (python -m evaluation.unet_real regenerates this part) -->"
END = "<!-- real-imagery-evaluation:end -->"
# `efficientnet-lite0@profile`: the default model again, at the quick profile's own epochs and patience.
PROFILE_RUN = "efficientnet-lite0@profile"
ENCODERS = ("efficientnet-lite0", "inceptionv3", "resnet50", "vgg16", "none", "handbuilt", PROFILE_RUN)
LABELS = {
    "efficientnet-lite0": "efficientnet-lite0 (ImageNet, default)",
    PROFILE_RUN: "efficientnet-lite0 (ImageNet, default) at the profile's budget",
    "inceptionv3": "inceptionv3 (random init)",
    "resnet50": "resnet50 (random init)",
    "vgg16": "vgg16 (random init)",
    "none": "none (plain U-Net, untrained encoder)",
    "handbuilt": "hand-built InceptionV3 (random init)",
}
# Only EuroSAT (MIT) pictures go into docs/: Forest Aerial images may not be redistributed, so their overlays
# stay in the run folders (runs/unet_eval_real/).
OVERLAY_FILES = {"mosaics": "unet_real_overlays_mosaics.png"}


def _shown(runs: dict) -> str | None:
    """The default model whose overlays and per-class shares the page shows: the profile-budget run if present."""
    return next((e for e in (PROFILE_RUN, "efficientnet-lite0") if e in runs), None)


def _row(label: str, s: dict[str, object], auc: dict[str, object] | None) -> str:
    m, t = s["metrics"], s["training"]  # type: ignore[index]
    cfg = s["config"]  # type: ignore[index]
    frozen = f" ({cfg['freeze_encoder_epochs']} frozen)" if cfg["freeze_encoder_epochs"] else ""
    budget = f"{t['epochs_run']}/{cfg['epochs']} ep{frozen}"
    cells = [
        label,
        f"{m['iou']:.3f}",
        f"{m['f1']:.3f}",
        f"{m['precision']:.3f}",
        f"{m['recall']:.3f}",
        f"{m['mean_tile_iou']:.3f}",
        f"{s['model']['params'] / 1e6:.1f} M",
        budget,  # type: ignore[index]
        f"{t['best_epoch']}",
        f"{t['fit_seconds']:.0f}",
    ]
    if auc is not None:
        cells.append(f"{auc['auc']:.3f}" if auc else "–")
    return "| " + " | ".join(cells) + " |"


def render(
    results: dict[str, dict[str, dict]],
    aucs: dict[str, dict],
    args: argparse.Namespace,
    command: str,
    forest_native: int,
) -> str:
    """The real-imagery section, between the markers."""
    cfg = next(iter(next(iter(results.values())).values()))["config"]
    lines = [
        BEGIN,
        "",
        "# U-Net evaluation on real imagery",
        "",
        "Reproduce (every number and picture in this part):",
        "",
        "```",
        command,
        "```",
        "",
        f"Machine: {platform.machine()} CPU, {os.cpu_count()} cores shared with other jobs (times are wall clock "
        f"and indicative), no GPU, Python {platform.python_version()}. Every model is trained by "
        "`training.unet_train.train_unet` (the code path `agriland train-unet` runs), `quick` profile "
        f"(Adam {cfg['learning_rate']:g}, batch {cfg['batch_size']}, loss {cfg['loss']}, geometric + "
        f"photometric + scale augmentation (crops down to {cfg['min_crop_scale']:g} of the edge), BatchNorm "
        f"momentum {cfg['bn_momentum']:g}, best epoch by validation IoU) but with **short CPU budgets**: "
        f"{args.epochs_mosaics} epochs on the mosaics and {args.epochs_forest} on Forest Aerial for every "
        f"encoder (the profile itself trains up to {get_profile('quick').epochs}, early stopping patience "
        f'{get_profile("quick").patience}; the rows marked "at the profile\'s budget" do), so the short-budget '
        "models are under-trained and the "
        "table ranks early progress, not final quality. Only EfficientNet-Lite0 starts from ImageNet weights "
        "(it gets one warm-up epoch with the encoder frozen); no other ImageNet file is reachable offline, so "
        "the other encoders start from random weights. Metrics: pixels pooled over the held-out test split "
        "(micro-averaged, threshold 0.5, `training/seg_metrics.py`); mean tile IoU averages per tile.",
        "",
        "## Split method",
        "",
    ]
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
            f"to `train_unet` (grouped split): {d['n_train']} train / {d['n_val']} val / {d['n_test']} test mosaics."
        )
    if "forest" in results:
        s0 = next(iter(results["forest"].values()))
        d = s0["data"]
        resize = (
            f"downsampled from {forest_native} px to {args.forest_size} px (bilinear images, nearest masks) "
            "to fit the CPU budget"
            if args.forest_size != forest_native
            else f"at {forest_native} px"
        )
        lines.append(
            f"- **Forest Aerial** (real forest masks, the workflow's own data set; mask = forest): 1,195 tiles "
            f"{resize}. Split by **source scene** (the number before `_sat_` in the file name), never by tile: "
            f"scenes are shuffled (seed {args.seed}) and dealt to test (15 %) / val (15 %) / train by tile count "
            f"(`split_by_group`): {d['n_train']} train / {d['n_val']} val / {d['n_test']} test tiles."
        )
    lines.append("")
    titles = {
        "mosaics": "EuroSAT mosaics (arable masks, 64 px)",
        "forest": f"Forest Aerial (forest masks, {args.forest_size} px)",
    }
    for dataset, runs in results.items():
        with_auc = dataset == "mosaics"
        lines += [
            f"## {titles[dataset]}",
            "",
            "| encoder | IoU | F1 | precision | recall | mean tile IoU | params | budget | best epoch | "
            "train s |" + (" tile AUC |" if with_auc else ""),
            "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|" + ("---:|" if with_auc else ""),
        ]
        for encoder, summary in runs.items():
            lines.append(_row(LABELS[encoder], summary, aucs.get(encoder, {}) if with_auc else None))
        missing = [LABELS[e].split(" (")[0] for e in ENCODERS if e not in runs and e != PROFILE_RUN]
        lines += [
            "",
            "Budget: epochs run / allowed; best epoch: the checkpoint kept (highest validation IoU), which "
            "the test metrics score; a run stops early after `patience` epochs without a better one."
            + (f" Not run here for lack of CPU time: {', '.join(missing)}." if missing else ""),
            "",
        ]
        if with_auc and aucs:
            a = next(iter(aucs.values()))
            lines += [
                f"Tile AUC: {a['n']} real EuroSAT tiles from the mosaics' **test** split (never in a training "
                f"mosaic; up to {args.auc_per_class} per class, {a['n_crop']} of them cropland), each fed whole at "
                "64 px; score = the tile's mean mask probability; cropland (AnnualCrop, PermanentCrop) against "
                "Forest, Highway, Industrial, Residential, River, SeaLake; Pasture and HerbaceousVegetation left "
                "out (vegetation, not cropland).",
                "",
            ]
            shown = _shown(aucs)
            if shown:
                frac = aucs[shown]["fraction_by_class"]
                lines += [
                    f"Share of pixels called arable per class ({LABELS[shown]}, same tiles): "
                    + ", ".join(f"{c} {v:.2f}" for c, v in frac.items())
                    + ".",
                    "",
                ]
        if dataset in OVERLAY_FILES and _shown(runs):
            lines += [
                f"![{dataset}: held-out tiles, truth (gold) and {LABELS[_shown(runs)]} prediction (cyan)]"
                f"({OVERLAY_FILES[dataset]})",
                "",
                "Overlays (`training.unet_evaluate.write_overlays`, written by the run): held-out test tiles, "
                f"ground truth in gold, the prediction of {LABELS[_shown(runs)]} in cyan, per-tile IoU"
                + (' (the panel titles say "arable"; here the mask is forest).' if dataset == "forest" else "."),
                "",
            ]
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this evaluation's part of the page (between its markers) and keep everything else."""
    replace_section(path, BEGIN, END, section, append=False)
