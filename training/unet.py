"""U-Net builders: segmentation-models U-Net (InceptionV3 / ResNet50 encoder) or a plain untrained encoder.

Every model built here has the artifact contract of DESIGN.md: one input `image` (uint8 `[None, T, T, 3]`)
followed by `training.preprocessing.ImagePreprocessing` in the graph, a "core" network that outputs logits,
and one output `mask` (float32 `[N, T, T, 1]`, sigmoid probability of arable land).

No ImageNet weights are downloaded (there is no internet at run time): encoders start from random weights
unless `encoder_weights` names a local Keras weights file (e.g. keras-applications'
`inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`); which one was used is logged.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import tf_keras

import training  # noqa: F401  (sets TF_USE_LEGACY_KERAS / SM_FRAMEWORK before TF loads)
from contract.errors import AgrilandError
from training.preprocessing import ImagePreprocessing, PreprocessMode

log = logging.getLogger(__name__)

Arch = Literal["unet", "handbuilt"]
Encoder = Literal["efficientnet-lite0", "inceptionv3", "resnet50", "vgg16", "none"]
ARCHS: tuple[Arch, ...] = ("unet", "handbuilt")
ENCODERS: tuple[Encoder, ...] = ("efficientnet-lite0", "inceptionv3", "resnet50", "vgg16", "none")
ENCODER_ALIASES: dict[str, Encoder] = {"untrained": "none", "lite0": "efficientnet-lite0"}
PREPROCESSING: dict[str, PreprocessMode] = {
    "efficientnet-lite0": "tf",
    "inceptionv3": "tf",
    "resnet50": "caffe",
    "vgg16": "caffe",
    "none": "unit",
}
# Encoders whose ImageNet weights ship in an installed package (the others start from random weights offline).
PRETRAINED_ENCODERS: tuple[str, ...] = ("efficientnet-lite0",)
LITE0_DECODER_FILTERS: tuple[int, ...] = (128, 64, 32, 16, 16)
CORE_NAME = "segmentation_core"
# Name of the deepest encoder layer of each core (segmentation-models InceptionV3, ResNet50, plain U-Net).
ENCODER_OUTPUTS = ("mixed10", "relu1", "block5_pool", "top_activation", "encoder_bottom_relu")
MIN_TILE = 64


def normalize_encoder(name: str) -> Encoder:
    """`untrained` is accepted as an alias of `none`; AgrilandError for an unknown encoder."""
    name = ENCODER_ALIASES.get(name, name)
    if name not in ENCODERS:
        raise AgrilandError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODERS)} (or 'untrained')")
    return name  # type: ignore[return-value]


def check_tile_size(tile_size: int) -> None:
    """U-Net encoders halve the resolution five times, so H = W must be a multiple of 32 (and >= 64)."""
    if int(tile_size) != tile_size or tile_size % 32 or tile_size < MIN_TILE:
        raise AgrilandError(
            f"tile size {tile_size} is not supported: the U-Net needs H and W divisible by 32 and at least "
            f"{MIN_TILE} px (e.g. 64, 96, 128, 256)"
        )


def get_backbone(encoder: Encoder) -> tf_keras.Model:
    """A randomly initialised segmentation-models backbone on a `(None, None, 3)` float input.

    segmentation-models' InceptionV3 uses `same` padding, so every stage is exactly half the previous one
    and tiles of 64 px work, although keras.applications refuses InceptionV3 inputs under 75 px (that
    check only runs for a fixed input shape, so the backbone is built shape-free and fixed by the caller).
    """
    import segmentation_models as sm

    build = sm.inject_global_submodules(sm.Backbones.get_backbone)
    return build(encoder, input_shape=(None, None, 3), weights=None, include_top=False)


def wrap_core(core: tf_keras.Model, tile_size: int, encoder: Encoder, name: str) -> tf_keras.Model:
    """uint8 `image` -> ImagePreprocessing -> core (logits) -> sigmoid `mask`."""
    check_tile_size(tile_size)
    image = tf_keras.Input((tile_size, tile_size, 3), dtype="uint8", name="image")
    x = ImagePreprocessing(PREPROCESSING[encoder], name="preprocess")(image)
    logits = core(x)
    mask = tf_keras.layers.Activation("sigmoid", dtype="float32", name="mask")(logits)
    return tf_keras.Model(image, mask, name=name)


def _sm_unet_core(encoder: Encoder) -> tf_keras.Model:
    import segmentation_models as sm

    net = sm.Unet(encoder, input_shape=(None, None, 3), classes=1, activation="linear", encoder_weights=None)
    return tf_keras.Model(net.input, net.output, name=CORE_NAME)


def lite0_unet_core(
    weights: str | Path | None = "imagenet", filters: tuple[int, ...] = LITE0_DECODER_FILTERS, classes: int = 1
) -> tf_keras.Model:
    """EfficientNet-Lite0 encoder (ImageNet weights from the installed package) + segmentation-models' U-Net
    decoder blocks (upsample x2, concatenate the skip, two 3x3 conv-BN-ReLU) on the 1/16 .. 1/2 skips."""
    from segmentation_models.models import unet as sm_unet

    from training.efficientnet_lite import SKIP_LAYERS, build_efficientnet_lite0

    # segmentation-models binds its blocks to a Keras flavour at model build time; bind them to tf_keras here.
    sm_unet.backend, sm_unet.layers = tf_keras.backend, tf_keras.layers
    sm_unet.models, sm_unet.keras_utils = tf_keras.models, tf_keras.utils
    encoder = build_efficientnet_lite0((None, None, 3), weights=weights)
    skips = [encoder.get_layer(name).output for name in reversed(SKIP_LAYERS[:-1])]
    x = encoder.get_layer(SKIP_LAYERS[-1]).output
    for stage, width in enumerate(filters):
        skip = skips[stage] if stage < len(skips) else None
        x = sm_unet.DecoderUpsamplingX2Block(width, stage, use_batchnorm=True)(x, skip)
    logits = tf_keras.layers.Conv2D(classes, 3, padding="same", name="final_conv")(x)
    return tf_keras.Model(encoder.input, logits, name=CORE_NAME)


def _conv_bn_relu(x, filters: int, name: str):
    x = tf_keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = tf_keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return tf_keras.layers.Activation("relu", name=f"{name}_relu")(x)


def plain_unet_core(filters: tuple[int, ...] = (16, 32, 64, 128, 256), classes: int = 1) -> tf_keras.Model:
    """The classic U-Net (Ronneberger et al.) with no pretrained backbone: two 3x3 convs per level,
    five 2x2 max-pools down to 1/32, upsampling + concatenation skips back up. Small and fast on a CPU."""
    inputs = tf_keras.Input((None, None, 3))
    x, skips = inputs, []
    for level, width in enumerate(filters):
        x = _conv_bn_relu(x, width, f"encoder_block{level}a")
        x = _conv_bn_relu(x, width, f"encoder_block{level}b")
        skips.append(x)
        x = tf_keras.layers.MaxPooling2D(2, name=f"encoder_pool{level}")(x)
    x = _conv_bn_relu(x, filters[-1] * 2, "encoder_bottom")
    for level in reversed(range(len(filters))):
        x = tf_keras.layers.UpSampling2D(2, name=f"decoder_stage{level}_up")(x)
        x = tf_keras.layers.Concatenate(name=f"decoder_stage{level}_concat")([x, skips[level]])
        x = _conv_bn_relu(x, filters[level], f"decoder_stage{level}a")
        x = _conv_bn_relu(x, filters[level], f"decoder_stage{level}b")
    logits = tf_keras.layers.Conv2D(classes, 1, name="final_conv")(x)
    return tf_keras.Model(inputs, logits, name=CORE_NAME)


def build_unet(
    tile_size: int,
    encoder: str = "inceptionv3",
    arch: Arch = "unet",
    encoder_weights: Path | str | None = None,
    decoder_filters: tuple[int, ...] = LITE0_DECODER_FILTERS,
) -> tf_keras.Model:
    """The segmentation model for `arch` ("unet": segmentation-models U-Net, or the hand-built variant);
    `decoder_filters` sets the EfficientNet-Lite0 U-Net's decoder widths."""
    check_tile_size(tile_size)
    enc = normalize_encoder(encoder)
    if arch == "handbuilt":
        from training.unet_handbuilt import build_handbuilt_core

        if enc != "inceptionv3":
            raise AgrilandError(f"the hand-built U-Net has an InceptionV3 encoder; got encoder {encoder!r}")
        core = build_handbuilt_core()
    elif arch == "unet" and enc == "efficientnet-lite0":
        weights = encoder_weights or "imagenet"
        core = lite0_unet_core(weights, filters=tuple(decoder_filters))
        encoder_weights = None  # loaded by the builder
    elif arch == "unet":
        core = plain_unet_core() if enc == "none" else _sm_unet_core(enc)
    else:
        raise AgrilandError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
    model = wrap_core(core, tile_size, enc, name=f"{arch}_{enc}")
    if encoder_weights:
        load_encoder_weights(model, enc, encoder_weights)
    elif enc not in PRETRAINED_ENCODERS:
        log.info(
            "encoder %s: random initialisation (no --encoder-weights given; ImageNet weights are not "
            "downloaded offline)",
            enc,
        )
    return model


