"""EuroSAT held-out splits for the DEC evaluation: disjoint train and test tiles per class, and labeled draws."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.tile_io import image_files, read_rgb


@dataclass
class Split:
    """Tiles of one split with their class codes."""

    images: np.ndarray
    labels: np.ndarray
    paths: list[str]


def split_eurosat(folder: Path, n_train: int, n_test: int, seed: int, tile_size: int) -> tuple[Split, Split, list[str]]:
    """Per class: a seeded shuffle of the sorted file list; the first `n_test` tiles test, the next `n_train`
    train. The two never share a tile."""
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise SystemExit(f"no class folders in {folder}")
    rng = np.random.default_rng(seed)
    parts: dict[str, tuple[list[Path], list[int]]] = {"train": ([], []), "test": ([], [])}
    for code, name in enumerate(classes):
        files = image_files(folder / name)
        order = [files[i] for i in rng.permutation(len(files))]
        if len(order) < n_train + n_test:
            raise SystemExit(f"class {name} has {len(order)} tiles, fewer than {n_train} + {n_test}")
        for part, chosen in (("test", order[:n_test]), ("train", order[n_test : n_test + n_train])):
            parts[part][0].extend(chosen)
            parts[part][1].extend([code] * len(chosen))
    out = []
    for part in ("train", "test"):
        paths, labels = parts[part]
        images = np.stack([read_rgb(p, tile_size) for p in paths])
        out.append(Split(images, np.asarray(labels, np.int64), [str(p) for p in paths]))
    assert not set(out[0].paths) & set(out[1].paths)
    return out[0], out[1], classes


def labeled_draw(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Indices of `per_class` train tiles of every class (the small labeled sample used for naming)."""
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in np.unique(labels)]
    )
