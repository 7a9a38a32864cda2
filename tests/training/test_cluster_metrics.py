"""Hungarian accuracy, NMI/ARI and majority naming on small hand-made labellings."""

from __future__ import annotations

import numpy as np
import pytest

from contract.errors import AgrilandError
from training.cluster_metrics import cluster_accuracy, evaluate_clustering, majority_labels

Y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 4])


def test_permuted_labelling_scores_one() -> None:
    permutation = np.array([3, 0, 4, 1, 2])
    metrics = evaluate_clustering(Y, permutation[Y])
    assert metrics["acc"] == 1.0
    assert metrics["nmi"] == pytest.approx(1.0)
    assert metrics["ari"] == pytest.approx(1.0)


def test_accuracy_counts_best_matching() -> None:
    y_true = np.array([0, 0, 0, 1, 1, 1])
    y_pred = np.array([1, 1, 0, 0, 0, 0])  # best map: 1->0 (2 right), 0->1 (3 right)
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(5 / 6)


def test_more_clusters_than_classes() -> None:
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 1, 2, 3])
    assert cluster_accuracy(y_true, y_pred) == pytest.approx(0.5)


def test_majority_labels() -> None:
    result = majority_labels(np.array([0, 0, 1, 2, 2, 2]), np.array([1, 1, 1, 0, 0, 3]))
    assert result[1] == (0, pytest.approx(2 / 3))
    assert result[0] == (2, 1.0)
    assert 2 not in result  # empty cluster


def test_mismatched_lengths_rejected() -> None:
    with pytest.raises(AgrilandError, match="differ in length"):
        evaluate_clustering(np.array([0, 1]), np.array([0]))
