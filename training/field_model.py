"""The field model: a U-Net (EfficientNet-Lite0 ImageNet encoder, segmentation-models decoder) answering background /
field interior / field boundary per pixel, and its loss (class-weighted cross-entropy + soft Dice, padding ignored)."""

from __future__ import annotations

import tensorflow as tf
import tf_keras

import training  # noqa: F401  (sets TF_USE_LEGACY_KERAS / SM_FRAMEWORK before TF loads)
from contract.errors import AgrilandError
from training.field_targets import CLASSES, IGNORE
from training.preprocessing import ImagePreprocessing
from training.unet import (
    PREPROCESSING,
    check_tile_size,
    lite0_unet_core,
    normalize_encoder,
    plain_unet_core,
)

OUTPUT_NAME = "fields"
# Fields of The World weights the rare boundary class most ([0.04, 0.08, 0.88]; PRUE [0.05, 0.2, 0.75]).
CLASS_WEIGHTS: tuple[float, float, float] = (0.05, 0.2, 0.75)
TINY_FILTERS = (8, 16, 32, 64, 128)


def build_field_unet(
    tile_size: int, encoder: str = "efficientnet-lite0", weights: str | None = "imagenet"
) -> tf_keras.Model:
    """uint8 `image` [N, T, T, 3] -> in-graph preprocessing -> U-Net -> softmax `fields` [N, T, T, 3]."""
    check_tile_size(tile_size)
    enc = normalize_encoder(encoder)
    if enc == "efficientnet-lite0":
        core = lite0_unet_core(weights, classes=len(CLASSES))
    elif enc == "none":
        core = plain_unet_core(TINY_FILTERS, classes=len(CLASSES))
    else:
        raise AgrilandError(f"the field model has an efficientnet-lite0 or a plain ('none') encoder, not {encoder!r}")
    image = tf_keras.Input((tile_size, tile_size, 3), dtype="uint8", name="image")
    x = ImagePreprocessing(PREPROCESSING[enc], name="preprocess")(image)
    logits = core(x)
    probabilities = tf_keras.layers.Softmax(axis=-1, dtype="float32", name=OUTPUT_NAME)(logits)
    return tf_keras.Model(image, probabilities, name=f"fields_{enc}")


def field_loss(class_weights: tuple[float, ...] = CLASS_WEIGHTS, dice_weight: float = 1.0):
    """Class-weighted cross-entropy (normalised by the weights of the labelled pixels) + 1 - mean soft Dice of the
    interior and boundary classes; pixels labelled IGNORE (padding) count for neither."""
    weights = tf.constant(class_weights, tf.float32)

    def loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        labels = tf.cast(tf.squeeze(y_true, -1) if y_true.shape.rank == 4 else y_true, tf.int32)
        known = tf.cast(labels != IGNORE, tf.float32)
        safe = tf.where(labels == IGNORE, tf.zeros_like(labels), labels)
        onehot = tf.one_hot(safe, len(CLASSES), dtype=tf.float32) * known[..., None]
        p = tf.clip_by_value(tf.cast(y_pred, tf.float32), 1e-6, 1.0)
        pixel_w = tf.reduce_sum(onehot * weights, -1)
        ce = -tf.reduce_sum(onehot * tf.math.log(p), -1) * pixel_w
        ce = tf.reduce_sum(ce) / tf.maximum(tf.reduce_sum(pixel_w), 1e-6)
        pk = p * known[..., None]
        inter = tf.reduce_sum(onehot * pk, [0, 1, 2])
        total = tf.reduce_sum(onehot, [0, 1, 2]) + tf.reduce_sum(pk, [0, 1, 2])
        dice = (2 * inter + 1.0) / (total + 1.0)
        return ce + dice_weight * (1.0 - tf.reduce_mean(dice[1:]))

    return loss
