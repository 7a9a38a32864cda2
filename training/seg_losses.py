"""Segmentation losses on sigmoid probabilities: BCE (the workflow's default), BCE + Dice, and focal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import tensorflow as tf
import tf_keras

from contract.errors import AgrilandError

LossName = Literal["bce", "bce_dice", "focal"]
LOSSES: tuple[LossName, ...] = ("bce", "bce_dice", "focal")
LossFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


def soft_dice_loss(y_true: tf.Tensor, y_pred: tf.Tensor, smooth: float = 1.0) -> tf.Tensor:
    """1 - soft Dice over the whole batch (pixels pooled, like the micro-averaged metrics)."""
    y_true = tf.cast(y_true, tf.float32)
    y_pred = tf.cast(y_pred, tf.float32)
    intersection = tf.reduce_sum(y_true * y_pred)
    total = tf.reduce_sum(y_true) + tf.reduce_sum(y_pred)
    return 1.0 - (2.0 * intersection + smooth) / (total + smooth)


def get_loss(name: LossName, focal_gamma: float = 2.0, focal_alpha: float = 0.25) -> LossFn:
    """The loss called `name`, for a model whose output is a sigmoid probability."""
    if name == "bce":
        return tf_keras.losses.BinaryCrossentropy(name="bce")
    if name == "bce_dice":
        bce = tf_keras.losses.BinaryCrossentropy()

        def bce_dice(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
            return bce(y_true, y_pred) + soft_dice_loss(y_true, y_pred)

        return bce_dice
    if name == "focal":
        return tf_keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=True, alpha=focal_alpha, gamma=focal_gamma, name="focal"
        )
    raise AgrilandError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
