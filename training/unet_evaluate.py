"""Held-out evaluation of a segmentation model: micro-averaged metrics and overlay PNGs (tile, truth, prediction)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tf_keras

from contract.atomic import atomic_file
from training.seg_metrics import per_tile_iou, segmentation_metrics

log = logging.getLogger(__name__)

_TRUTH_RGB = np.array([255, 215, 0], np.float32)  # gold
_PRED_RGB = np.array([0, 200, 255], np.float32)  # cyan


def predict_masks(model: tf_keras.Model, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Arable probabilities (N, T, T) float32 for uint8 tiles (N, T, T, 3)."""
    probs = model.predict(np.asarray(images, np.uint8), batch_size=batch_size, verbose=0)
    return np.asarray(probs, np.float32)[..., 0]


def evaluate_masks(
    model: tf_keras.Model, images: np.ndarray, masks: np.ndarray, threshold: float = 0.5, batch_size: int = 16
) -> tuple[dict[str, float], np.ndarray]:
    """Micro-averaged iou/f1/precision/recall/pixel_accuracy (plus mean per-tile IoU) and the probabilities."""
    probs = predict_masks(model, images, batch_size)
    metrics = segmentation_metrics(masks, probs, threshold)
    metrics["mean_tile_iou"] = float(per_tile_iou(masks, probs, threshold).mean())
    metrics["arable_fraction_truth"] = float((np.asarray(masks) > 0).mean())
    metrics["arable_fraction_pred"] = float((probs >= threshold).mean())
    return metrics, probs


def tint(image: np.ndarray, mask: np.ndarray, rgb: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """The tile with `mask` pixels blended towards `rgb` (uint8 out)."""
    out = image.astype(np.float32)
    sel = mask.astype(bool)
    out[sel] = (1 - alpha) * out[sel] + alpha * rgb
    return out.clip(0, 255).astype(np.uint8)


def pick_overlay_tiles(masks: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to `n` tile indices, mixing tiles with much, some and no arable land so the figure is informative."""
    n = min(n, len(masks))
    if n == 0:
        return np.zeros(0, np.int64)
    share = np.asarray(masks).reshape(len(masks), -1).astype(bool).mean(axis=1)
    order = np.argsort(share, kind="stable")
    picks = np.unique(np.linspace(0, len(order) - 1, n).round().astype(np.int64))
    chosen = order[picks]
    rest = np.setdiff1d(np.arange(len(masks)), chosen)
    if len(chosen) < n:
        chosen = np.concatenate([chosen, np.random.default_rng(seed).choice(rest, n - len(chosen), replace=False)])
    return chosen[::-1]


def write_overlays(
    path: Path,
    images: np.ndarray,
    masks: np.ndarray,
    probs: np.ndarray,
    n: int = 8,
    threshold: float = 0.5,
    title: str | None = None,
) -> Path:
    """A PNG grid, one row per tile: the tile, ground truth (gold) and prediction (cyan), with per-tile IoU."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    indices = pick_overlay_tiles(masks, n)
    rows = max(len(indices), 1)
    fig, axes = plt.subplots(rows, 3, figsize=(7.5, 2.5 * rows), squeeze=False)
    ious = per_tile_iou(masks[indices], probs[indices], threshold) if len(indices) else []
    for row, (index, iou) in enumerate(zip(indices, ious)):
        image, truth, pred = images[index], masks[index] > 0, probs[index] >= threshold
        panels = (image, tint(image, truth, _TRUTH_RGB), tint(image, pred, _PRED_RGB))
        labels = (f"tile {index}", f"truth ({truth.mean():.0%} arable)", f"prediction (IoU {iou:.2f})")
        for ax, panel, label in zip(axes[row], panels, labels):
            ax.imshow(panel, interpolation="nearest")
            ax.set_title(label, fontsize=9)
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    with atomic_file(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
    log.info("overlays: %d tiles -> %s", len(indices), path)
    return path
