"""Unsupervised clustering metrics against known labels: Hungarian accuracy, NMI and ARI."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from contract.errors import AgrilandError


def _check(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true).astype(np.int64).ravel()
    y_pred = np.asarray(y_pred).astype(np.int64).ravel()
    if y_true.shape != y_pred.shape:
        raise AgrilandError(f"labels and cluster assignments differ in length: {y_true.size} != {y_pred.size}")
    if y_true.size == 0:
        raise AgrilandError("cannot score an empty clustering")
    return y_true, y_pred


def contingency(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Counts [n_clusters, n_classes]: how many tiles of class c landed in cluster k."""
    y_true, y_pred = _check(y_true, y_pred)
    table = np.zeros((int(y_pred.max()) + 1, int(y_true.max()) + 1), dtype=np.int64)
    np.add.at(table, (y_pred, y_true), 1)
    return table


def cluster_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unsupervised accuracy: the best one-to-one cluster -> class mapping (Hungarian), as in the DEC paper."""
    table = contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def evaluate_clustering(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """{'acc', 'nmi', 'ari'} for a clustering against ground-truth labels."""
    y_true, y_pred = _check(y_true, y_pred)
    return {
        "acc": cluster_accuracy(y_true, y_pred),
        "nmi": float(normalized_mutual_info_score(y_true, y_pred)),
        "ari": float(adjusted_rand_score(y_true, y_pred)),
    }


def majority_labels(y_true: np.ndarray, y_pred: np.ndarray) -> dict[int, tuple[int, float]]:
    """For each non-empty cluster: (its most frequent true label, that label's share of the cluster)."""
    table = contingency(y_true, y_pred)
    result: dict[int, tuple[int, float]] = {}
    for cluster, counts in enumerate(table):
        total = int(counts.sum())
        if total:
            result[cluster] = (int(counts.argmax()), float(counts.max() / total))
    return result
