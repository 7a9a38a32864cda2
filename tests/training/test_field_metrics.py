"""Per-field scores on hand-made cases: pixel IoU, one-to-one object matching at IoU > 0.5, object F1."""

from __future__ import annotations

import numpy as np
import pytest

from training.field_metrics import FieldScores, instances_of, score_fields


def _fields(*boxes: tuple[slice, slice], shape: tuple[int, int] = (20, 30)) -> np.ndarray:
    labels = np.zeros(shape, np.int32)
    for k, box in enumerate(boxes, start=1):
        labels[box] = k
    return labels


LEFT, RIGHT = (slice(2, 18), slice(2, 15)), (slice(2, 18), slice(15, 28))  # 13 px wide each


def test_perfect_answer_scores_one() -> None:
    truth = _fields(LEFT, RIGHT)
    s = score_fields(truth, truth)
    assert (s.iou, s.precision, s.recall, s.object_f1) == (1.0, 1.0, 1.0, 1.0)
    assert (s.n_pred, s.n_true, s.n_matched) == (2, 2, 2)


def test_two_touching_fields_answered_as_one_region_miss_both_objects() -> None:
    """Pixel IoU is perfect, but one merged blob matches neither equal field at IoU > 0.5 (each is 0.5)."""
    truth = _fields(LEFT, RIGHT)
    merged = instances_of(truth > 0)
    assert merged.max() == 1
    s = score_fields(merged, truth)
    assert s.iou == 1.0 and s.n_matched == 0 and s.object_f1 == 0.0


def test_one_to_one_matching_and_partial_overlap() -> None:
    truth = _fields(LEFT, RIGHT)
    # the left field found exactly, the right one shrunk to 5 of 13 columns (IoU 0.38), plus a false field
    pred = _fields(LEFT, (slice(2, 18), slice(23, 28)), (slice(18, 20), slice(0, 30)))
    s = score_fields(pred, truth)
    assert (s.n_pred, s.n_true, s.n_matched) == (3, 2, 1)
    assert s.object_precision == pytest.approx(1 / 3) and s.object_recall == pytest.approx(0.5)
    assert s.object_f1 == pytest.approx(0.4)
    tp = 16 * 13 + 16 * 5
    assert (s.tp, s.fp, s.fn) == (tp, 60, 16 * 8)
    assert s.iou == pytest.approx(tp / (tp + 60 + 16 * 8))


def test_a_field_split_in_two_matches_once() -> None:
    truth = _fields((slice(0, 20), slice(0, 30)))
    pred = _fields((slice(0, 20), slice(0, 20)), (slice(0, 20), slice(20, 30)))
    s = score_fields(pred, truth)
    assert s.n_matched == 1 and s.matched_iou == [pytest.approx(20 / 30)]
    assert s.object_precision == 0.5 and s.object_recall == 1.0


def test_empty_answers_and_valid_mask() -> None:
    truth = _fields(LEFT)
    s = score_fields(np.zeros_like(truth), truth)
    assert s.iou == 0.0 and s.recall == 0.0 and s.object_f1 == 0.0 and s.n_true == 1
    valid = np.zeros(truth.shape, bool)  # nothing valid: nothing scored
    assert score_fields(truth, truth, valid).n_true == 0
    total = score_fields(truth, truth) + s
    assert isinstance(total, FieldScores) and total.n_true == 2 and total.n_matched == 1
    with pytest.raises(ValueError, match="shape"):
        score_fields(truth, truth[:5])
