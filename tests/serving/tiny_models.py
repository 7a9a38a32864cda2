"""Build tiny tf_keras DEC and U-Net stand-ins, convert them with tf2onnx and write artifact folders.

Run as a script (`python tiny_models.py OUT_DIR`) so TensorFlow lives only in that subprocess.
Temporary: the lead's `exported_models` fixture (real trained models) replaces it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

TILE = 64
N_CLUSTERS = 4
EMBED = 8


def _build(out: Path) -> None:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import onnx
    import tensorflow as tf
    import tf2onnx
    import tf_keras as keras

    from serving.manifest import Manifest, TensorSpec, sha256_file, write_manifest

    keras.utils.set_random_seed(0)

    class SoftAssign(keras.layers.Layer):
        """Student-t soft assignment to learned centroids (DEC's q)."""

        def build(self, input_shape: tf.TensorShape) -> None:
            self.centroids = self.add_weight(name="centroids", shape=(N_CLUSTERS, EMBED), initializer="glorot_uniform")

        def call(self, z: tf.Tensor) -> tf.Tensor:
            dist = tf.reduce_sum(tf.square(tf.expand_dims(z, 1) - self.centroids), axis=2)
            q = 1.0 / (1.0 + dist)
            return q / tf.reduce_sum(q, axis=1, keepdims=True)

    image = keras.Input((TILE, TILE, 3), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1.0 / 255.0)(keras.layers.Lambda(lambda t: tf.cast(t, tf.float32))(image))
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    h = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(h)
    unet = keras.Model(image, keras.layers.Conv2D(1, 1, activation="sigmoid", name="mask")(h))
    g = keras.layers.Conv2D(8, 3, strides=4, activation="relu")(x)
    embedding = keras.layers.Dense(EMBED, name="embedding")(keras.layers.GlobalAveragePooling2D()(g))
    dec = keras.Model(image, [embedding, SoftAssign(name="q")(embedding)])

    signature = (tf.TensorSpec((None, TILE, TILE, 3), tf.uint8, name="image"),)
    specs = {
        "unet": ("segmentation", unet, [TensorSpec(name="mask", dtype="float32", shape=[None, TILE, TILE, 1])]),
        "dec": (
            "clustering",
            dec,
            [
                TensorSpec(name="embedding", dtype="float32", shape=[None, EMBED]),
                TensorSpec(name="q", dtype="float32", shape=[None, N_CLUSTERS]),
            ],
        ),
    }
    for name, (task, model, outputs) in specs.items():
        folder = out / name / "fp32"
        folder.mkdir(parents=True)
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=17)
        # give graph outputs the contract's names, whatever tf2onnx called them
        for graph_output, spec in zip(proto.graph.output, outputs):
            old = graph_output.name
            for node in proto.graph.node:
                node.output[:] = [spec.name if o == old else o for o in node.output]
                node.input[:] = [spec.name if i == old else i for i in node.input]
            graph_output.name = spec.name
        onnx.save(proto, folder / "model.onnx")
        manifest = Manifest(
            name=name,
            task=task,
            version="tiny-test",
            tile_size=TILE,
            input=TensorSpec(name="image", dtype="uint8", shape=[None, TILE, TILE, 3]),
            outputs=outputs,
            cluster_names={"0": "arable", "1": "forest", "2": "water"} if name == "dec" else {},
            threshold=0.5,
            onnx_sha256=sha256_file(folder / "model.onnx"),
        )
        write_manifest(folder, manifest)
        _int8_variant(folder, manifest)


def _int8_variant(fp32: Path, manifest: object) -> None:
    """A real int8 variant next to fp32 (ONNX Runtime dynamic quantization), as the real export writes."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from serving.manifest import sha256_file, write_manifest

    folder = fp32.parent / "int8"
    folder.mkdir()
    quantize_dynamic(fp32 / "model.onnx", folder / "model.onnx", weight_type=QuantType.QUInt8)
    update = {"variant": "int8", "onnx_sha256": sha256_file(folder / "model.onnx")}
    write_manifest(folder, manifest.model_copy(update=update))  # type: ignore[attr-defined]


def main(out: str) -> None:
    target = Path(out)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        _build(Path(tmp) / "models")
        (Path(tmp) / "models").rename(target)


if __name__ == "__main__":
    main(sys.argv[1])
