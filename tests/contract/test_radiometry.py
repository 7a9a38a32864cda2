"""Band selection and uint8 scaling of raw imagery."""

import numpy as np
import pytest

from contract.errors import AgrilandError
from contract.radiometry import select_bands, to_uint8, valid_mask


def test_uint8_passes_through_unchanged() -> None:
    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    assert to_uint8(image) is image


def test_uint16_percentile_stretch_maps_range_to_full_uint8() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(1000, 5000, size=(64, 64, 3)).astype(np.uint16)
    out = to_uint8(image, stretch=(0, 100))
    assert out.dtype == np.uint8
    for band in range(3):
        assert out[..., band].min() == 0 and out[..., band].max() == 255
    # order is preserved: a brighter input pixel is never darker after the stretch
    flat_in, flat_out = image[..., 0].ravel(), out[..., 0].ravel()
    order = np.argsort(flat_in, kind="stable")
    assert np.all(np.diff(flat_out[order].astype(int)) >= 0)


def test_stretch_ignores_nodata_and_zeroes_it() -> None:
    image = np.full((10, 10, 3), 2000, dtype=np.uint16)
    image[:, 5:] = 4000
    image[:2] = 0  # nodata margin
    valid = valid_mask(image, nodata=0)
    out = to_uint8(image, stretch=(0, 100), valid=valid)
    assert np.all(out[:2] == 0)
    assert out[5, 0, 0] == 0 and out[5, 9, 0] == 255


def test_nan_is_invalid() -> None:
    image = np.ones((4, 4, 3), dtype=np.float32)
    image[0, 0, 1] = np.nan
    assert not valid_mask(image)[0, 0]
    assert valid_mask(image).sum() == 15


def test_full_range_scaling_without_stretch() -> None:
    image = np.array([[[0, 65535, 257]]], dtype=np.uint16)
    assert to_uint8(image, stretch=None).tolist() == [[[0, 255, 1]]]


def test_select_bands_orders_and_validates() -> None:
    image = np.stack([np.full((2, 2), v) for v in (10, 20, 30, 40)], axis=-1)
    assert select_bands(image, (3, 2, 1))[0, 0].tolist() == [30, 20, 10]
    assert select_bands(image)[0, 0].tolist() == [10, 20, 30]
    assert select_bands(image[..., 0])[0, 0].tolist() == [10, 10, 10]
    with pytest.raises(AgrilandError, match="band 5 does not exist"):
        select_bands(image, (5, 2, 1))
    with pytest.raises(AgrilandError, match="2 bands"):
        select_bands(image[..., :2])


def test_bad_stretch_is_refused() -> None:
    with pytest.raises(AgrilandError, match="percentiles"):
        to_uint8(np.ones((2, 2, 3), dtype=np.uint16), stretch=(90, 10))
