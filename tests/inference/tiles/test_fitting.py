"""Fitting odd-size tiles to the model size (pad or resize) and mapping the output back."""

from __future__ import annotations

import numpy as np
import pytest

from contract.errors import AgrilandError
from inference.tiles.fitting import fit_tile, restore_probability


def _image(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_exact_size_is_untouched() -> None:
    image = _image(64, 64)
    tile, info = fit_tile(image, 64)
    assert tile is image and info.mode == "exact"
    prob = np.random.default_rng(1).random((64, 64)).astype(np.float32)
    assert restore_probability(prob, info) is prob


def test_pad_keeps_pixels_and_maps_back() -> None:
    image = _image(40, 50)
    tile, info = fit_tile(image, 64)
    assert tile.shape == (64, 64, 3) and info.mode == "pad"
    np.testing.assert_array_equal(tile[:40, :50], image)
    assert not tile[40:].any() and not tile[:, 50:].any()
    prob = np.arange(64 * 64, dtype=np.float32).reshape(64, 64)
    np.testing.assert_array_equal(restore_probability(prob, info), prob[:40, :50])


@pytest.mark.parametrize("shape", [(100, 130), (30, 200), (64, 65)])
def test_resize_maps_back_to_the_input_size(shape: tuple[int, int]) -> None:
    tile, info = fit_tile(_image(*shape), 64)
    assert tile.shape == (64, 64, 3) and info.mode == "resize"
    restored = restore_probability(np.full((64, 64), 0.7, np.float32), info)
    assert restored.shape == shape and np.allclose(restored, 0.7)


def test_pad_refuses_larger_tiles() -> None:
    with pytest.raises(AgrilandError, match="resize"):
        fit_tile(_image(80, 80), 64, "pad")
    assert fit_tile(_image(30, 30), 64, "resize")[1].mode == "resize"
