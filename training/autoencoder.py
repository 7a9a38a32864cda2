"""The convolutional autoencoder behind DEC: ResNet-50 (or VGG16) encoder, dense embedding, upsampling decoder."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

from contract.atomic import write_text_atomic
from contract.errors import AgrilandError
from training.dec_config import DecConfig
from training.preprocessing import ImagePreprocessing

log = logging.getLogger(__name__)

DECODER_FILTERS: tuple[int, ...] = (512, 256, 128, 64, 3)
AE_WEIGHTS = "ae_weights.h5"  # legacy HDF5 (matched by layer order, not auto-generated names)
AE_STATE = "ae_state.json"
# BatchNorm moving-average momentum. Keras' 0.99 leaves the moving statistics half at their initial values
# after a few dozen steps, so short CPU runs embed tiles very differently at inference than in training.
BN_MOMENTUM = 0.9
# Unit-length pooled features give embeddings so close together that the Student-t assignment is nearly
# uniform and DEC's target pulls every centroid together (EuroSAT K=10: ACC 0.68 -> 0.39). Scaled by 10,
# DEC improves on its k-means start instead (0.696 -> 0.707).
FEATURE_SCALE = 10.0


@dataclass
class Autoencoder:
    """The three views of one set of weights: encoder (image -> embedding), decoder, and the full autoencoder."""

    encoder: tf_keras.Model
    decoder: tf_keras.Model
    autoencoder: tf_keras.Model


def _backbone(config: DecConfig) -> tf_keras.Model:
    """ResNet50/VGG16 without its top; ImageNet-style weights only from a local file (no downloads here)."""
    weights = config.encoder_weights
    if weights is not None and not Path(weights).is_file():
        raise AgrilandError(f"--encoder-weights: no weights file at {weights}")
    shape = (config.tile_size, config.tile_size, 3)
    factory = {"resnet50": tf_keras.applications.ResNet50, "vgg16": tf_keras.applications.VGG16}[config.backbone]
    try:
        model = factory(include_top=False, weights=weights, input_shape=shape)
    except ValueError as err:
        raise AgrilandError(f"cannot load encoder weights {weights} into {config.backbone}: {err}") from err
    for layer in model.layers:
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    if weights is None:
        log.info("encoder %s: random initialisation (no --encoder-weights given)", config.backbone)
    else:
        log.info("encoder %s: weights loaded from %s", config.backbone, weights)
    return model


def build_encoder(config: DecConfig) -> tf_keras.Model:
    """uint8 `image` [N,T,T,3] -> caffe preprocessing -> backbone -> flatten -> wide Dense -> `embedding` [N,D]."""
    image = tf_keras.Input(shape=(config.tile_size, config.tile_size, 3), dtype="uint8", name="image")
    x = ImagePreprocessing("caffe", name="preprocess")(image)
    x = _backbone(config)(x)
    if config.pooling == "avg":
        x = tf_keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    else:
        x = tf_keras.layers.Flatten(name="flatten")(x)
    x = tf_keras.layers.Dense(
        config.hidden_units, activation="relu", kernel_initializer="glorot_uniform", name="hidden"
    )(x)
    z = tf_keras.layers.Dense(config.embedding_dim, kernel_initializer="glorot_uniform", name="embedding")(x)
    return tf_keras.Model(image, z, name="encoder")


def build_decoder(config: DecConfig) -> tf_keras.Model:
    """embedding -> Dense -> reshape [T/32, T/32, 512] -> five (Conv2DTranspose x2 + Conv2D) pairs -> [N,T,T,3].

    The pairs' Conv2D layers have 512-256-128-64-3 feature maps; the last one is the sigmoid output (the
    last transposed conv keeps 32 maps so the full-resolution stage is not squeezed through 3 channels).
    """
    side = config.tile_size // 32
    z = tf_keras.Input(shape=(config.embedding_dim,), name="embedding_in")
    x = tf_keras.layers.Dense(config.hidden_units, name="dec_hidden")(z)
    x = tf_keras.layers.LeakyReLU(0.2, name="dec_hidden_act")(x)
    x = tf_keras.layers.Dense(side * side * DECODER_FILTERS[0], name="dec_project")(x)
    x = tf_keras.layers.LeakyReLU(0.2, name="dec_project_act")(x)
    x = tf_keras.layers.Reshape((side, side, DECODER_FILTERS[0]), name="dec_reshape")(x)
    for i, filters in enumerate(DECODER_FILTERS):
        last = i == len(DECODER_FILTERS) - 1
        x = tf_keras.layers.Conv2DTranspose(32 if last else filters, 3, strides=2, padding="same", name=f"dec_up{i}")(x)
        x = tf_keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"dec_up{i}_bn")(x)
        x = tf_keras.layers.LeakyReLU(0.2, name=f"dec_up{i}_act")(x)
        x = tf_keras.layers.Conv2D(
            filters, 3, padding="same", name=f"dec_conv{i}", activation="sigmoid" if last else None
        )(x)
        if not last:
            x = tf_keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"dec_conv{i}_bn")(x)
            x = tf_keras.layers.LeakyReLU(0.2, name=f"dec_conv{i}_act")(x)
    return tf_keras.Model(z, x, name="decoder")


def build_autoencoder(config: DecConfig) -> Autoencoder:
    """Encoder + decoder sharing weights with the full `image -> reconstruction` model."""
    tf_keras.utils.set_random_seed(config.seed)
    encoder = build_encoder(config)
    decoder = build_decoder(config)
    reconstruction = tf_keras.layers.Activation("linear", name="reconstruction")(decoder(encoder.output))
    autoencoder = tf_keras.Model(encoder.input, reconstruction, name="autoencoder")
    return Autoencoder(encoder=encoder, decoder=decoder, autoencoder=autoencoder)


def reconstruction_dataset(images: np.ndarray, config: DecConfig, augment: bool) -> tf.data.Dataset:
    """(uint8 tile, tile / 255) batches from the shared data pipeline (augmented when asked)."""
    from training.tf_dataset import make_tf_dataset

    ds = make_tf_dataset(images, batch_size=config.ae_batch_size, shuffle=True, augment=augment, seed=config.seed)
    return ds.map(lambda x: (x, tf.cast(x, tf.float32) / 255.0), num_parallel_calls=tf.data.AUTOTUNE)


class _EpochState(tf_keras.callbacks.Callback):
    """Records how many epochs are finished next to the weights checkpoint, so pretraining can resume."""

    def __init__(self, path: Path, offset: int) -> None:
        super().__init__()
        self.path = path
        self.offset = offset

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        state = {"epochs_done": epoch + 1, "loss": float((logs or {}).get("loss", float("nan")))}
        write_text_atomic(self.path, json.dumps(state))


def resume_epochs(model: Autoencoder, checkpoint_dir: Path, resume: bool) -> int:
    """Epochs already done (weights reloaded) when resuming from `checkpoint_dir`; 0 for a fresh start."""
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    weights_path, state_path = checkpoint_dir / AE_WEIGHTS, checkpoint_dir / AE_STATE
    if not (resume and weights_path.is_file() and state_path.is_file()):
        return 0
    model.autoencoder.load_weights(weights_path)
    done = int(json.loads(state_path.read_text(encoding="utf-8"))["epochs_done"])
    log.info("autoencoder: resumed from %s after %d epoch(s)", weights_path, done)
    return done


def pretraining_callbacks(
    checkpoint_dir: Path, config: DecConfig, initial_epoch: int, min_delta: float
) -> list[tf_keras.callbacks.Callback]:
    """Checkpoint each epoch (weights + epochs done, for resume) and stop early on `ae_patience`."""
    callbacks: list[tf_keras.callbacks.Callback] = [
        tf_keras.callbacks.ModelCheckpoint(str(checkpoint_dir / AE_WEIGHTS), save_weights_only=True),
        _EpochState(checkpoint_dir / AE_STATE, offset=initial_epoch),
    ]
    if config.ae_patience > 0:
        callbacks.append(
            tf_keras.callbacks.EarlyStopping(
                monitor="loss", patience=config.ae_patience, min_delta=min_delta, restore_best_weights=True
            )
        )
    return callbacks


def pretrain(
    model: Autoencoder,
    images: np.ndarray,
    config: DecConfig,
    checkpoint_dir: Path,
    resume: bool = False,
    verbose: int = 1,
) -> dict[str, float]:
    """Adam + MSE against image/255 with checkpoints and early stopping; returns {'ae_loss', 'ae_epochs'}."""
    initial_epoch = resume_epochs(model, checkpoint_dir, resume)
    if not config.train_backbone:
        freeze_backbone(model.encoder, images, batch_size=max(config.ae_batch_size, 64))
    model.autoencoder.compile(optimizer=tf_keras.optimizers.Adam(config.ae_learning_rate), loss="mse")
    if initial_epoch >= config.ae_epochs:
        log.info("autoencoder: pretraining already done (%d epochs)", initial_epoch)
        recalibrate_batchnorm(model.encoder, images, batch_size=max(config.ae_batch_size, 64))
        return {"ae_epochs": float(initial_epoch)}
    callbacks = pretraining_callbacks(checkpoint_dir, config, initial_epoch, min_delta=1e-5)
    log.info(
        "autoencoder: pretraining %s on %d tiles of %d px for up to %d epochs",
        config.backbone,
        len(images),
        config.tile_size,
        config.ae_epochs,
    )
    history = model.autoencoder.fit(
        reconstruction_dataset(images, config, config.augment),
        epochs=config.ae_epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        verbose=verbose,
    )
    recalibrate_batchnorm(model.encoder, images, batch_size=max(config.ae_batch_size, 64))
    losses = history.history.get("loss", [])
    done = initial_epoch + len(losses)
    return {"ae_loss": float(min(losses)) if losses else float("nan"), "ae_epochs": float(done)}


def freeze_backbone(encoder: tf_keras.Model, images: np.ndarray, batch_size: int = 64) -> None:
    """Estimate the backbone's BatchNorm statistics on the tiles, then freeze it (dense layers keep training).

    Measured on the synthetic tiles: a random-init ResNet-50 embeds them far more usefully (k-means ACC ~0.6)
    than the same network after a few CPU epochs of end-to-end pretraining (~0.2), which collapses it.
    """
    backbone = next(layer for layer in encoder.layers if isinstance(layer, tf_keras.Model))
    if backbone.trainable:
        recalibrate_batchnorm(encoder, images, batch_size=batch_size)
        backbone.trainable = False
        log.info("encoder %s: frozen after BatchNorm calibration (train_backbone=False)", backbone.name)


def recalibrate_batchnorm(model: tf_keras.Model, images: np.ndarray, batch_size: int = 64, passes: int = 2) -> None:
    """Re-estimate BatchNorm moving statistics on the (unaugmented) tiles with forward passes in training mode.

    After a short pretraining the moving averages still lag behind the weights and were gathered on augmented
    batches; inference-mode embeddings then cluster far worse than training-mode ones. No weights change.
    """
    forward = tf.function(lambda x: model(x, training=True))
    for _ in range(passes):
        for start in range(0, len(images), batch_size):
            forward(tf.constant(images[start : start + batch_size]))


def embed(encoder: tf_keras.Model, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Embeddings [N, D] for uint8 tiles, in batches."""
    return np.asarray(encoder.predict(images, batch_size=batch_size, verbose=0), dtype=np.float32)


def compose_image_model(extractor: tf_keras.Model, dec_model: tf_keras.Model) -> tf_keras.Model:
    """uint8 `image` -> frozen features -> the trained head's layers -> (`embedding`, `q`), one flat graph."""
    x = extractor.output
    for layer in dec_model.layers[1:]:
        if isinstance(layer, tf_keras.layers.Dropout):
            continue
        x = layer(x)
        if layer.name == "embedding":
            z = x
    return tf_keras.Model(extractor.input, [z, x], name="dec")
