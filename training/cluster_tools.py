"""What a person looks at to name clusters: t-SNE plots of the embedding and per-cluster tile galleries."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image
from sklearn.manifold import TSNE

from contract.atomic import atomic_dir, atomic_file

log = logging.getLogger(__name__)

GALLERY_DIR = "galleries"
TSNE_DIR = "tsne"
INDEX_FILE = "index.md"


def tsne_plot(
    z: np.ndarray,
    assignments: np.ndarray,
    path: Path,
    title: str = "",
    max_points: int = 1000,
    seed: int = 0,
    names: dict[str, str] | None = None,
) -> Path:
    """2-D t-SNE of the embeddings coloured by cluster, saved as a PNG (subsampled to `max_points`)."""
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(z), size=min(len(z), max_points), replace=False))
    z, assignments = z[keep], assignments[keep]
    if len(z) < 5:
        points = np.zeros((len(z), 2), np.float32)
    else:
        perplexity = float(min(30.0, (len(z) - 1) / 3.0))
        points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(z)
    fig = Figure(figsize=(7, 6), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    clusters = np.unique(assignments)
    colours = _colours(int(assignments.max()) + 1 if len(assignments) else 1)
    for cluster in clusters:
        sel = assignments == cluster
        label = (names or {}).get(str(int(cluster)), "")
        ax.scatter(
            points[sel, 0], points[sel, 1], s=8, color=colours[int(cluster)], label=f"{int(cluster)} {label}".strip()
        )
    if len(clusters) <= 20:
        ax.legend(loc="best", fontsize=7, markerscale=2, title="cluster")
    ax.set_title(title or "t-SNE of the DEC embedding")
    ax.set_xticks([])
    ax.set_yticks([])
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path


def _colours(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["tab20" if n > 10 else "tab10"]
    return [cmap(i % cmap.N) for i in range(n)]


def gallery_image(tiles: np.ndarray, columns: int | None = None, pad: int = 2) -> Image.Image:
    """A grid of uint8 tiles [n, T, T, 3] with a white gutter."""
    n, size = len(tiles), tiles.shape[1]
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / columns))
    canvas = Image.new("RGB", (columns * (size + pad) + pad, rows * (size + pad) + pad), "white")
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        canvas.paste(Image.fromarray(tile), (pad + c * (size + pad), pad + r * (size + pad)))
    return canvas


def write_galleries(
    run_dir: Path, images: np.ndarray, q: np.ndarray, per_cluster: int = 16, names: dict[str, str] | None = None
) -> Path:
    """One PNG per cluster (its most confident tiles) and an index.md linking them; returns the index path."""
    assignments = q.argmax(axis=1)
    final = run_dir / GALLERY_DIR
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_dir(final, overwrite=True) as staging:
        lines = [
            "# Cluster galleries",
            "",
            f"{len(images)} tiles in {q.shape[1]} clusters; each gallery shows a cluster's most confident tiles "
            "(highest q). Name clusters with `agriland clusters name ID=NAME --run <run>` or by editing "
            "cluster_names.json.",
            "",
            "| cluster | name | tiles | mean q | gallery |",
            "|---:|---|---:|---:|---|",
        ]
        for cluster in range(q.shape[1]):
            members = np.flatnonzero(assignments == cluster)
            name = (names or {}).get(str(cluster), "")
            if len(members) == 0:
                lines.append(f"| {cluster} | {name} | 0 | - | (empty) |")
                continue
            best = members[np.argsort(-q[members, cluster])][:per_cluster]
            file = f"cluster_{cluster:03d}.png"
            gallery_image(images[best]).save(staging / file)
            lines.append(
                f"| {cluster} | {name} | {len(members)} | {q[members, cluster].mean():.3f} | [{file}]({file}) |"
            )
        (staging / INDEX_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    log.info("galleries: %d clusters written to %s", q.shape[1], final)
    return final / INDEX_FILE
