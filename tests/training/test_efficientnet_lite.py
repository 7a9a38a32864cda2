"""EfficientNet-Lite0 built in Keras from the registry package's ImageNet weights matches the reference ONNX."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "efficientnet_lite0_imagenet_gap1280.onnx"


@pytest.mark.slow
def test_pooled_features_match_the_reference_onnx() -> None:
    if not REFERENCE.is_file():
        pytest.skip(f"reference ONNX not present at {REFERENCE} (only on development machines with ../shared)")
    import onnxruntime as ort
    import tf_keras

    from training.efficientnet_lite import build_efficientnet_lite0

    model = build_efficientnet_lite0((224, 224, 3), weights="imagenet")
    x = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3)).astype(np.float32) / 127.5 - 1.0
    ours = tf_keras.layers.GlobalAveragePooling2D()(model(x, training=False)).numpy()
    session = ort.InferenceSession(str(REFERENCE), providers=["CPUExecutionProvider"])
    reference = session.run(None, {"image": x.transpose(0, 3, 1, 2)})[0]
    assert np.abs(ours - reference).max() <= 1e-4


def test_skip_layers_have_the_unet_strides() -> None:
    import tf_keras  # noqa: F401

    from training.efficientnet_lite import SKIP_LAYERS, build_efficientnet_lite0

    model = build_efficientnet_lite0((64, 64, 3), weights=None)
    sides = [model.get_layer(name).output.shape[1] for name in SKIP_LAYERS]
    assert sides == [32, 16, 8, 4, 2]
    assert model.count_params() == 3_413_024  # 3.4 M: the Lite0 encoder without its classifier
