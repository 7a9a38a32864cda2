"""The release DEC's linear discriminant head: labelled features -> an embedding that keeps the classes apart."""

from __future__ import annotations

import numpy as np
import pytest

from contract.errors import AgrilandError
from training.dec_config import DecConfig, get_profile
from training.feature_heads import build_lda_head


def _features(n_per_class: int = 60, n_classes: int = 4, dim: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, (n_classes, dim))
    noise = rng.normal(0, 3.0, (n_per_class * n_classes, dim))  # classes overlap in most directions
    labels = np.repeat(np.arange(n_classes), n_per_class)
    return (centres[labels] + noise).astype(np.float32), labels


def test_lda_head_embeds_the_classes_apart() -> None:
    features, labels = _features()
    config = DecConfig(head="lda", embedding_dim=64, head_scale=0.5)
    model, mse = build_lda_head(config.validate(), features, labels)
    z = model.encoder.predict(features, verbose=0)
    assert z.shape == (len(features), 3)  # classes - 1 discriminant components
    centroids = np.stack([z[labels == c].mean(0) for c in range(4)])
    nearest = np.argmin(((z[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    raw_centroids = np.stack([features[labels == c].mean(0) for c in range(4)])
    raw_nearest = np.argmin(((features[:, None, :] - raw_centroids[None]) ** 2).sum(-1), axis=1)
    assert (nearest == labels).mean() > max(0.8, (raw_nearest == labels).mean())
    assert np.isfinite(mse) and model.autoencoder.predict(features[:5], verbose=0).shape == (5, 40)


def test_lda_head_needs_two_classes_and_the_release_profile_uses_it() -> None:
    features, _ = _features()
    with pytest.raises(AgrilandError, match="at least 2 classes"):
        build_lda_head(DecConfig(head="lda"), features, np.zeros(len(features), np.int64))
    with pytest.raises(AgrilandError, match="head must be"):
        DecConfig(head="svd").validate()  # type: ignore[arg-type]
    assert get_profile("release").head == "lda"
