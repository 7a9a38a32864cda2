"""Field instances -> the field model's 3-class target (background / interior / boundary) at any ground resolution,
and the images resampled to other ground resolutions (area-averaged, like a coarser sensor over the same fields)."""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage.segmentation import find_boundaries

from training.field_polygons import FieldImage

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2
CLASSES: tuple[str, ...] = ("background", "interior", "boundary")
IGNORE = 255  # padding: no loss


def targets_of(instances: np.ndarray) -> np.ndarray:
    """uint8 [h, w]: 0 outside fields, 2 on each field's own edge pixels (where it meets background or another
    field: a one-pixel line on each side), 1 inside."""
    out = np.where(instances > 0, INTERIOR, BACKGROUND).astype(np.uint8)
    edges = find_boundaries(instances, connectivity=1, mode="inner") & (instances > 0)
    out[edges] = BOUNDARY
    return out


def at_gsd(image: FieldImage, gsd_m: float) -> FieldImage:
    """The image area-averaged (or bilinearly upsampled) to `gsd_m`; instances by nearest pixel."""
    if abs(gsd_m / image.gsd_m - 1) < 1e-3:
        return image
    h, w = image.instances.shape
    scale = image.gsd_m / gsd_m
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    method = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    rgb = np.asarray(Image.fromarray(image.rgb).resize(size, method))
    labels = np.asarray(Image.fromarray(image.instances).resize(size, Image.Resampling.NEAREST)).astype(np.int32)
    return FieldImage(image.name, rgb, labels, float(gsd_m))
