"""K sweep: k-means on embeddings for several K, scored by silhouette (and NMI/ACC where labels exist)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from tqdm import tqdm

from contract.atomic import write_text_atomic
from contract.errors import AgrilandError
from training.cluster_metrics import evaluate_clustering

log = logging.getLogger(__name__)


def parse_ks(text: str) -> list[int]:
    """'5,10,20' or '5-20:5' (start-stop:step) -> sorted unique K values >= 2."""
    ks: set[int] = set()
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                span, _, step = part.partition(":")
                lo, hi = (int(v) for v in span.split("-"))
                ks.update(range(lo, hi + 1, int(step or 1)))
            elif part:
                ks.add(int(part))
    except ValueError as err:
        raise AgrilandError(f"cannot read K values {text!r}: use e.g. 5,10,20 or 5-50:5") from err
    if not ks or min(ks) < 2:
        raise AgrilandError(f"K values must be >= 2, got {text!r}")
    return sorted(ks)


def sweep(
    z: np.ndarray,
    ks: list[int],
    labels: np.ndarray | None = None,
    n_init: int = 10,
    seed: int = 0,
    silhouette_sample: int = 2000,
) -> list[dict[str, float]]:
    """One row per K: inertia, silhouette (on a sample) and, with labels, acc/nmi/ari."""
    too_big = [k for k in ks if k >= len(z)]
    if too_big:
        raise AgrilandError(f"K={too_big[0]} needs more than {len(z)} tiles")
    rows = []
    for k in tqdm(ks, desc="k-means sweep", unit="K", leave=False):
        km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(z)
        row = {
            "k": float(k),
            "inertia": float(km.inertia_),
            "silhouette": float(
                silhouette_score(z, km.labels_, sample_size=min(silhouette_sample, len(z)), random_state=seed)
            ),
        }
        if labels is not None:
            row.update(evaluate_clustering(labels, km.labels_))
        log.info(
            "sweep: K=%d silhouette %.3f%s", k, row["silhouette"], f", nmi {row['nmi']:.3f}" if "nmi" in row else ""
        )
        rows.append(row)
    return rows


def sweep_markdown(rows: list[dict[str, float]], source: str = "") -> str:
    """A Markdown table of the sweep, best silhouette marked."""
    best = max(rows, key=lambda r: r["silhouette"])["k"] if rows else None
    has_labels = bool(rows) and "nmi" in rows[0]
    head = "| K | silhouette | inertia |" + (" ACC | NMI | ARI |" if has_labels else "")
    rule = "|---:|---:|---:|" + ("---:|---:|---:|" if has_labels else "")
    lines = ["# k-means sweep over K", ""]
    if source:
        lines += [f"Embeddings: {source}", ""]
    lines += [
        "Higher silhouette = tighter, better separated clusters; NMI/ACC/ARI only where labels are known.",
        "",
        head,
        rule,
    ]
    for r in rows:
        mark = " (best)" if r["k"] == best else ""
        line = f"| {int(r['k'])}{mark} | {r['silhouette']:.3f} | {r['inertia']:.1f} |"
        if has_labels:
            line += f" {r['acc']:.3f} | {r['nmi']:.3f} | {r['ari']:.3f} |"
        lines.append(line)
    return "\n".join(lines) + "\n"


def write_sweep_report(rows: list[dict[str, float]], path: Path, source: str = "") -> Path:
    """Write the sweep table as Markdown (whole or not at all)."""
    return write_text_atomic(path, sweep_markdown(rows, source))
