"""Segmentation metrics and losses against hand-computed masks, including the empty-mask conventions."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from contract.errors import AgrilandError
from training.seg_losses import LOSSES, get_loss, soft_dice_loss
from training.seg_metrics import (
    METRIC_NAMES,
    BinarySegmentationMetric,
    confusion_counts,
    per_tile_iou,
    segmentation_metrics,
)


def _masks() -> tuple[np.ndarray, np.ndarray]:
    """4x4 truth with 6 arable pixels; prediction hits 4 of them and adds 2 false ones."""
    truth = np.zeros((1, 4, 4), np.uint8)
    truth[0, 0, :] = 1  # 4 pixels
    truth[0, 1, :2] = 1  # 2 pixels
    pred = np.zeros((1, 4, 4), np.float32)
    pred[0, 0, :3] = 0.9  # 3 hits
    pred[0, 1, 0] = 0.7  # 1 hit
    pred[0, 3, 2:] = 0.8  # 2 false positives
    pred[0, 2, 0] = 0.4  # below the threshold: not a prediction
    return truth, pred


def test_metrics_match_hand_computed_counts() -> None:
    truth, pred = _masks()
    counts = confusion_counts(truth, pred)
    assert (counts.tp, counts.fp, counts.fn, counts.tn) == (4, 2, 2, 8)
    metrics = segmentation_metrics(truth, pred)
    assert metrics["iou"] == pytest.approx(4 / 8)
    assert metrics["f1"] == pytest.approx(8 / 12)
    assert metrics["precision"] == pytest.approx(4 / 6)
    assert metrics["recall"] == pytest.approx(4 / 6)
    assert metrics["pixel_accuracy"] == pytest.approx(12 / 16)


def test_threshold_moves_the_decision() -> None:
    truth, pred = _masks()
    assert confusion_counts(truth, pred, threshold=0.3).fp == 3  # the 0.4 pixel now counts
    assert confusion_counts(truth, pred, threshold=0.85).tp == 3  # only the 0.9 pixels remain


def test_metrics_are_pooled_over_tiles_not_averaged() -> None:
    truth = np.zeros((2, 2, 2), np.uint8)
    pred = np.zeros((2, 2, 2), np.uint8)
    truth[0] = 1  # tile 0: 4 arable pixels, all found
    pred[0] = 1
    truth[1, 0, 0] = 1  # tile 1: 1 arable pixel, missed
    assert segmentation_metrics(truth, pred)["iou"] == pytest.approx(4 / 5)
    np.testing.assert_allclose(per_tile_iou(truth, pred), [1.0, 0.0])


def test_both_masks_empty_is_a_perfect_score() -> None:
    empty = np.zeros((3, 8, 8), np.uint8)
    metrics = segmentation_metrics(empty, empty.astype(np.float32))
    assert metrics == {name: 1.0 for name in METRIC_NAMES}
    np.testing.assert_allclose(per_tile_iou(empty, empty), [1.0, 1.0, 1.0])


def test_empty_truth_with_false_positives_scores_zero() -> None:
    truth = np.zeros((1, 4, 4), np.uint8)
    pred = np.zeros((1, 4, 4), np.uint8)
    pred[0, 0, 0] = 1
    metrics = segmentation_metrics(truth, pred)
    assert metrics["iou"] == 0.0 and metrics["f1"] == 0.0
    assert metrics["precision"] == 0.0 and metrics["recall"] == 0.0
    assert metrics["pixel_accuracy"] == pytest.approx(15 / 16)


def test_empty_prediction_with_arable_truth_scores_zero() -> None:
    truth = np.ones((1, 4, 4), np.uint8)
    metrics = segmentation_metrics(truth, np.zeros((1, 4, 4), np.float32))
    assert metrics["iou"] == 0.0 and metrics["f1"] == 0.0
    assert metrics["precision"] == 0.0 and metrics["recall"] == 0.0
    assert metrics["pixel_accuracy"] == 0.0


def test_mismatched_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="mask sizes differ"):
        confusion_counts(np.zeros((1, 4, 4)), np.zeros((1, 4, 5)))


@pytest.mark.parametrize("case", ["hand", "both_empty", "false_positive_only"])
def test_keras_metrics_agree_with_numpy(case: str) -> None:
    truth, pred = _masks()
    if case == "both_empty":
        truth, pred = np.zeros_like(truth), np.zeros_like(pred)
    elif case == "false_positive_only":
        truth = np.zeros_like(truth)
    expected = segmentation_metrics(truth, pred)
    for name in METRIC_NAMES:
        metric = BinarySegmentationMetric(name)
        # two updates (streamed batches) must equal one pooled computation
        metric.update_state(truth[..., :2, None], pred[..., :2, None])
        metric.update_state(truth[..., 2:, None], pred[..., 2:, None])
        assert float(metric.result()) == pytest.approx(expected[name], abs=1e-6), name
        metric.reset_state()
        assert float(metric.result()) == pytest.approx(1.0 if name != "pixel_accuracy" else 0.0)


def test_keras_metric_round_trips_its_config() -> None:
    metric = BinarySegmentationMetric("f1", threshold=0.3)
    clone = BinarySegmentationMetric.from_config(metric.get_config())
    assert (clone.kind, clone.threshold, clone.name) == ("f1", 0.3, "f1")
    with pytest.raises(ValueError, match="unknown metric"):
        BinarySegmentationMetric("accuracy")


@pytest.mark.parametrize("name", LOSSES)
def test_losses_prefer_the_right_answer(name: str) -> None:
    truth, _ = _masks()
    y_true = tf.constant(truth[..., None], tf.float32)
    good = tf.clip_by_value(y_true * 0.9 + 0.05, 0.0, 1.0)
    bad = 1.0 - good
    loss = get_loss(name)
    assert float(loss(y_true, good)) < float(loss(y_true, bad))


def test_dice_loss_is_zero_for_a_perfect_mask_and_unknown_loss_is_rejected() -> None:
    truth, _ = _masks()
    y = tf.constant(truth, tf.float32)
    assert float(soft_dice_loss(y, y)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(AgrilandError, match="unknown loss"):
        get_loss("hinge")  # type: ignore[arg-type]
