"""Cluster assignments CSV and the editable cluster-name file (`{"7": "arable"}`), incl. naming by majority label."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from contract.atomic import write_text_atomic
from contract.errors import AgrilandError
from training.cluster_metrics import majority_labels

ASSIGNMENTS_FILE = "assignments.csv"
NAMES_FILE = "cluster_names.json"
ASSIGNMENT_COLUMNS = ("index", "path", "cluster", "confidence", "label")


def write_assignments(
    path: Path, paths: list[str], q: np.ndarray, labels: np.ndarray | None = None, class_names: list[str] | None = None
) -> Path:
    """One row per tile: index, source path, cluster id, its q (confidence) and the known label if any."""
    y = q.argmax(axis=1)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(ASSIGNMENT_COLUMNS)
    for i, cluster in enumerate(y):
        label = ""
        if labels is not None and labels[i] >= 0:
            label = class_names[labels[i]] if class_names and labels[i] < len(class_names) else str(int(labels[i]))
        source = paths[i] if i < len(paths) else ""
        writer.writerow([i, source, int(cluster), f"{float(q[i, cluster]):.6f}", label])
    write_text_atomic(path, buffer.getvalue())
    return path


def read_assignments(path: Path) -> list[dict[str, str]]:
    """Rows of an assignments.csv, with a clear error when it is missing or malformed."""
    if not path.is_file():
        raise AgrilandError(f"no {ASSIGNMENTS_FILE} at {path}: run `agriland train-dec` first")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"cluster", "label"} - set(reader.fieldnames or [])
        if missing:
            raise AgrilandError(f"{path} lacks column(s) {', '.join(sorted(missing))}")
        return list(reader)


def read_cluster_names(run_dir: Path) -> dict[str, str]:
    """The run's cluster_names.json ({} when absent)."""
    path = run_dir / NAMES_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise AgrilandError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise AgrilandError(f'{path} must map cluster ids to names, like {{"7": "arable"}}')
    return {str(k): v for k, v in data.items()}


def write_cluster_names(run_dir: Path, names: dict[str, str]) -> Path:
    """Write cluster_names.json sorted by cluster id."""
    ordered = dict(sorted(names.items(), key=lambda item: int(item[0])))
    path = run_dir / NAMES_FILE
    write_text_atomic(path, json.dumps(ordered, indent=2) + "\n")
    return path


def parse_name_pairs(pairs: list[str], n_clusters: int | None = None) -> dict[str, str]:
    """`["7=arable", "3=forest"]` -> {"7": "arable", "3": "forest"}, checking ids against K."""
    names: dict[str, str] = {}
    for pair in pairs:
        key, sep, name = pair.partition("=")
        key, name = key.strip(), name.strip()
        if not sep or not key.isdigit() or not name:
            raise AgrilandError(f"cannot read {pair!r}: write cluster names as ID=NAME, e.g. 7=arable")
        if n_clusters is not None and int(key) >= n_clusters:
            raise AgrilandError(f"cluster {key} does not exist: this run has clusters 0..{n_clusters - 1}")
        names[str(int(key))] = name
    return names


def names_from_labels(rows: list[dict[str, str]]) -> tuple[dict[str, str], dict[str, float]]:
    """Name each cluster by the most frequent known label of its tiles; also return each name's purity."""
    known = [(int(r["cluster"]), r["label"]) for r in rows if r.get("label")]
    if not known:
        raise AgrilandError("the assignments have no known labels: name the clusters by hand (ID=NAME)")
    vocabulary = sorted({label for _, label in known})
    clusters = np.array([c for c, _ in known])
    label_ids = np.array([vocabulary.index(label) for _, label in known])
    names, purity = {}, {}
    for cluster, (label_id, share) in majority_labels(label_ids, clusters).items():
        names[str(cluster)] = vocabulary[label_id]
        purity[str(cluster)] = share
    return names, purity


ARABLE_NAMES: tuple[str, ...] = ("arable", "cropland", "AnnualCrop", "PermanentCrop")


def names_from_labeled_tiles(
    labels: np.ndarray, class_names: list[str], clusters: np.ndarray, embeddings: np.ndarray, centroids: np.ndarray
) -> tuple[dict[str, str], dict[str, str]]:
    """Name every cluster from a small labeled sample: the majority class of its labeled tiles, or, for a cluster
    that received none, the class of the labeled tile nearest to its centroid. Returns (names, how each was named).
    """
    names, how = {}, {}
    majority = majority_labels(labels, clusters)
    for cluster in range(len(centroids)):
        if cluster in majority:
            label, share = majority[cluster]
            names[str(cluster)] = class_names[label]
            how[str(cluster)] = f"majority of {int(np.sum(clusters == cluster))} labeled tile(s), {share:.0%}"
        else:
            nearest = int(np.argmin(((embeddings - centroids[cluster]) ** 2).sum(axis=1)))
            names[str(cluster)] = class_names[labels[nearest]]
            how[str(cluster)] = "no labeled tile: class of the labeled tile nearest its centre"
    return names, how
