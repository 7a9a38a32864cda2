"""The U-Net's training data: image/mask pairs (or a synthetic set) and their train / validation / test split."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from contract.errors import AgrilandError
from contract.run_summary import RunData
from training.unet_config import UnetConfig

log = logging.getLogger(__name__)


def load_segmentation_data(
    config: UnetConfig, data: Path | None = None, synthetic: int | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, object]]:
    """Images (N,T,T,3) uint8, masks (N,T,T) uint8 {0,1} and a data summary, from a pairs CSV/folder or
    `synthetic` freshly generated tiles; subsampled to `max_tiles` (seeded)."""
    if (data is None) == (synthetic is None):
        raise AgrilandError("give exactly one of --data PATH (pairs CSV or folder) or --synthetic N")
    if synthetic is not None:
        from training.synthetic import make_tiles

        if synthetic < 4:
            raise AgrilandError(f"--synthetic needs at least 4 tiles, got {synthetic}")
        tiles = make_tiles(synthetic, config.tile_size, seed=config.seed)
        data_block = RunData.of_synthetic(synthetic, config.seed)
        images, masks, source, groups = tiles.images, tiles.masks, data_block.source, None
    else:
        from training.data import load_tiles

        loaded = load_tiles(Path(data), config.tile_size)
        if loaded.masks is None:
            raise AgrilandError(
                f"{data} has tiles but no masks: the U-Net needs image/mask pairs (a pairs CSV "
                f"from `agriland via-to-masks` or `agriland synth`)"
            )
        data_block = RunData(source=str(data))
        images, masks, source, groups = loaded.images, loaded.masks, str(data), loaded.groups
    n_total = len(images)
    if config.max_tiles is not None and n_total > config.max_tiles:
        keep = np.sort(np.random.default_rng(config.seed).choice(n_total, size=config.max_tiles, replace=False))
        images, masks = images[keep], masks[keep]
        groups = None if groups is None else [groups[i] for i in keep]
        log.info("data: using %d of %d tiles (max_tiles)", len(keep), n_total)
    if len(images) < 4:
        raise AgrilandError(f"{source} has only {len(images)} image/mask pairs; the U-Net needs at least 4")
    masks = (np.asarray(masks) > 0).astype(np.uint8)
    info = {
        **data_block.model_dump(mode="json", exclude_none=True),
        "n_tiles": int(len(images)),
        "n_available": int(n_total),
        "arable_fraction": float(masks.mean()),
        "groups": groups,
    }
    return np.asarray(images, np.uint8), masks, info


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """Seeded train / validation / held-out test indices (each non-empty except test when test_fraction=0)."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, round(n * val_fraction))
    n_test = max(1, round(n * test_fraction)) if test_fraction > 0 else 0
    if n - n_val - n_test < 1:
        raise AgrilandError(f"{n} tiles are too few for val_fraction={val_fraction}, test_fraction={test_fraction}")
    return order[n_val + n_test :], order[:n_val], order[n_val : n_val + n_test]


def split_by_group(groups: list[str], val_fraction: float, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """Train / val / test indices that never share a group: explicit `train`/`val`/`test` labels are used as
    given; other group ids (source scenes) are shuffled and dealt to the splits by tile count."""
    labels = np.asarray(groups)
    if set(labels) <= {"train", "val", "test"} and {"train", "val"} <= set(labels):
        return tuple(np.flatnonzero(labels == s) for s in ("train", "val", "test"))
    ids = np.random.default_rng(seed).permutation(sorted(set(labels)))
    if len(ids) < 3:
        raise AgrilandError(f"only {len(ids)} source group(s): too few for a grouped train/val/test split")
    counts = np.array([np.sum(labels == g) for g in ids])
    cumulative = np.cumsum(counts) / counts.sum()
    test_ids = ids[: max(1, int(np.searchsorted(cumulative, test_fraction)))] if test_fraction > 0 else ids[:0]
    rest = ids[len(test_ids) :]
    rest_cum = np.cumsum(counts[len(test_ids) :]) / counts.sum()
    val_ids = rest[: max(1, int(np.searchsorted(rest_cum, val_fraction)))]
    train_ids = rest[len(val_ids) :]
    if not len(train_ids):
        raise AgrilandError("no source group left for training after the grouped val/test split")
    return tuple(np.flatnonzero(np.isin(labels, part)) for part in (train_ids, val_ids, test_ids))
