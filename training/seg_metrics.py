"""Binary segmentation metrics (IoU, F1/Dice, precision, recall, pixel accuracy) for numpy and Keras.

All metrics are *micro-averaged*: true/false positives and negatives are pooled over every pixel of every
tile in the set, then the ratio is taken once. That respects class imbalance (a model that predicts
"nothing arable" scores IoU 0 on tiles with arable land, however high its pixel accuracy).

Conventions for empty masks (a ratio whose denominator is 0):

- IoU = TP / (TP + FP + FN) and F1 = 2TP / (2TP + FP + FN) are **1.0 when both the ground truth and the
  prediction are empty** (nothing to find, nothing falsely found: a perfect answer).
- precision = TP / (TP + FP) is 1.0 when nothing was predicted and nothing was there (FN = 0), 0.0 when
  nothing was predicted but arable pixels were missed.
- recall = TP / (TP + FN) is 1.0 when the truth is empty and nothing was predicted (FP = 0), 0.0 when the
  truth is empty but pixels were predicted.
- pixel accuracy = (TP + TN) / all pixels is always defined.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import tensorflow as tf
import tf_keras

MetricName = Literal["iou", "f1", "precision", "recall", "pixel_accuracy"]
METRIC_NAMES: tuple[MetricName, ...] = ("iou", "f1", "precision", "recall", "pixel_accuracy")


@dataclass(frozen=True)
class ConfusionCounts:
    """Pixel counts of a binary confusion matrix."""

    tp: float
    fp: float
    fn: float
    tn: float

    def metric(self, name: MetricName) -> float:
        """One metric from the counts, with the empty-mask conventions of this module."""
        return float(_ratio(name, self.tp, self.fp, self.fn, self.tn))

    def as_dict(self) -> dict[str, float]:
        """Every metric in METRIC_NAMES."""
        return {name: self.metric(name) for name in METRIC_NAMES}


def _ratio(name: str, tp, fp, fn, tn):  # works on numpy floats and tf tensors alike
    where = np.where if isinstance(tp, (float, int, np.floating, np.ndarray)) else tf.where
    one, zero = tp * 0 + 1, tp * 0  # constants of the counts' type (float64 tensors in Keras)
    if name == "iou":
        den = tp + fp + fn
        return where(den > 0, tp / _nonzero(den), one)
    if name == "f1":
        den = 2 * tp + fp + fn
        return where(den > 0, 2 * tp / _nonzero(den), one)
    if name == "precision":
        den = tp + fp
        return where(den > 0, tp / _nonzero(den), where(fn > 0, zero, one))
    if name == "recall":
        den = tp + fn
        return where(den > 0, tp / _nonzero(den), where(fp > 0, zero, one))
    if name == "pixel_accuracy":
        return (tp + tn) / _nonzero(tp + fp + fn + tn)
    raise ValueError(f"unknown metric {name!r}; choose one of {', '.join(METRIC_NAMES)}")


def _nonzero(x):
    if isinstance(x, (float, int, np.floating, np.ndarray)):
        return np.maximum(x, 1e-12)
    return tf.maximum(x, tf.constant(1e-12, x.dtype))


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> ConfusionCounts:
    """Pool pixel counts over all tiles. `y_true` is {0,1} (or probabilities, binarised at 0.5),
    `y_pred` probabilities binarised at `threshold` (a {0,1} mask passes through unchanged)."""
    truth = np.asarray(y_true).astype(np.float32) >= 0.5
    pred = np.asarray(y_pred).astype(np.float32) >= threshold
    if truth.size != pred.size:
        raise ValueError(f"mask sizes differ: truth {truth.shape} vs prediction {pred.shape}")
    truth, pred = truth.reshape(-1), pred.reshape(-1)
    tp = float(np.count_nonzero(truth & pred))
    fp = float(np.count_nonzero(~truth & pred))
    fn = float(np.count_nonzero(truth & ~pred))
    tn = float(truth.size - tp - fp - fn)
    return ConfusionCounts(tp=tp, fp=fp, fn=fn, tn=tn)


def segmentation_metrics(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Micro-averaged iou, f1, precision, recall and pixel_accuracy over a set of masks."""
    return confusion_counts(y_true, y_pred, threshold).as_dict()


def per_tile_iou(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """IoU of each tile separately (first axis = tiles), 1.0 for tiles where both masks are empty."""
    truth = np.asarray(y_true).reshape(len(y_true), -1) >= 0.5
    pred = np.asarray(y_pred).reshape(len(y_pred), -1) >= threshold
    inter = np.count_nonzero(truth & pred, axis=1).astype(np.float64)
    union = np.count_nonzero(truth | pred, axis=1).astype(np.float64)
    return np.where(union > 0, inter / np.maximum(union, 1.0), 1.0)


@tf_keras.utils.register_keras_serializable(package="agriland")
class BinarySegmentationMetric(tf_keras.metrics.Metric):
    """Streaming Keras version of one metric above: pools TP/FP/FN/TN over an epoch, same conventions."""

    def __init__(self, kind: MetricName = "iou", threshold: float = 0.5, name: str | None = None, **kwargs) -> None:
        if kind not in METRIC_NAMES:
            raise ValueError(f"unknown metric {kind!r}; choose one of {', '.join(METRIC_NAMES)}")
        super().__init__(name=name or kind, **kwargs)
        self.kind = kind
        self.threshold = float(threshold)
        self.counts = [self.add_weight(name=n, initializer="zeros", dtype=tf.float64) for n in ("tp", "fp", "fn", "tn")]

    def update_state(self, y_true: tf.Tensor, y_pred: tf.Tensor, sample_weight: tf.Tensor | None = None) -> None:
        truth = tf.reshape(tf.cast(y_true, tf.float32) >= 0.5, [-1])
        pred = tf.reshape(tf.cast(y_pred, tf.float32) >= self.threshold, [-1])
        pairs = (truth & pred, ~truth & pred, truth & ~pred, ~truth & ~pred)
        for weight, hit in zip(self.counts, pairs):
            weight.assign_add(tf.reduce_sum(tf.cast(hit, tf.float64)))

    def result(self) -> tf.Tensor:
        tp, fp, fn, tn = (tf.identity(w) for w in self.counts)
        return tf.cast(_ratio(self.kind, tp, fp, fn, tn), tf.float32)

    def reset_state(self) -> None:
        for weight in self.counts:
            weight.assign(tf.zeros_like(weight))

    def get_config(self) -> dict:
        return {**super().get_config(), "kind": self.kind, "threshold": self.threshold}


def keras_metrics(threshold: float = 0.5) -> list[tf_keras.metrics.Metric]:
    """One streaming metric per name in METRIC_NAMES (history keys `iou`, `val_iou`, ...)."""
    return [BinarySegmentationMetric(kind, threshold=threshold) for kind in METRIC_NAMES]
