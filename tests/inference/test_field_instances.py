"""Fields from the field model's planes: a marker watershed on the boundary, a boundary vote per line, a minimum area."""

from __future__ import annotations

import numpy as np
import pytest

from contract.errors import AgrilandError
from inference.field_instances import InstanceOptions, instances


def _planes(line: float) -> tuple[np.ndarray, np.ndarray]:
    """Two 40x30 px fields side by side (columns 5-34 and 36-65) whose dividing column 35 has boundary
    probability `line`, inside a background margin."""
    extent = np.zeros((50, 70), np.float32)
    boundary = np.zeros_like(extent)
    extent[5:45, 5:66] = 0.95
    boundary[5:45, 35] = line
    boundary[5, 5:66] = boundary[44, 5:66] = 0.8  # outer edges
    boundary[5:45, 5] = boundary[5:45, 65] = 0.8
    return extent, boundary


def test_two_touching_fields_come_back_as_two_with_their_hectares() -> None:
    extent, boundary = _planes(line=0.9)
    found = instances(extent, boundary, np.ones(extent.shape, bool), gsd_m=10.0)
    assert len(found.confidence) == 2
    areas_ha = np.bincount(found.labels.ravel())[1:] * 100 / 10_000  # 10 m pixels: 0.01 ha each
    # each field is 40 x 30 px = 12 ha; its share of the dividing line and the watershed line cost < 0.5 ha
    assert np.allclose(sorted(areas_ha), [12.0, 12.0], atol=0.5)
    assert (found.confidence > 0.9).all()
    left, right = found.labels[20, 15], found.labels[20, 55]
    assert left != right and left > 0 and right > 0


def test_a_line_that_does_not_vote_boundary_joins_the_two_sides() -> None:
    extent, boundary = _planes(line=0.55)  # splits the interior seeds, but votes under the 0.6 cut
    found = instances(extent, boundary, np.ones(extent.shape, bool), 10.0, InstanceOptions(vote_cut=0.6))
    assert len(found.confidence) == 1
    assert found.labels[20, 15] == found.labels[20, 55] > 0


def test_fields_under_the_minimum_area_and_nodata_are_not_answered() -> None:
    extent, boundary = _planes(line=0.9)
    valid = np.ones(extent.shape, bool)
    valid[:, 36:] = False  # the right field is nodata
    found = instances(extent, boundary, valid, 10.0)
    assert len(found.confidence) == 1 and not found.mask[:, 36:].any()
    tiny = instances(extent, boundary, np.ones(extent.shape, bool), 10.0, InstanceOptions(min_field_ha=20.0))
    assert len(tiny.confidence) == 0 and not tiny.mask.any()


def test_no_field_pixels_give_no_fields_and_bad_shapes_are_refused() -> None:
    zeros = np.zeros((8, 8), np.float32)
    assert len(instances(zeros, zeros, np.ones((8, 8), bool), 1.0).confidence) == 0
    with pytest.raises(AgrilandError, match="differ"):
        instances(zeros, np.zeros((8, 9), np.float32), np.ones((8, 8), bool), 1.0)
    with pytest.raises(AgrilandError, match="positive"):
        instances(zeros, zeros, np.ones((8, 8), bool), 0.0)


def test_crop_veto_keeps_the_fields_the_arable_model_calls_cropland() -> None:
    from inference.field_instances import crop_vetoed

    extent, boundary = _planes(line=0.9)
    found = instances(extent, boundary, np.ones(extent.shape, bool), 10.0)
    arable = np.zeros(extent.shape, np.float32)
    arable[:, 36:] = 0.8  # only the right field looks like cropland
    kept = crop_vetoed(found, arable, 0.35)
    assert len(kept.confidence) == 1 and kept.labels.max() == 1
    assert kept.mask[:, 36:].any() and not kept.mask[:, :35].any()
    assert crop_vetoed(found, arable, 0.0) is found
    assert len(crop_vetoed(found, arable, 0.9).confidence) == 0
    with pytest.raises(AgrilandError, match="differ"):
        crop_vetoed(found, arable[:10], 0.35)