def set_batchnorm_momentum(model: tf_keras.Model, momentum: float) -> int:
    """Set the moving-average momentum of every BatchNormalization layer (call before compiling).

    Keras' 0.99 needs several hundred steps before the moving statistics that inference uses match the
    batch statistics of training; with small data sets (a few hundred tiles, a few epochs) validation
    predictions collapse until then. 0.9 catches up within an epoch. Returns the number of layers set."""
    changed = 0
    layers = list(model.layers) + list(core_of(model).layers)
    for layer in layers:
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            layer.momentum = float(momentum)
            changed += 1
    return changed


def core_of(model: tf_keras.Model) -> tf_keras.Model:
    """The nested core network (preprocessed input -> logits) of a model built here."""
    try:
        return model.get_layer(CORE_NAME)
    except ValueError as err:
        raise AgrilandError(f"model {model.name!r} has no {CORE_NAME!r} layer: not built by training.unet") from err


def encoder_view(model: tf_keras.Model) -> tf_keras.Model:
    """A Model sharing the core's encoder layers (input -> deepest encoder feature map).

    Layers are shared, not copied: loading weights into the view or freezing its layers changes the model."""
    core = core_of(model)
    for name in ENCODER_OUTPUTS:
        try:
            return tf_keras.Model(core.input, core.get_layer(name).output, name="encoder")
        except ValueError:
            continue
    raise AgrilandError(f"cannot find the encoder output ({', '.join(ENCODER_OUTPUTS)}) in {model.name!r}")


