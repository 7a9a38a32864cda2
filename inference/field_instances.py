"""Fields from the field model: its field-extent and boundary probabilities to one region per field.

1. field pixels: extent probability (interior + boundary) at least `extent_cut`;
2. seeds: field pixels whose interior probability (extent - boundary) reaches `interior_cut`, 4-connected pieces of
   at least a quarter of the smallest field;
3. a marker watershed of the boundary probability from those seeds over the field pixels, with one-pixel lines
   between the regions it grows;
4. boundary vote (as Fields of The World's BoundaryVote): two touching regions stay apart only where the pixels of
   the line between them vote boundary (mean boundary probability >= `vote_cut`), else they are one field;
5. regions under `min_field_ha` are dropped; each field's confidence is its mean extent probability.

Everything is in ground units, so one set of options holds from aerial 1 m to Sentinel-2 10 m images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage.segmentation import relabel_sequential

from contract.errors import AgrilandError
from inference.fields import FOUR_CONNECTED, Fields, flood, join_regions, separate, without_small_regions


@dataclass(frozen=True)
class InstanceOptions:
    """Cuts that turn the field model's probabilities into fields."""

    extent_cut: float = 0.5
    interior_cut: float = 0.5
    vote_cut: float = 0.35
    min_field_ha: float = 0.05  # 500 m^2, as Fields of The World drops smaller polygons


def _merge_unvoted(labels: np.ndarray, boundary: np.ndarray, vote_cut: float) -> np.ndarray:
    """Union adjacent regions whose dividing line's mean boundary probability is under `vote_cut` (the line joins
    them); regions meet on the 0-pixels of watershed lines."""
    n = int(labels.max())
    if n < 2:
        return labels
    line = labels == 0
    high = ndimage.grey_dilation(labels, footprint=np.ones((3, 3), bool))
    low = -ndimage.grey_dilation(-np.where(labels > 0, labels, n + 1), footprint=np.ones((3, 3), bool))
    between = line & (high > 0) & (low <= n) & (low != high)
    if not between.any():
        return labels
    a, b = low[between].astype(np.int64), high[between].astype(np.int64)
    pairs, inverse = np.unique(a * (n + 1) + b, return_inverse=True)
    vote = np.bincount(inverse, boundary[between]) / np.bincount(inverse)
    i, j = np.divmod(pairs, n + 1)
    weak = vote < vote_cut
    if not weak.any():
        return labels
    return join_regions(labels, i[weak], j[weak], between, low, high)


def instances(
    extent: np.ndarray,
    boundary: np.ndarray,
    valid: np.ndarray,
    gsd_m: float,
    options: InstanceOptions = InstanceOptions(),
) -> Fields:
    """Fields of one image from the model's extent and boundary probabilities (same grid, `gsd_m` m/px)."""
    if extent.shape != boundary.shape or extent.shape != valid.shape:
        raise AgrilandError(f"instances: extent {extent.shape}, boundary {boundary.shape}, valid {valid.shape} differ")
    if gsd_m <= 0:
        raise AgrilandError(f"instances: the ground resolution must be positive, got {gsd_m}")
    extent = np.asarray(extent, np.float32)
    boundary = np.asarray(boundary, np.float32)
    field = (extent >= options.extent_cut) & valid
    min_px = options.min_field_ha * 10_000 / (gsd_m * gsd_m)
    empty = Fields(np.zeros(extent.shape, np.uint8), np.zeros(extent.shape, np.int32), np.zeros(0, np.float32))
    if not field.any():
        return empty
    seeds = field & (extent - boundary >= options.interior_cut)
    markers, n = ndimage.label(seeds, structure=FOUR_CONNECTED)
    if n:
        small = np.bincount(markers.ravel(), minlength=n + 1) < max(1.0, min_px / 4)
        small[0] = False
        markers[small[markers]] = 0
    if not markers.any():  # no clear interior anywhere: each field piece is its own seed
        markers, _ = ndimage.label(field, structure=FOUR_CONNECTED)
    regions = flood(boundary, markers, field)  # skimage's marker watershed with lines, flooded from seed rims
    regions = _merge_unvoted(regions, boundary, options.vote_cut)
    regions, _, _ = relabel_sequential(regions)
    regions = separate(regions.astype(np.int32))
    labels, count = without_small_regions(regions > 0, min_px)
    if not count:
        return empty
    conf = ndimage.mean(extent, labels, np.arange(1, count + 1)).astype(np.float32)
    return Fields((labels > 0).astype(np.uint8), labels, conf)


def crop_vetoed(found: Fields, probability: np.ndarray, cut: float) -> Fields:
    """The fields whose mean `probability` (the arable U-Net's, same grid) reaches `cut`; the others are dropped and
    the kept ones renumbered 1..n in order (0 keeps every field)."""
    n = len(found.confidence)
    if cut <= 0 or n == 0:
        return found
    if probability.shape != found.labels.shape:
        raise AgrilandError(f"crop veto: probability {probability.shape} and fields {found.labels.shape} differ")
    means = np.asarray(ndimage.mean(probability, found.labels, np.arange(1, n + 1)))
    kept = np.flatnonzero(means >= cut)
    lookup = np.zeros(n + 1, np.int32)
    lookup[kept + 1] = np.arange(1, len(kept) + 1, dtype=np.int32)
    labels = lookup[found.labels]
    return Fields((labels > 0).astype(np.uint8), labels, found.confidence[kept])
