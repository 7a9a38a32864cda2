"""Compare U-Net encoders (inceptionv3, resnet50, untrained, hand-built) on held-out synthetic tiles.

Writes docs/unet_evaluation.md and docs/unet_overlays.png. Every variant gets the same tiles, split, seed,
epochs and batch size. Reproduce with:

    .venv/bin/python bench/unet_compare.py            # ~8 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import training  # noqa: E402,F401  (environment for TF / segmentation-models)
from training.keras_objects import load_inference_model  # noqa: E402
from training.unet_config import UnetConfig  # noqa: E402
from training.unet_evaluate import predict_masks, tint  # noqa: E402
from training.unet_train import MODEL_FILE, load_segmentation_data, split_indices, train_unet  # noqa: E402

log = logging.getLogger("unet_compare")

VARIANTS: tuple[tuple[str, str, str], ...] = (  # label, arch, encoder
    ("inceptionv3", "unet", "inceptionv3"),
    ("resnet50", "unet", "resnet50"),
    ("untrained (plain U-Net)", "unet", "none"),
    ("hand-built InceptionV3", "handbuilt", "inceptionv3"),
)


def _figure(path: Path, images, masks, probs_by_label: dict[str, np.ndarray], n: int, threshold: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.seg_metrics import per_tile_iou
    from training.unet_evaluate import pick_overlay_tiles

    indices = pick_overlay_tiles(masks, n)
    cols = 2 + len(probs_by_label)
    fig, axes = plt.subplots(len(indices), cols, figsize=(2.2 * cols, 2.3 * len(indices)), squeeze=False)
    for row, index in enumerate(indices):
        panels = [(images[index], "tile"), (tint(images[index], masks[index] > 0, np.array([255, 215, 0])),
                                            f"truth {np.mean(masks[index] > 0):.0%}")]
        for label, probs in probs_by_label.items():
            iou = per_tile_iou(masks[index:index + 1], probs[index:index + 1], threshold)[0]
            panels.append((tint(images[index], probs[index] >= threshold, np.array([0, 200, 255])),
                           f"{label.split(' ')[0]} IoU {iou:.2f}"))
        for ax, (panel, title) in zip(axes[row], panels):
            ax.imshow(panel, interpolation="nearest")
            ax.set_title(title, fontsize=8)
            ax.axis("off")
    fig.suptitle("held-out synthetic tiles: truth (gold) and each model's prediction (cyan)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiles", type=int, default=320)
    parser.add_argument("--tile-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "unet-compare")
    parser.add_argument("--docs", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    base = UnetConfig(tile_size=args.tile_size, epochs=args.epochs, patience=args.epochs, seed=args.seed,
                      n_overlays=6)
    images, masks, info = load_segmentation_data(base, synthetic=args.tiles)
    _, _, test_idx = split_indices(len(images), base.val_fraction, base.test_fraction, base.seed)
    rows, probs_by_label = [], {}
    for label, arch, encoder in VARIANTS:
        config = base.with_overrides(arch=arch, encoder=encoder).validate()
        run = args.runs / f"{arch}-{encoder}"
        summary = train_unet(images, masks, config, run, info, verbose=0)
        model = load_inference_model(run / MODEL_FILE)
        started = time.monotonic()
        probs_by_label[label] = np.zeros(masks.shape, np.float32)
        probs_by_label[label][test_idx] = predict_masks(model, images[test_idx])
        predict_ms = (time.monotonic() - started) / len(test_idx) * 1000
        t = summary["training"]
        rows.append({"label": label, **summary["metrics"], "params": summary["model"]["params"],
                     "epochs": t["epochs_run"], "best_epoch": t["best_epoch"], "fit_s": t["fit_seconds"],
                     "ms_train": t["fit_seconds"] * 1000 / (t["epochs_run"] * summary["data"]["n_train"]),
                     "ms_predict": predict_ms})
        log.info("%s: %s", label, json.dumps({k: v for k, v in rows[-1].items() if k != "label"}, default=float))

    args.docs.mkdir(parents=True, exist_ok=True)
    _figure(args.docs / "unet_overlays.png", images[test_idx], masks[test_idx],
            {k: v[test_idx] for k, v in probs_by_label.items()}, 6, base.threshold)
    n_train = len(images) - len(test_idx) - max(1, round(len(images) * base.val_fraction))
    table = ["| model | IoU | F1 (Dice) | precision | recall | pixel accuracy | mean tile IoU | params | best epoch "
             "| train ms/tile/epoch | fit s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append(f"| {r['label']} | {r['iou']:.3f} | {r['f1']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} | "
                     f"{r['pixel_accuracy']:.3f} | {r['mean_tile_iou']:.3f} | {r['params'] / 1e6:.1f} M | "
                     f"{r['best_epoch']}/{r['epochs']} | {r['ms_train']:.0f} | {r['fit_s']:.0f} |")
    text = TEMPLATE.format(
        table="\n".join(table), tiles=args.tiles, tile=args.tile_size, epochs=args.epochs, seed=args.seed,
        n_train=n_train, n_test=len(test_idx), n_val=len(images) - n_train - len(test_idx),
        arable=info["arable_fraction"], cpu=platform.processor() or platform.machine(),
        command=f".venv/bin/python bench/unet_compare.py --tiles {args.tiles} --tile-size {args.tile_size} "
                f"--epochs {args.epochs} --seed {args.seed}",
    )
    (args.docs / "unet_evaluation.md").write_text(text + (ROOT / "bench" / "unet_compare_notes.md").read_text())
    log.info("wrote %s and %s", args.docs / "unet_evaluation.md", args.docs / "unet_overlays.png")
    return 0


TEMPLATE = """# U-Net evaluation: encoders compared on held-out synthetic tiles

Reproduce (2 CPU cores, no GPU, no ImageNet weights):

```bash
{command}
```

Data: {tiles} synthetic tiles of {tile} px (`training.synthetic.make_tiles`, seed {seed}; {arable:.0%} of pixels
arable), split once with the same seed for every model: {n_train} train / {n_val} validation (best epoch by
validation IoU) / **{n_test} held-out test tiles** (the numbers below; never trained on, never used to pick
a checkpoint). Budget, equal for all: {epochs} epochs, batch 16, Adam 1e-3, BCE loss, joint flips / 90° turns
/ small rotation / crop-rescale augmentation, random initial weights, threshold 0.5. Metrics are
micro-averaged over all held-out pixels (`training/seg_metrics.py`).

{table}

![held-out tiles: truth and each model's prediction](unet_overlays.png)
"""

if __name__ == "__main__":
    sys.exit(main())
