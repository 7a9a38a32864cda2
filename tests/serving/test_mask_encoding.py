"""Mask encodings of the HTTP answers: run-length round trips and the 0/255 PNG."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from contract.errors import AgrilandError
from serving.mask_encoding import mask_png_base64, rle_decode, rle_encode


@pytest.mark.parametrize("seed", range(4))
def test_rle_round_trip(seed: int) -> None:
    mask = (np.random.default_rng(seed).random((17, 23)) > 0.5).astype(np.uint8)
    counts = rle_encode(mask)
    assert sum(counts) == mask.size
    np.testing.assert_array_equal(rle_decode(counts, 17, 23), mask)


def test_rle_edge_cases() -> None:
    assert rle_encode(np.zeros((2, 3))) == [6]
    assert rle_encode(np.ones((2, 3))) == [0, 6]
    assert rle_encode(np.array([[1, 0, 0, 1]])) == [0, 1, 2, 1]
    with pytest.raises(AgrilandError):
        rle_decode([1, 2], 2, 2)


def test_mask_png_is_0_255_grayscale() -> None:
    mask = np.zeros((5, 7), np.uint8)
    mask[1:3, 2:6] = 1
    image = Image.open(io.BytesIO(base64.b64decode(mask_png_base64(mask))))
    assert image.mode == "L" and image.size == (7, 5)
    np.testing.assert_array_equal(np.asarray(image), mask * 255)
