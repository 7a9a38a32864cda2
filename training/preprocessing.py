"""In-graph preprocessing: a Keras layer that turns uint8 RGB tiles into what a backbone expects."""

from __future__ import annotations

from typing import Literal

import tensorflow as tf
import tf_keras

PreprocessMode = Literal["unit", "tf", "caffe", "torch"]
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@tf_keras.utils.register_keras_serializable(package="agriland")
class ImagePreprocessing(tf_keras.layers.Layer):
    """uint8 RGB in, float32 out. Modes follow keras.applications:

    - `unit`: x / 255 (untrained encoders, autoencoder targets)
    - `tf`: x / 127.5 - 1 (InceptionV3)
    - `caffe`: RGB->BGR, minus the ImageNet channel means (ResNet50, VGG16)
    - `torch`: x / 255, minus mean, divided by std per channel
    """

    def __init__(self, mode: PreprocessMode = "unit", **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in ("unit", "tf", "caffe", "torch"):
            raise ValueError(f"unknown preprocessing mode {mode!r}")
        self.mode = mode

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        x = tf.cast(inputs, tf.float32)
        if self.mode == "unit":
            return x * (1.0 / 255.0)
        if self.mode == "tf":
            return x * (1.0 / 127.5) - 1.0
        if self.mode == "caffe":
            # RGB -> BGR as a constant 1x1 matmul-free gather keeps the ONNX graph a single Gather.
            x = tf.gather(x, [2, 1, 0], axis=-1)
            return x - tf.constant(_CAFFE_MEAN_BGR, dtype=tf.float32)
        x = x * (1.0 / 255.0)
        return (x - tf.constant(_TORCH_MEAN, dtype=tf.float32)) / tf.constant(_TORCH_STD, dtype=tf.float32)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}
