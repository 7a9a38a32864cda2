"""Field targets: background / interior / boundary rasterised from drawn field polygons, at any ground resolution."""

from __future__ import annotations

import numpy as np

from training.field_polygons import FieldImage
from training.field_targets import BACKGROUND, BOUNDARY, INTERIOR, at_gsd, targets_of


def _two_touching() -> np.ndarray:
    """Fields 1 (columns 2-9) and 2 (columns 10-17) share an edge; rows 2-11; the rest is background."""
    labels = np.zeros((14, 20), np.int32)
    labels[2:12, 2:10] = 1
    labels[2:12, 10:18] = 2
    return labels


def test_touching_fields_get_a_boundary_between_them_and_an_interior_each() -> None:
    targets = targets_of(_two_touching())
    assert (targets[:2] == BACKGROUND).all() and (targets[:, :2] == BACKGROUND).all()
    # the line between the two fields: both fields' edge pixels are boundary
    assert (targets[3:11, 9] == BOUNDARY).all() and (targets[3:11, 10] == BOUNDARY).all()
    # outer edges of the fields are boundary, one pixel wide
    assert (targets[2, 2:18] == BOUNDARY).all() and (targets[11, 2:18] == BOUNDARY).all()
    assert (targets[3:11, 3:9] == INTERIOR).all() and (targets[3:11, 11:17] == INTERIOR).all()
    # interiors of the two fields do not touch: the boundary separates them
    from scipy import ndimage

    _, n = ndimage.label(targets == INTERIOR)
    assert n == 2


def test_a_lone_field_has_no_boundary_inside() -> None:
    labels = np.zeros((10, 10), np.int32)
    labels[2:8, 2:8] = 5
    targets = targets_of(labels)
    assert (targets[3:7, 3:7] == INTERIOR).all()
    assert int((targets == BOUNDARY).sum()) == 6 * 4 - 4


def test_coarser_ground_resolution_area_averages_and_keeps_fields() -> None:
    rgb = np.zeros((100, 100, 3), np.uint8)
    rgb[:, 50:] = 200
    labels = np.zeros((100, 100), np.int32)
    labels[:, 50:] = 1
    coarse = at_gsd(FieldImage("x", rgb, labels, 1.0), 10.0)
    assert coarse.rgb.shape == (10, 10, 3) and coarse.gsd_m == 10.0
    assert (coarse.instances[:, 5:] == 1).all() and (coarse.instances[:, :5] == 0).all()
    assert coarse.rgb[0, 7, 0] == 200 and coarse.rgb[0, 2, 0] == 0
