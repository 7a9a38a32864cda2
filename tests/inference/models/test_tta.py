"""Test-time rotations: views are exact rotations and averaging them back inverts them."""

from __future__ import annotations

import numpy as np
import pytest

from contract.errors import AgrilandError
from inference.models.runtime import TTA_ENV, RuntimeOptions
from inference.models.tta import mean_of_views, rotated_views


def test_rotations_round_trip_and_average() -> None:
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 255, (3, 8, 8, 3), dtype=np.uint8)
    views = rotated_views(batch, 4)
    assert views.shape == (12, 8, 8, 3)
    np.testing.assert_array_equal(views[3:6], np.rot90(batch, 1, axes=(1, 2)))
    # a per-pixel model (here: the green band) is rotation-equivariant: the averaged answer is the plain one
    masks = views[..., 1:2].astype(np.float32)
    np.testing.assert_allclose(mean_of_views(masks, 4), batch[..., 1:2].astype(np.float32))
    # an orientation-biased model is averaged over the turns
    biased = np.zeros((12, 8, 8, 1), np.float32)
    biased[:, :, 0] = 1.0  # every view says "the left column"
    mean = mean_of_views(biased, 4)
    assert mean[0, 0, 0, 0] == pytest.approx(0.5) and mean[0, 3, 3, 0] == 0.0


def test_bad_views_and_shapes() -> None:
    with pytest.raises(AgrilandError, match="1, 2 or 4"):
        rotated_views(np.zeros((1, 4, 4, 3), np.uint8), 3)
    with pytest.raises(AgrilandError, match="square"):
        rotated_views(np.zeros((1, 4, 6, 3), np.uint8), 2)
    with pytest.raises(AgrilandError, match="multiple"):
        mean_of_views(np.zeros((5, 4, 4, 1), np.float32), 2)


def test_operators_can_lower_but_not_raise_the_views(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RuntimeOptions.from_env({TTA_ENV: "1"}).views(4) == 1
    assert RuntimeOptions.from_env({TTA_ENV: "4"}).views(2) == 2  # never more than the model was exported with
    assert RuntimeOptions.from_env({}).views(4) == 4
    with pytest.raises(AgrilandError, match=TTA_ENV):
        RuntimeOptions.from_env({TTA_ENV: "many"})
