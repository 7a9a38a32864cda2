"""DEC's Student-t soft assignment layer and the self-training target distribution."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras


@tf_keras.utils.register_keras_serializable(package="agriland")
class ClusteringLayer(tf_keras.layers.Layer):
    """Soft-assign embeddings to K centroids: q_ij = (1 + ||z_i - mu_j||^2 / alpha)^(-(alpha+1)/2), rows normalised.

    The centroids are the layer's only weight (`clusters`, shape [K, D]); `alpha` (the Student-t degrees of
    freedom) is part of the config so a reloaded model computes the same q.
    """

    def __init__(self, n_clusters: int, alpha: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        if int(n_clusters) < 1:
            raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
        if float(alpha) <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.n_clusters = int(n_clusters)
        self.alpha = float(alpha)
        self.input_spec = tf_keras.layers.InputSpec(ndim=2)

    def build(self, input_shape: tf.TensorShape) -> None:
        dim = int(input_shape[-1])
        self.input_spec = tf_keras.layers.InputSpec(dtype=tf.float32, shape=(None, dim))
        self.clusters = self.add_weight(
            name="clusters", shape=(self.n_clusters, dim), initializer="glorot_uniform", trainable=True
        )
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        diff = tf.expand_dims(inputs, axis=1) - tf.expand_dims(self.clusters, axis=0)  # [N, K, D]
        dist2 = tf.reduce_sum(tf.square(diff), axis=2)
        q = tf.pow(1.0 + dist2 / self.alpha, -(self.alpha + 1.0) / 2.0)
        return q / tf.reduce_sum(q, axis=1, keepdims=True)

    def compute_output_shape(self, input_shape: tf.TensorShape) -> tf.TensorShape:
        return tf.TensorShape([input_shape[0], self.n_clusters])

    def get_config(self) -> dict:
        return {**super().get_config(), "n_clusters": self.n_clusters, "alpha": self.alpha}


def soft_assignment(z: np.ndarray, centers: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """NumPy version of the layer's q (used for checks and for embeddings computed outside Keras)."""
    dist2 = ((z[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
    q = (1.0 + dist2 / alpha) ** (-(alpha + 1.0) / 2.0)
    return q / q.sum(axis=1, keepdims=True)


def target_distribution(q: np.ndarray) -> np.ndarray:
    """DEC's auxiliary target: p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j'), with f_j = sum_i q_ij."""
    q = np.asarray(q, dtype=np.float64)
    weight = q**2 / q.sum(axis=0, keepdims=True)
    return (weight / weight.sum(axis=1, keepdims=True)).astype(np.float32)
