"""Test-time augmentation for the U-Net: a tile in several rotations through one model call, masks averaged back."""

from __future__ import annotations

import logging

import numpy as np

from contract.errors import AgrilandError

log = logging.getLogger(__name__)

_TURNS = {1: (0,), 2: (0, 2), 4: (0, 1, 2, 3)}  # quarter turns per view count


def rotated_views(batch: np.ndarray, views: int) -> np.ndarray:
    """[N, T, T, C] -> [V*N, T, T, C]: the batch in each rotation, view-major."""
    if views not in _TURNS:
        raise AgrilandError(f"TTA views must be 1, 2 or 4, got {views}")
    if views > 1 and batch.shape[1] != batch.shape[2]:
        raise AgrilandError(f"rotations need square tiles, got {batch.shape[1]}x{batch.shape[2]}")
    return np.concatenate([np.rot90(batch, k, axes=(1, 2)) for k in _TURNS[views]], axis=0)


def mean_of_views(masks: np.ndarray, views: int) -> np.ndarray:
    """[V*N, T, T(, 1)] -> [N, T, T(, 1)]: each view rotated back, then the mean over views."""
    if masks.shape[0] % views:
        raise AgrilandError(f"{masks.shape[0]} outputs are not a multiple of {views} views")
    n = masks.shape[0] // views
    back = [np.rot90(masks[i * n : (i + 1) * n], -k, axes=(1, 2)) for i, k in enumerate(_TURNS[views])]
    return np.mean(back, axis=0).astype(masks.dtype, copy=False)
