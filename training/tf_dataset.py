"""The tf.data training pipeline: uint8 tiles (and masks) batched, seeded-augmented and prefetched."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from contract.errors import AgrilandError

if TYPE_CHECKING:
    import tensorflow as tf

    from training.augment import AugmentConfig


def make_tf_dataset(
    images: np.ndarray,
    masks: np.ndarray | None = None,
    batch_size: int = 16,
    shuffle: bool = True,
    augment: bool = True,
    seed: int = 0,
    repeat: bool = False,
    augment_config: AugmentConfig | None = None,
) -> tf.data.Dataset:
    """Batches of uint8 images [B,T,T,3], or (uint8 image, float32 mask [B,T,T,1]) pairs, prefetched.

    Augmentation (see `training.augment`) applies the same random flips, 90-degree turns, small rotation
    and crop-and-rescale to image and mask; it is seeded, so a seed gives the same batches every run.
    """
    import tensorflow as tf

    from training.augment import AugmentConfig, augment_batch, photometric_batch

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2]:
        raise AgrilandError(f"images must be (N, T, T, 3), got {images.shape}")
    if len(images) == 0:
        raise AgrilandError("no images to build a dataset from")
    images = images.astype(np.uint8, copy=False)
    tensors: tuple = (images,)
    if masks is not None:
        masks = np.asarray(masks)
        if masks.ndim == 4 and masks.shape[-1] == 1:
            masks = masks[..., 0]
        if masks.shape != images.shape[:3]:
            raise AgrilandError(f"masks {masks.shape} do not match images {images.shape[:3]}")
        tensors = (images, (masks > 0).astype(np.float32)[..., None])
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    if shuffle:
        ds = ds.shuffle(min(len(images), 10_000), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size)
    config = augment_config or AugmentConfig()

    def _map(index: tf.Tensor, batch: tuple) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
        step_seed = tf.stack([tf.constant(seed, tf.int64), index])
        image = batch[0]
        mask = batch[1] if masks is not None else None
        if augment:
            image, mask = augment_batch(image, mask, step_seed, config)
            if config.photometric:
                image = photometric_batch(image, step_seed + 1)
        return image if mask is None else (image, mask)

    ds = ds.enumerate().map(_map, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
