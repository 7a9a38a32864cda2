"""Paired geometric augmentation for tile batches: flips, 90-degree turns, small rotations, crop and rescale.

Each tile in a batch draws its own transform (a 2x2 flip/turn matrix, a small rotation angle, a crop
scale and offset). They are folded into one projective transform, applied with bilinear sampling to the
image and nearest-neighbour sampling to the mask, so both move exactly together. Randomness is stateless
(seeded per batch), so a seed reproduces the same augmentations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import tensorflow as tf

# The eight flip/turn matrices (the dihedral group of the square), as row-major 2x2 [a, b, c, d].
_DIHEDRAL = tf.constant(
    [
        [1, 0, 0, 1],
        [-1, 0, 0, 1],
        [1, 0, 0, -1],
        [-1, 0, 0, -1],
        [0, 1, 1, 0],
        [0, -1, 1, 0],
        [0, 1, -1, 0],
        [0, -1, -1, 0],
    ],
    dtype=tf.float32,
)


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations run; angles in degrees, crop scale = crop edge / tile edge."""

    flips: bool = True  # random horizontal and vertical flips
    rot90: bool = True  # random multiples of 90 degrees
    max_rotation: float = 10.0  # small random rotation in [-max, max]
    min_crop_scale: float = 0.8  # random crop of scale in [min, 1], rescaled back to the tile size
    fill_mode: str = "REFLECT"  # how pixels rotated in from outside are filled
    photometric: bool = False  # brightness, contrast, saturation, per-band gain and gamma (other sensors)


def random_transforms(batch: int, size: int, seed: tf.Tensor, config: AugmentConfig) -> tf.Tensor:
    """[B, 8] projective transforms mapping output pixel coordinates to input coordinates."""
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=4)
    if config.flips and config.rot90:
        choice = tf.random.stateless_uniform([batch], seeds[0], 0, 8, dtype=tf.int32)
    elif config.flips:
        choice = tf.random.stateless_uniform([batch], seeds[0], 0, 4, dtype=tf.int32)
    elif config.rot90:  # turns only: identity, 90, 180 and 270 degrees
        choice = tf.gather([0, 5, 3, 6], tf.random.stateless_uniform([batch], seeds[0], 0, 4, dtype=tf.int32))
    else:
        choice = tf.zeros([batch], tf.int32)
    d = tf.gather(_DIHEDRAL, choice)  # [B, 4]
    angle = tf.random.stateless_uniform([batch], seeds[1], -1.0, 1.0) * (config.max_rotation * math.pi / 180)
    scale = tf.random.stateless_uniform([batch], seeds[2], config.min_crop_scale, 1.0)
    shift = tf.random.stateless_uniform([batch, 2], seeds[3], -1.0, 1.0) * ((1.0 - scale) * size / 2)[:, None]
    cos, sin = tf.cos(angle), tf.sin(angle)
    # M = scale * R(angle) @ D, maps centred output coordinates to centred input coordinates.
    m00 = scale * (cos * d[:, 0] - sin * d[:, 2])
    m01 = scale * (cos * d[:, 1] - sin * d[:, 3])
    m10 = scale * (sin * d[:, 0] + cos * d[:, 2])
    m11 = scale * (sin * d[:, 1] + cos * d[:, 3])
    size = tf.cast(size, tf.float32)
    centre = (size - 1.0) / 2.0
    tx = centre + shift[:, 0] - (m00 * centre + m01 * centre)
    ty = centre + shift[:, 1] - (m10 * centre + m11 * centre)
    zeros = tf.zeros([batch])
    return tf.stack([m00, m01, tx, m10, m11, ty, zeros, zeros], axis=1)


def apply_transforms(images: tf.Tensor, transforms: tf.Tensor, interpolation: str, fill_mode: str) -> tf.Tensor:
    """Resample a float32 [B, H, W, C] batch with per-tile projective transforms."""
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=0.0,
        interpolation=interpolation,
        fill_mode=fill_mode,
    )


def augment_batch(
    images: tf.Tensor, masks: tf.Tensor | None, seed: tf.Tensor, config: AugmentConfig = AugmentConfig()
) -> tuple[tf.Tensor, tf.Tensor | None]:
    """Augment uint8 images [B,T,T,3] (and float32 masks [B,T,T,1]) with identical per-tile transforms."""
    shape = tf.shape(images)
    size = images.shape[1] if images.shape[1] is not None else shape[1]
    transforms = random_transforms(shape[0], size, seed, config)
    out = apply_transforms(tf.cast(images, tf.float32), transforms, "BILINEAR", config.fill_mode)
    out = tf.cast(tf.clip_by_value(tf.round(out), 0.0, 255.0), tf.uint8)
    if masks is None:
        return out, None
    warped = apply_transforms(tf.cast(masks, tf.float32), transforms, "NEAREST", config.fill_mode)
    return out, warped


def photometric_batch(images: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Per-tile random brightness, contrast, saturation, per-band gain and gamma on uint8 [B,H,W,3].

    Other sensors, seasons, haze and processing levels change colour and contrast far more than geometry; a
    model trained on one sensor's 8-bit rendering must not rely on its exact tones.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=5)
    batch = tf.shape(images)[0]
    x = tf.cast(images, tf.float32) / 255.0
    gain = tf.random.stateless_uniform([batch, 1, 1, 3], seeds[0], 0.85, 1.15)
    brightness = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[1], -0.12, 0.12)
    contrast = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[2], 0.6, 1.5)
    saturation = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[3], 0.6, 1.4)
    gamma = tf.exp(tf.random.stateless_uniform([batch, 1, 1, 1], seeds[4], -0.35, 0.35))
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = (x * gain - mean) * contrast + mean + brightness
    grey = tf.reduce_mean(x, axis=3, keepdims=True)
    x = grey + (x - grey) * saturation
    x = tf.pow(tf.clip_by_value(x, 0.0, 1.0), gamma)
    return tf.cast(tf.round(x * 255.0), tf.uint8)
