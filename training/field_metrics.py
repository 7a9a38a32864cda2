"""Per-field scores of a predicted field mask against drawn field polygons: pixel IoU and object F1 (FTW style)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

OBJECT_IOU = 0.5  # a predicted region and a field match when their IoU exceeds this (Fields of The World)
_FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)


def instances_of(mask: np.ndarray) -> np.ndarray:
    """int32 labels of the 4-connected regions of a 0/1 mask (0 = background): one region = one field answered."""
    labels, _ = ndimage.label(np.asarray(mask) > 0, structure=_FOUR_CONNECTED)
    return labels.astype(np.int32)


def _iou_matrix(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU of every (predicted, true) instance pair that overlaps; returns (iou [P, T], pred ids, truth ids)."""
    pred_ids = np.unique(pred[pred > 0])
    truth_ids = np.unique(truth[truth > 0])
    if not len(pred_ids) or not len(truth_ids):
        return np.zeros((len(pred_ids), len(truth_ids))), pred_ids, truth_ids
    p_index = np.searchsorted(pred_ids, pred)  # valid where pred > 0
    t_index = np.searchsorted(truth_ids, truth)
    both = (pred > 0) & (truth > 0)
    inter = np.zeros((len(pred_ids), len(truth_ids)), dtype=np.int64)
    np.add.at(inter, (p_index[both], t_index[both]), 1)
    p_area = np.bincount(p_index[pred > 0], minlength=len(pred_ids))
    t_area = np.bincount(t_index[truth > 0], minlength=len(truth_ids))
    union = p_area[:, None] + t_area[None, :] - inter
    return inter / np.maximum(union, 1), pred_ids, truth_ids


@dataclass
class FieldScores:
    """Pixel confusion counts and object matches, summable over images."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    n_pred: int = 0  # predicted regions
    n_true: int = 0  # drawn fields
    n_matched: int = 0  # one-to-one matches at IoU > OBJECT_IOU
    matched_iou: list[float] = field(default_factory=list)

    def __add__(self, other: FieldScores) -> FieldScores:
        return FieldScores(
            self.tp + other.tp,
            self.fp + other.fp,
            self.fn + other.fn,
            self.n_pred + other.n_pred,
            self.n_true + other.n_true,
            self.n_matched + other.n_matched,
            self.matched_iou + other.matched_iou,
        )

    @property
    def iou(self) -> float:
        return self.tp / max(1, self.tp + self.fp + self.fn)

    @property
    def precision(self) -> float:
        return self.tp / max(1, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return self.tp / max(1, self.tp + self.fn)

    @property
    def object_precision(self) -> float:
        return self.n_matched / self.n_pred if self.n_pred else 0.0

    @property
    def object_recall(self) -> float:
        return self.n_matched / self.n_true if self.n_true else 0.0

    @property
    def object_f1(self) -> float:
        p, r = self.object_precision, self.object_recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "pixel_iou": self.iou,
            "precision": self.precision,
            "recall": self.recall,
            "object_precision": self.object_precision,
            "object_recall": self.object_recall,
            "object_f1": self.object_f1,
            "n_pred": self.n_pred,
            "n_true": self.n_true,
            "n_matched": self.n_matched,
        }


def score_fields(
    pred_instances: np.ndarray,
    true_instances: np.ndarray,
    valid: np.ndarray | None = None,
    iou_threshold: float = OBJECT_IOU,
) -> FieldScores:
    """Score predicted field instances (int labels, 0 = not field) against true ones on the valid pixels.

    Pixels: a pixel is field when its label is > 0 on either side. Objects: every predicted and true instance is
    matched at most once (Hungarian assignment on IoU); a match counts when its IoU exceeds `iou_threshold`.
    """
    pred, truth = np.asarray(pred_instances), np.asarray(true_instances)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and truth {truth.shape} differ in shape")
    if valid is not None:
        pred, truth = np.where(valid, pred, 0), np.where(valid, truth, 0)
    p, t = pred > 0, truth > 0
    iou, pred_ids, truth_ids = _iou_matrix(pred, truth)
    matched: list[float] = []
    if iou.size:
        rows, cols = linear_sum_assignment(-iou)
        matched = [float(iou[r, c]) for r, c in zip(rows, cols) if iou[r, c] > iou_threshold]
    return FieldScores(
        tp=int((p & t).sum()),
        fp=int((p & ~t).sum()),
        fn=int((~p & t).sum()),
        n_pred=len(pred_ids),
        n_true=len(truth_ids),
        n_matched=len(matched),
        matched_iou=matched,
    )
