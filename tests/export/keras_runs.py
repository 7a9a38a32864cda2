"""Tiny trained tf_keras DEC and U-Net stand-ins with the training contract, saved as fake run folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import export  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

TILE = 64
N_CLUSTERS = 3
EMBED = 8
N_TILES = 24


def make_tiles(folder: Path, n: int = N_TILES, tile: int = TILE, seed: int = 0) -> np.ndarray:
    """Write `n` PNG tiles (smooth colour gradients plus noise) into `folder`; return them."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:tile, 0:tile] / tile
    tiles = []
    for i in range(n):
        base = rng.uniform(40, 200, size=3)
        slope = rng.uniform(-80, 80, size=(2, 3))
        img = base + xx[..., None] * slope[0] + yy[..., None] * slope[1] + rng.normal(0, 12, (tile, tile, 3))
        img = np.clip(img, 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"tile_{i:03d}.png")
        tiles.append(img)
    return np.stack(tiles)


def _build(name: str, tile: int):
    import tf_keras

    from training.clustering_layer import ClusteringLayer
    from training.preprocessing import ImagePreprocessing

    tf_keras.utils.set_random_seed(0)
    image = tf_keras.Input((tile, tile, 3), dtype="uint8", name="image")
    x = ImagePreprocessing("caffe" if name == "dec" else "tf")(image)
    h = tf_keras.layers.Conv2D(8, 3, padding="same")(x)
    h = tf_keras.layers.ReLU()(tf_keras.layers.BatchNormalization()(h))
    if name == "unet":
        d = tf_keras.layers.MaxPooling2D()(h)
        d = tf_keras.layers.Conv2D(16, 3, padding="same", activation="relu")(d)
        u = tf_keras.layers.UpSampling2D()(d)
        h = tf_keras.layers.Concatenate()([u, h])
        h = tf_keras.layers.Conv2D(8, 3, padding="same", activation="relu")(h)
        mask = tf_keras.layers.Conv2D(1, 1, activation="sigmoid", name="mask")(h)
        return tf_keras.Model(image, mask, name="unet")
    h = tf_keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(h)
    embedding = tf_keras.layers.Dense(EMBED, name="embedding")(tf_keras.layers.GlobalAveragePooling2D()(h))
    q = ClusteringLayer(N_CLUSTERS, name="q")(embedding)
    return tf_keras.Model(image, [embedding, q], name="dec")


def make_run(root: Path, name: str, tile: int = TILE, data: Path | None = None) -> Path:
    """Train a tiny model of kind `name` for one step on PNG tiles and write a run folder like training does."""
    data = data or root / "data" / "tiles"
    images = make_tiles(data, tile=tile) if not data.exists() else None
    if images is None:
        from training.data import load_tiles

        images = load_tiles(data, tile).images
    model = _build(name, tile)
    if name == "unet":
        target = (images[..., :1].astype(np.float32).mean(-1, keepdims=True) > 120).astype(np.float32)
        model.compile("adam", "binary_crossentropy")
        # enough steps that the masks are decisive (probabilities far from the threshold), as trained ones are
        model.fit(images, target, batch_size=8, epochs=20, verbose=0)
    else:
        # decisive assignments (brightness bands), as a trained DEC's are: near-uniform q would let int8's
        # rounding flip the argmax of tiles that no real model leaves undecided
        brightness = images.reshape(len(images), -1).mean(axis=1)
        bands = np.digitize(brightness, np.quantile(brightness, np.linspace(0, 1, N_CLUSTERS + 1)[1:-1]))
        q = np.full((len(images), N_CLUSTERS), 0.02, np.float32)
        q[np.arange(len(images)), bands] = 1.0 - 0.02 * (N_CLUSTERS - 1)
        model.compile("adam", ["mse", "kld"], loss_weights=[0.0, 1.0])
        model.fit(images, [np.zeros((len(images), EMBED), np.float32), q], batch_size=8, epochs=20, verbose=0)
    run = root / "runs" / name
    run.mkdir(parents=True, exist_ok=True)
    import tf_keras

    tf_keras.Model(model.inputs, model.outputs, name=model.name).save(run / "inference_model.keras")
    summary = {
        "task": "clustering" if name == "dec" else "segmentation",
        "tile_size": tile,
        "data": {"source": str(data), "n_tiles": int(len(images))},
        "metrics": {"acc": 0.5} if name == "dec" else {"iou": 0.5, "f1": 0.6},
        "config": {"tiny": True},
    }
    if name == "unet":
        summary["threshold"] = 0.5
    (run / "training_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    if name == "dec":
        (run / "cluster_names.json").write_text(json.dumps({"0": "arable", "2": "forest"}), encoding="utf-8")
    return run
