"""Builds a tiny real exported U-Net artifact (tf_keras -> tf2onnx) for scene tests; swap for `exported_models`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from contract.radiometry import Radiometry

TILE = 64


def build_unet_artifact(models_dir: Path, variant: str = "fp32", tile: int = TILE) -> Path:
    """Write `models_dir/unet/<variant>/{model.onnx,manifest.json}` and return the folder.

    The graph is uint8 `image` [None, T, T, 3] -> two random 3x3 convs -> 1x1 sigmoid `mask` [None, T, T, 1].
    The 1x1 head is set by hand to a greenness score, sigmoid(20 * (G - (R + B) / 2) - 1), plus the conv
    features at zero weight, so green fields come out arable while the graph stays a real CNN.
    """
    import tensorflow as tf
    import tf2onnx
    import tf_keras

    import training  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)
    from contract.artifacts import sha256_file
    from contract.manifest import Manifest, TensorSpec, write_manifest
    from training.preprocessing import ImagePreprocessing

    tf_keras.utils.set_random_seed(0)
    image = tf_keras.Input(shape=(tile, tile, 3), dtype="uint8", name="image")
    x = ImagePreprocessing("unit")(image)
    f = tf_keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    f = tf_keras.layers.Conv2D(8, 3, padding="same", activation="relu")(f)
    h = tf_keras.layers.Concatenate()([x, f])
    head = tf_keras.layers.Conv2D(1, 1, activation="sigmoid", name="mask")
    mask = head(h)
    model = tf_keras.Model(image, mask)
    kernel = np.zeros((1, 1, 11, 1), dtype=np.float32)
    kernel[0, 0, :3, 0] = [-10.0, 20.0, -10.0]
    head.set_weights([kernel, np.array([-1.0], dtype=np.float32)])

    folder = Path(models_dir) / "unet" / variant
    folder.mkdir(parents=True, exist_ok=True)
    spec = [tf.TensorSpec([None, tile, tile, 3], tf.uint8, name="image")]
    onnx_model, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=17)
    with open(folder / "model.onnx", "wb") as handle:
        handle.write(onnx_model.SerializeToString())
    manifest = Manifest(
        radiometry=Radiometry(),
        name="unet",
        task="segmentation",
        version="scene-test",
        variant=variant,
        tile_size=tile,
        input=TensorSpec(name="image", dtype="uint8", shape=[None, tile, tile, 3]),
        outputs=[TensorSpec(name=onnx_model.graph.output[0].name, dtype="float32", shape=[None, tile, tile, 1])],
        threshold=0.5,
        onnx_sha256=sha256_file(folder / "model.onnx"),
    )
    write_manifest(folder, manifest)
    return folder
