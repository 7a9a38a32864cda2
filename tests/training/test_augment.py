"""Paired augmentation keeps image and mask aligned (asymmetric marker), covers all flips/turns, is seeded."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from training.augment import AugmentConfig, augment_batch
from training.tf_dataset import make_tf_dataset

SIZE = 32


def _marker_batch(batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """An L-shaped marker (no symmetry), red in the image and 1 in the mask, off-centre."""
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[6:22, 8:13] = 1  # vertical bar
    mask[17:22, 8:24] = 1  # foot to the right
    mask[6:9, 13:16] = 1  # a nub: breaks the remaining diagonal symmetry
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    image[..., 1] = 60
    image[mask > 0, 0] = 255
    return np.repeat(image[None], batch, 0), np.repeat(mask[None, ..., None], batch, 0)


def _run(config: AugmentConfig, seed: int = 0, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    images, masks = _marker_batch(batch)
    out_images, out_masks = augment_batch(
        tf.constant(images), tf.constant(masks), tf.constant([seed, 1], tf.int64), config
    )
    return out_images.numpy(), out_masks.numpy()[..., 0]


def test_flips_and_turns_keep_exact_alignment_and_cover_all_eight() -> None:
    config = AugmentConfig(max_rotation=0.0, min_crop_scale=1.0)
    images, masks = _run(config, batch=64)
    np.testing.assert_array_equal(images[..., 0] > 127, masks > 0.5)
    assert set(np.unique(masks)) == {0.0, 1.0}
    assert (masks.sum(axis=(1, 2)) == _marker_batch(1)[1].sum()).all()  # no pixels lost
    variants = {m.tobytes() for m in masks}
    assert len(variants) == 8  # the marker is asymmetric, so all 8 flip/turn results differ


def test_rotation_and_crop_keep_image_and_mask_aligned() -> None:
    images, masks = _run(AugmentConfig(max_rotation=15.0, min_crop_scale=0.7), batch=32)
    marker = images[..., 0] > 127
    for got_image, got_mask in zip(marker, masks > 0.5):
        union = (got_image | got_mask).sum()
        iou = (got_image & got_mask).sum() / max(union, 1)
        assert union == 0 or iou > 0.85
    assert set(np.unique(masks)) <= {0.0, 1.0}  # nearest sampling keeps masks binary
    original = _marker_batch(1)[0][0]
    assert any(not np.array_equal(img, original) for img in images)


def test_identity_config_and_determinism() -> None:
    images, masks = _run(AugmentConfig(flips=False, rot90=False, max_rotation=0.0, min_crop_scale=1.0))
    np.testing.assert_array_equal(images, _marker_batch()[0])
    np.testing.assert_array_equal(masks, _marker_batch()[1][..., 0])
    first, second = _run(AugmentConfig(), seed=3), _run(AugmentConfig(), seed=3)
    np.testing.assert_array_equal(first[0], second[0])
    assert not np.array_equal(first[0], _run(AugmentConfig(), seed=4)[0])


def test_pipeline_keeps_pairs_aligned() -> None:
    images, masks = _marker_batch(12)
    for batch_images, batch_masks in make_tf_dataset(images, masks[..., 0].astype(np.uint8), batch_size=5, seed=2):
        marker = batch_images.numpy()[..., 0] > 127
        got = batch_masks.numpy()[..., 0] > 0.5
        iou = (marker & got).sum() / (marker | got).sum()
        assert iou > 0.85
