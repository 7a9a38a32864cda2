"""The workflow's hand-built U-Net: an InceptionV3 encoder joined by concatenation skips to a decoder of
Conv2DTranspose + Conv2D pairs (per-skip kernel sizes, BatchNorm, LeakyReLU, same padding), 512-256-128-64-1.

The encoder is segmentation-models' InceptionV3 (keras-applications' layers with `same` padding), so each
stage is exactly half the size of the one before and the skips line up for any tile size divisible by 32
(64, 128, 256, ...). Skips are taken where segmentation-models takes them: mixed7 (1/16), mixed2 (1/8) and
the stem activations at 1/4 and 1/2 (layer indices 228, 86, 16, 9).

Each decoder stage: Conv2DTranspose (stride 2, its own kernel size) -> BatchNorm -> LeakyReLU ->
concatenate the skip -> Conv2D (its own kernel size) -> BatchNorm -> LeakyReLU. A last Conv2DTranspose with
one filter brings the 1/2 map back to full resolution as logits.
"""

from __future__ import annotations

from pathlib import Path

import tf_keras

from contract.errors import AgrilandError
from training.unet import CORE_NAME, build_unet, get_backbone

SKIP_LAYERS: tuple[int, ...] = (228, 86, 16, 9)  # mixed7 (1/16), mixed2 (1/8), stem 1/4, stem 1/2
DECODER_FILTERS: tuple[int, ...] = (512, 256, 128, 64)
# One kernel size per decoder stage, i.e. per skip connection; the last transpose kernel is the output's.
TRANSPOSE_KERNELS: tuple[int, ...] = (3, 3, 3, 3, 3)
CONV_KERNELS: tuple[int, ...] = (3, 3, 3, 3)
LEAKY_SLOPE = 0.1


def _bn_leaky(x, name: str, slope: float):
    x = tf_keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return tf_keras.layers.LeakyReLU(alpha=slope, name=f"{name}_leaky")(x)


def build_handbuilt_core(
    filters: tuple[int, ...] = DECODER_FILTERS,
    transpose_kernels: tuple[int, ...] = TRANSPOSE_KERNELS,
    conv_kernels: tuple[int, ...] = CONV_KERNELS,
    leaky_slope: float = LEAKY_SLOPE,
) -> tf_keras.Model:
    """InceptionV3 encoder + hand-built decoder on a `(None, None, 3)` preprocessed input, logits out."""
    stages = len(SKIP_LAYERS)
    if len(filters) != stages or len(conv_kernels) != stages or len(transpose_kernels) != stages + 1:
        raise AgrilandError(
            f"hand-built decoder needs {stages} filters, {stages} conv kernels and {stages + 1} transpose kernels; "
            f"got {len(filters)}, {len(conv_kernels)}, {len(transpose_kernels)}"
        )
    backbone = get_backbone("inceptionv3")
    skips = [backbone.get_layer(index=index).output for index in SKIP_LAYERS]
    x = backbone.output  # mixed10, 1/32
    for stage, (width, skip, k_t, k_c) in enumerate(zip(filters, skips, transpose_kernels, conv_kernels)):
        name = f"decoder_stage{stage}"
        x = tf_keras.layers.Conv2DTranspose(
            width, k_t, strides=2, padding="same", use_bias=False, name=f"{name}_transpose"
        )(x)
        x = _bn_leaky(x, f"{name}_transpose", leaky_slope)
        x = tf_keras.layers.Concatenate(name=f"{name}_concat")([x, skip])
        x = tf_keras.layers.Conv2D(width, k_c, padding="same", use_bias=False, name=f"{name}_conv")(x)
        x = _bn_leaky(x, f"{name}_conv", leaky_slope)
    logits = tf_keras.layers.Conv2DTranspose(1, transpose_kernels[-1], strides=2, padding="same", name="final_conv")(x)
    return tf_keras.Model(backbone.input, logits, name=CORE_NAME)


def build_handbuilt_unet(tile_size: int, encoder_weights: Path | str | None = None) -> tf_keras.Model:
    """The full contract model (uint8 `image` in, sigmoid `mask` out) with the hand-built decoder."""
    return build_unet(tile_size, encoder="inceptionv3", arch="handbuilt", encoder_weights=encoder_weights)