def set_encoder_trainable(model: tf_keras.Model, trainable: bool) -> int:
    """Freeze or unfreeze the encoder (BatchNorm layers stay trainable, as segmentation-models does).

    Recompile the model afterwards. Returns the number of layers changed."""
    changed = 0
    for layer in encoder_view(model).layers:
        if isinstance(layer, (tf_keras.layers.BatchNormalization, tf_keras.layers.InputLayer)):
            continue
        if layer.trainable != trainable:
            layer.trainable = trainable
            changed += 1
    return changed


def load_encoder_weights(model: tf_keras.Model, encoder: Encoder, path: Path | str) -> int:
    """Load a local backbone weights file (keras-applications / classification-models layout, no top,
    e.g. `inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`) into the model's encoder.

    Layers are matched in topological order (HDF5 weights) or by name, as `Model.load_weights` does.
    Returns the number of encoder layers that hold weights."""
    path = Path(path)
    if encoder == "none":
        raise AgrilandError("--encoder-weights needs a backbone encoder (inceptionv3 or resnet50), not 'none'")
    if not path.is_file():
        raise AgrilandError(f"encoder weights file not found: {path}")
    view = encoder_view(model)
    try:
        view.load_weights(str(path))
    except (OSError, ValueError, KeyError) as err:
        raise AgrilandError(f"cannot load {encoder} encoder weights from {path}: {err}") from err
    loaded = sum(1 for layer in view.layers if layer.weights)
    log.info("encoder %s: loaded weights of %d layers from %s", encoder, loaded, path)
    return loaded
