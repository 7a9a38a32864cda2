"""Load agriland's saved Keras models with every custom layer registered."""

from __future__ import annotations

import importlib
from pathlib import Path

import tf_keras

from contract.errors import AgrilandError

# Modules whose import registers custom layers with tf_keras (register_keras_serializable).
_CUSTOM_LAYER_MODULES = ("training.preprocessing", "training.clustering_layer", "training.pretrained_features")


def register_custom_objects() -> None:
    """Import every module that defines a serializable agriland layer."""
    for module in _CUSTOM_LAYER_MODULES:
        importlib.import_module(module)


def load_inference_model(path: Path | str) -> tf_keras.Model:
    """Load an `inference_model.keras` written by a training run (uint8 `image` in)."""
    path = Path(path)
    if not path.exists():
        raise AgrilandError(f"no Keras model at {path}: train first (agriland train-dec / train-unet)")
    register_custom_objects()
    try:
        return tf_keras.models.load_model(path, compile=False)
    except (OSError, ValueError) as err:
        raise AgrilandError(f"cannot load Keras model {path}: {err}") from err
