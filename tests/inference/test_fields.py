"""Field delineation on drawn scenes: touching fields come back as separate fields with the right hectares."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from contract.errors import AgrilandError
from inference.fields import FOUR_CONNECTED, FieldOptions, delineate, flood, separate
from inference.scenes.polygons import extract_polygons

UTM = CRS.from_epsg(32633)


def _drawn(scale: int = 1, noise: float = 3.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 10 m-style scene (x `scale` px per 10 m): wheat | barley side by side above a lake, a road between
    the fields and the lake. Returns RGB and the U-Net-like probability (high on both fields, low on water)."""
    h, w = 120 * scale, 160 * scale
    rgb = np.zeros((h, w, 3), np.float32)
    rgb[: 80 * scale, : 80 * scale] = (150, 170, 70)  # green crop
    rgb[: 80 * scale, 80 * scale :] = (190, 160, 110)  # ripe / bare crop, touching the first
    rgb[80 * scale : 82 * scale] = (120, 120, 120)  # a 20 m road
    rgb[82 * scale :] = (30, 50, 80)  # lake
    rgb += np.random.default_rng(seed).normal(0.0, noise, rgb.shape)
    probability = np.full((h, w), 0.05, np.float32)
    probability[: 82 * scale] = 0.8
    # the U-Net's answer is blurry (640 m of context): it spills over the road and the lake shore
    probability[82 * scale : 90 * scale] = 0.6
    return np.clip(rgb, 0, 255).astype(np.uint8), probability


def test_two_touching_fields_are_two_fields_with_the_right_hectares() -> None:
    rgb, probability = _drawn()
    valid = np.ones(probability.shape, bool)
    fields = delineate(rgb, probability, valid, 0.5, gsd_m=10.0)
    left, right = fields.labels[40, 40], fields.labels[40, 120]
    assert left and right and left != right
    assert fields.confidence[left - 1] > 0.7 and fields.confidence[right - 1] > 0.7
    assert not fields.mask[100:].any()  # the lake is not field (a shore sliver under the blur may be)
    assert fields.mask[82:].sum() < 300  # slivers on the shore: under 3 ha
    assert (fields.labels[:80, :80] == left).mean() > 0.95 and (fields.labels[:80, 80:] == right).mean() > 0.95
    # one polygon per field; areas: 80 x 80 px of 100 m2 = 64 ha each, less the boundary lines
    polygons = extract_polygons(fields.mask, Affine(10, 0, 500_000, 0, -10, 5_000_000), UTM, min_area_ha=3.0)
    assert len(polygons.geometries) == 2
    np.testing.assert_allclose(sorted(polygons.areas_ha), [64.0, 64.0], rtol=0.06)


def test_the_plain_threshold_merges_them_into_one_blob() -> None:
    rgb, probability = _drawn()
    valid = np.ones(probability.shape, bool)
    plain = delineate(rgb, probability, valid, 0.5, 10.0, FieldOptions(mode="threshold"))
    np.testing.assert_array_equal(plain.mask, (probability >= 0.5).astype(np.uint8))
    assert len(plain.confidence) == 1  # both fields, the road and the shore in one region


def test_one_metre_imagery_is_delineated_in_ground_units() -> None:
    """The same landscape at 1 m (10x the pixels): the same two fields, hectares in agreement."""
    rgb, probability = _drawn(scale=10, noise=6.0)
    fields = delineate(rgb, probability, np.ones(probability.shape, bool), 0.5, gsd_m=1.0)
    assert fields.mask.shape == probability.shape and not fields.mask[900:].any()
    polygons = extract_polygons(fields.mask, Affine(1, 0, 500_000, 0, -1, 5_000_000), UTM, min_area_ha=3.0)
    assert len(polygons.geometries) == 2
    np.testing.assert_allclose(sorted(polygons.areas_ha), [64.0, 64.0], rtol=0.06)


