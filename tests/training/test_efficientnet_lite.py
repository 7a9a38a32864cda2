"""EfficientNet-Lite0 in Keras: reference-layout .pth weights land on the right layers; ImageNet parity where present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from contract.errors import AgrilandError
from testkit.legacy_pth import write_legacy_pth

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "efficientnet_lite0_imagenet_gap1280.onnx"


def _write_pth(arrays: dict[str, np.ndarray], folder: Path, name: str) -> Path:
    return write_legacy_pth(arrays, folder / f"{name}.pth")


def _reference_state_dict(model: object) -> dict[str, np.ndarray]:
    """The model's weights as the reference (lukemelas) PyTorch Lite0 names and layouts, found from the layer order
    alone: stem conv + bn, per block [expand conv + bn] depthwise + bn, project + bn, then head conv + bn."""
    import tf_keras

    layers = [layer for layer in model.layers if layer.get_weights()]
    state: dict[str, np.ndarray] = {}

    def conv(prefix: str, layer: object) -> None:
        (kernel,) = layer.get_weights()
        depthwise = isinstance(layer, tf_keras.layers.DepthwiseConv2D)
        state[f"{prefix}.weight"] = kernel.transpose(2, 3, 0, 1) if depthwise else kernel.transpose(3, 2, 0, 1)

    def bn(prefix: str, layer: object) -> None:
        assert isinstance(layer, tf_keras.layers.BatchNormalization), layer.name
        for key, value in zip(("weight", "bias", "running_mean", "running_var"), layer.get_weights()):
            state[f"{prefix}.{key}"] = value

    conv("_conv_stem", layers[0])
    bn("_bn0", layers[1])
    rest, block = layers[2:-2], 0
    while rest:
        if isinstance(rest[0], tf_keras.layers.DepthwiseConv2D):
            parts, rest = rest[:4], rest[4:]
        else:
            conv(f"_blocks.{block}._expand_conv", rest[0])
            bn(f"_blocks.{block}._bn0", rest[1])
            parts, rest = rest[2:6], rest[6:]
        assert isinstance(parts[0], tf_keras.layers.DepthwiseConv2D), parts[0].name
        conv(f"_blocks.{block}._depthwise_conv", parts[0])
        bn(f"_blocks.{block}._bn1", parts[1])
        conv(f"_blocks.{block}._project_conv", parts[2])
        bn(f"_blocks.{block}._bn2", parts[3])
        block += 1
    conv("_conv_head", layers[-2])
    bn("_bn1", layers[-1])
    assert block == 16  # Lite0: 1 + 2 + 2 + 3 + 3 + 4 + 1 MBConv blocks
    return state


@pytest.mark.slow
def test_reference_layout_weights_land_on_the_right_keras_layers(tmp_path: Path) -> None:
    import tf_keras

    from training.efficientnet_lite import build_efficientnet_lite0, load_lite0_weights

    tf_keras.utils.set_random_seed(1)
    source = build_efficientnet_lite0((32, 32, 3), weights=None, name="source")
    rng = np.random.default_rng(2)
    for layer in source.layers:  # BN layers start as the identity: give each its own statistics
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0, 0.1, beta.shape),
                    rng.normal(0, 0.1, mean.shape),
                    rng.uniform(0.5, 2.0, var.shape),
                ]
            )
    state = _reference_state_dict(source)
    target = build_efficientnet_lite0((32, 32, 3), weights=None, name="target")
    x = rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    expected = source(x, training=False).numpy()
    assert expected.std() > 0 and not np.allclose(target(x, training=False).numpy(), expected)

    loaded = load_lite0_weights(target, _write_pth(state, tmp_path, "lite0"))
    assert loaded == len([n for n in state if n.endswith(".weight") and "_bn" not in n]) * 2
    np.testing.assert_allclose(target(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-5)
    by_path = build_efficientnet_lite0((32, 32, 3), weights=tmp_path / "lite0.pth", name="by_path")
    np.testing.assert_allclose(by_path(x, training=False).numpy(), expected, rtol=1e-5, atol=1e-5)

    missing = dict(state)
    del missing["_blocks.7._bn1.running_var"]
    with pytest.raises(AgrilandError, match=r"no weights for _blocks\.7\._bn1"):
        load_lite0_weights(target, _write_pth(missing, tmp_path, "missing"))
    swapped = {**state, "_conv_head.weight": state["_conv_head.weight"].transpose(1, 0, 2, 3)}
    with pytest.raises(AgrilandError, match="_conv_head has shapes .* layer top_conv expects"):
        load_lite0_weights(target, _write_pth(swapped, tmp_path, "swapped"))


@pytest.mark.slow
def test_pooled_features_match_the_reference_onnx() -> None:
    """The registry package's ImageNet weights against the reference ONNX export (development machines only)."""
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
