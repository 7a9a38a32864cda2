"""The mask step: one block's blended probability (or its field delineation) to the 0/1 arable mask, sieved."""

from __future__ import annotations

import numpy as np
from rasterio.features import sieve
from scipy import ndimage

from inference.fields import FOUR_CONNECTED, without_small_regions


def _fill_field_holes(mask: np.ndarray, valid: np.ndarray, sieve_px: int) -> None:
    """Fill (in place) valid 0-regions of fewer than `sieve_px` pixels that only one field surrounds; a 0-region
    between two fields is the line that keeps them apart and stays."""
    fields, n = ndimage.label(mask, structure=FOUR_CONNECTED)
    holes, m = ndimage.label((mask == 0) & valid, structure=FOUR_CONNECTED)
    if not m:
        return
    small = np.bincount(holes.ravel(), minlength=m + 1) < sieve_px
    small[0] = False
    if not small.any():
        return
    none = n + 1
    above = ndimage.grey_dilation(fields, footprint=FOUR_CONNECTED)  # the largest field id next to each pixel
    below = -ndimage.grey_dilation(-np.where(fields > 0, fields, none), footprint=FOUR_CONNECTED)  # the smallest
    # only the pixels of small holes matter (the big 0-regions were most of the work)
    inside = small[holes]
    ids = holes[inside]
    largest = np.zeros(m + 1, np.int64)
    np.maximum.at(largest, ids, above[inside])
    smallest = np.full(m + 1, none, np.int64)
    np.minimum.at(smallest, ids, below[inside])
    fill = small & (smallest == largest) & (smallest > 0) & (smallest < none)
    mask[fill[holes]] = 1


def probability_to_mask(
    probability: np.ndarray, valid: np.ndarray, threshold: float, sieve_px: int, refined: np.ndarray | None = None
) -> np.ndarray:
    """The arable mask of one block (read with its halo of context: `WindowParams.halo` pixels on every inner side).

    The one place where probabilities become the 0/1 mask that every raster and polygon output is made of:
    the threshold, then regions (4-connected arable specks and holes in fields) of fewer than `sieve_px` pixels
    merged into their surroundings (rasterio.features.sieve); or `refined`, the field delineation's mask of the
    same extent, with arable specks and holes inside one field of fewer than `sieve_px` pixels sieved (the lines
    between touching fields are kept). Nodata is never arable.
    """
    if refined is not None:
        # fields: only arable specks go; 0-regions are never filled, since the one-pixel lines that keep touching
        # fields apart are 0-regions too (a staircase line is a chain of single pixels)
        mask = (refined.astype(bool) & valid).astype(np.uint8)
        if sieve_px > 1 and mask.any():
            mask = (without_small_regions(mask, sieve_px)[0] > 0).astype(np.uint8)
            _fill_field_holes(mask, valid, sieve_px)
        return mask
    mask = ((probability >= threshold) & valid).astype(np.uint8)
    if sieve_px > 1:
        mask = sieve(mask, size=int(sieve_px), connectivity=4)
        mask[~valid] = 0
    return mask