def test_noise_and_texture_do_not_split_a_field() -> None:
    rgb, probability = _drawn(noise=12.0, seed=3)
    fields = delineate(rgb, probability, np.ones(probability.shape, bool), 0.5, gsd_m=10.0)
    big = np.bincount(fields.labels.ravel())[1:] >= 300  # 3 ha
    assert big.sum() == 2


def test_nodata_is_never_field_and_all_nodata_is_empty() -> None:
    rgb, probability = _drawn()
    valid = np.ones(probability.shape, bool)
    valid[:, :20] = False
    fields = delineate(rgb, probability, valid, 0.5, gsd_m=10.0)
    assert not fields.mask[:, :20].any() and fields.labels[40, 40] != fields.labels[40, 120]
    empty = delineate(rgb, probability, np.zeros_like(valid), 0.5, gsd_m=10.0)
    assert not empty.mask.any() and len(empty.confidence) == 0


def test_separate_cuts_every_four_connected_contact() -> None:
    labels = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 3, 0]], np.int32)
    cut = separate(labels)
    for a, b in ((cut[:, :-1], cut[:, 1:]), (cut[:-1, :], cut[1:, :])):
        assert not ((a > 0) & (b > 0) & (a != b)).any()
    assert (cut > 0).sum() >= 5


def test_shapes_and_modes_are_checked() -> None:
    rgb, probability = _drawn()
    with pytest.raises(AgrilandError, match="differ"):
        delineate(rgb[:10], probability, np.ones(probability.shape, bool), 0.5, 10.0)
    with pytest.raises(AgrilandError, match="mask mode"):
        FieldOptions.parse("blobs")
    assert FieldOptions.parse(None).mode == "fields" and FieldOptions.parse("threshold").mode == "threshold"


def _flood_case(seed: int, levels: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured gradient (`levels`: rounded to plateaus), nodata holes, and the 4-connected cores as markers."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    gradient = ndimage.gaussian_filter(rng.random((180, 220)), 3).astype(np.float32)
    if levels:
        gradient = np.round(gradient * levels) / levels
    valid = np.ones(gradient.shape, bool)
    valid[40:70, 100:140] = False
    valid[:, :3] = rng.random((180, 3)) < 0.5
    core = (gradient <= np.quantile(gradient, 0.5)) & valid
    markers, n = ndimage.label(core, structure=FOUR_CONNECTED)
    assert n > 5 and (markers[0] > 0).any()  # markers touch the image edge too
    return gradient, markers.astype(np.int32), valid


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_rim_flood_gives_skimages_whole_watershed(seed: int) -> None:
    """Flooding only from the markers' rims gives the labels and lines of skimage's watershed flooded from every
    marker pixel (no exact ties in a continuous gradient)."""
    from skimage.segmentation import watershed

    gradient, markers, valid = _flood_case(seed, None)
    expected = watershed(gradient, markers, mask=valid, watershed_line=True)
    got = flood(gradient, markers, valid)
    np.testing.assert_array_equal(got, expected)
    assert (got == 0).sum() > (~valid).sum()  # there are lines to get right


@pytest.mark.parametrize("seed", [0, 1])
def test_on_plateaus_the_rim_flood_is_still_a_watershed_of_the_same_markers(seed: int) -> None:
    """Where ties are broken differently, the answer is still a partition of the valid pixels by the same markers:
    every marker keeps its pixels, nodata stays 0, the same segments come back, and nearly every pixel agrees."""
    from skimage.segmentation import watershed

    gradient, markers, valid = _flood_case(seed, 40)
    expected = watershed(gradient, markers, mask=valid, watershed_line=True)
    got = flood(gradient, markers, valid)
    seeded = markers > 0
    np.testing.assert_array_equal(got[seeded], markers[seeded])
    assert (got[~valid] == 0).all() and set(np.unique(got)) == set(np.unique(expected))
    assert (got == expected).mean() > 0.98
