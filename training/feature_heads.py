"""Autoencoder heads on frozen pretrained features: a small dense head, its PCA and LDA initialisations, pretraining."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import tf_keras

from contract.errors import AgrilandError
from training.autoencoder import FEATURE_SCALE, Autoencoder, pretraining_callbacks, resume_epochs
from training.dec_config import DecConfig

log = logging.getLogger(__name__)


def build_head_autoencoder(config: DecConfig, feature_dim: int) -> Autoencoder:
    """DEC on frozen pretrained features: features -> hidden Dense -> embedding -> hidden Dense -> features.

    The encoder here takes the pooled backbone features, not pixels; `compose_image_model` puts the frozen
    feature extractor in front of it for inference and export.
    """
    tf_keras.utils.set_random_seed(config.seed)
    features = tf_keras.Input((feature_dim,), name="features")
    x = tf_keras.layers.Rescaling(FEATURE_SCALE, name="feature_scale")(features)
    x = tf_keras.layers.Dropout(0.1, name="feature_dropout")(x)
    x = tf_keras.layers.Dense(config.hidden_units, activation="relu", name="hidden")(x)
    z = tf_keras.layers.Dense(config.embedding_dim, name="embedding")(x)
    encoder = tf_keras.Model(features, z, name="encoder")
    z_in = tf_keras.Input((config.embedding_dim,), name="embedding_in")
    y = tf_keras.layers.Dense(config.hidden_units, activation="relu", name="dec_hidden")(z_in)
    y = tf_keras.layers.Dense(feature_dim, name="dec_features")(y)
    decoder = tf_keras.Model(z_in, y, name="decoder")
    reconstruction = tf_keras.layers.Activation("linear", name="reconstruction")(decoder(encoder.output))
    return Autoencoder(
        encoder=encoder, decoder=decoder, autoencoder=tf_keras.Model(features, reconstruction, name="autoencoder")
    )


def _linear_autoencoder(
    kernel: np.ndarray, bias: np.ndarray, inverse_kernel: np.ndarray, inverse_bias: np.ndarray
) -> Autoencoder:
    """A closed-form linear head: features -> Dense `embedding` [F, D] -> Dense `dec_features` [D, F]."""
    n_features, dim = kernel.shape
    features_in = tf_keras.Input((n_features,), name="features")
    embedding = tf_keras.layers.Dense(dim, name="embedding")
    encoder = tf_keras.Model(features_in, embedding(features_in), name="encoder")
    embedding.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    z_in = tf_keras.Input((dim,), name="embedding_in")
    inverse = tf_keras.layers.Dense(n_features, name="dec_features")
    decoder = tf_keras.Model(z_in, inverse(z_in), name="decoder")
    inverse.set_weights([inverse_kernel.astype(np.float32), inverse_bias.astype(np.float32)])
    reconstruction = tf_keras.layers.Activation("linear", name="reconstruction")(decoder(encoder.output))
    autoencoder = tf_keras.Model(features_in, reconstruction, name="autoencoder")
    return Autoencoder(encoder=encoder, decoder=decoder, autoencoder=autoencoder)


def build_pca_head(config: DecConfig, features: np.ndarray) -> tuple[Autoencoder, float]:
    """The closed-form linear autoencoder of the features: PCA whitening (x `head_scale`) as the encoder's one
    Dense layer and its inverse as the decoder. Returns the autoencoder and its reconstruction MSE.

    Measured on held-out EuroSAT tiles (K=10): DEC from this start reaches ACC 0.73 / NMI 0.69, against 0.61 / 0.60
    for k-means on the same features and 0.65 / 0.60 for DEC on the ReLU head (which loses information).
    """
    from sklearn.decomposition import PCA

    dim = min(config.embedding_dim, len(features) - 1, features.shape[1])
    if dim < config.embedding_dim:
        log.warning(
            "PCA head: %d tiles allow at most %d components (embedding_dim %d)",
            len(features),
            dim,
            config.embedding_dim,
        )
    pca = PCA(dim, whiten=True, random_state=config.seed).fit(features)
    scale = np.sqrt(np.maximum(pca.explained_variance_, 1e-12))
    kernel = (pca.components_ / scale[:, None]).T * config.head_scale  # [F, D]
    bias = -pca.mean_ @ kernel
    inverse_kernel = (pca.components_ * scale[:, None]) / config.head_scale  # [D, F]
    model = _linear_autoencoder(kernel, bias, inverse_kernel, pca.mean_)
    rebuilt = model.autoencoder.predict(features, batch_size=512, verbose=0)
    mse = float(np.mean((rebuilt - features) ** 2))
    log.info(
        "PCA head: %d components keep %.1f%% of the feature variance (reconstruction MSE %.2e)",
        dim,
        100 * float(pca.explained_variance_ratio_.sum()),
        mse,
    )
    return model, mse


def build_lda_head(config: DecConfig, features: np.ndarray, labels: np.ndarray) -> tuple[Autoencoder, float]:
    """The linear discriminant projection of labelled features (PCA whitening to at most 256 components first,
    then LDA without shrinkage, so Euclidean distances in the embedding are the discriminant metric) as the
    encoder's one Dense layer, x `head_scale`; its pseudo-inverse as the decoder.

    For a labelled development set: the embedding keeps the classes apart, so each DEC cluster holds one land cover.
    At most classes - 1 dimensions (and at most `embedding_dim`).
    """
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    n_classes = len(np.unique(labels))
    if n_classes < 2:
        raise AgrilandError(f"the lda head needs tiles of at least 2 classes, got {n_classes}")
    dim = min(config.embedding_dim, n_classes - 1)
    pca = PCA(min(256, len(features) - 1, features.shape[1]), whiten=True, random_state=config.seed).fit(features)
    lda = LinearDiscriminantAnalysis(solver="eigen", n_components=dim)
    lda.fit(pca.transform(features), labels)

    def project(x: np.ndarray) -> np.ndarray:
        return lda.transform(pca.transform(x)) * config.head_scale

    bias = project(np.zeros((1, features.shape[1]), np.float64))[0]
    kernel = project(np.eye(features.shape[1])) - bias  # the composed affine map, [F, D]
    inverse_kernel = np.linalg.pinv(kernel)  # [D, F]
    model = _linear_autoencoder(kernel, bias, inverse_kernel, -bias @ inverse_kernel)
    mse = float(np.mean((model.autoencoder.predict(features, batch_size=512, verbose=0) - features) ** 2))
    log.info(
        "LDA head: %d classes -> %d discriminant components (training accuracy of the projection %.3f)",
        n_classes,
        dim,
        float(lda.score(pca.transform(features), labels)),
    )
    return model, mse


def pretrain_head(
    model: Autoencoder,
    features: np.ndarray,
    config: DecConfig,
    checkpoint_dir: Path,
    resume: bool = False,
    verbose: int = 1,
) -> dict[str, float]:
    """Adam + MSE reconstruction of the pooled features (input dropout denoises); checkpointed, resumable."""
    initial_epoch = resume_epochs(model, checkpoint_dir, resume)
    if initial_epoch >= config.ae_epochs:
        return {"ae_epochs": float(initial_epoch)}
    model.autoencoder.compile(optimizer=tf_keras.optimizers.Adam(config.ae_learning_rate), loss="mse")
    callbacks = pretraining_callbacks(checkpoint_dir, config, initial_epoch, min_delta=1e-6)
    log.info(
        "autoencoder: pretraining the dense head on %d feature vectors of size %d for %d epochs",
        len(features),
        features.shape[1],
        config.ae_epochs,
    )
    history = model.autoencoder.fit(
        features,
        features,
        batch_size=config.ae_batch_size,
        epochs=config.ae_epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        shuffle=True,
        verbose=verbose,
    )
    losses = history.history.get("loss", [])
    return {"ae_loss": float(min(losses)) if losses else float("nan"), "ae_epochs": float(initial_epoch + len(losses))}
