"""ClusteringLayer (Student-t q) and the DEC target distribution against hand-computed NumPy values."""

from __future__ import annotations

import numpy as np
import pytest
import tf_keras

from training.clustering_layer import ClusteringLayer, soft_assignment, target_distribution

Z = np.array([[0.0, 0.0], [1.0, 2.0], [3.0, -1.0]], dtype=np.float32)
MU = np.array([[0.0, 1.0], [2.0, 0.0]], dtype=np.float32)


def _reference_q(z: np.ndarray, mu: np.ndarray, alpha: float) -> np.ndarray:
    q = np.empty((len(z), len(mu)))
    for i, zi in enumerate(z):
        for j, mj in enumerate(mu):
            q[i, j] = (1.0 + np.sum((zi - mj) ** 2) / alpha) ** (-(alpha + 1.0) / 2.0)
        q[i] /= q[i].sum()
    return q


def _layer(alpha: float) -> ClusteringLayer:
    layer = ClusteringLayer(2, alpha=alpha)
    layer.build((None, 2))
    layer.set_weights([MU])
    return layer


@pytest.mark.parametrize("alpha", [1.0, 0.5, 3.0])
def test_q_matches_numpy_reference(alpha: float) -> None:
    q = _layer(alpha)(Z).numpy()
    np.testing.assert_allclose(q, _reference_q(Z, MU, alpha), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(soft_assignment(Z, MU, alpha), _reference_q(Z, MU, alpha), rtol=1e-6)


def test_q_fixed_numbers_alpha_one() -> None:
    # z0=(0,0): d2 = 1 and 4 -> kernels 1/2 and 1/5 -> q = (5/7, 2/7)
    q = _layer(1.0)(Z).numpy()
    np.testing.assert_allclose(q[0], [5 / 7, 2 / 7], rtol=1e-6)


def test_rows_sum_to_one() -> None:
    rng = np.random.default_rng(0)
    layer = ClusteringLayer(7, alpha=1.0)
    q = layer(rng.normal(size=(50, 10)).astype(np.float32)).numpy()
    assert q.shape == (50, 7)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-5)
    assert (q > 0).all()


def test_target_distribution_hand_computed() -> None:
    q = np.array([[0.5, 0.5], [0.8, 0.2], [0.1, 0.9]])
    # column sums f = [1.4, 1.6]
    expected = np.array(
        [
            [0.25 / 1.4, 0.25 / 1.6],
            [0.64 / 1.4, 0.04 / 1.6],
            [0.01 / 1.4, 0.81 / 1.6],
        ]
    )
    expected /= expected.sum(axis=1, keepdims=True)
    p = target_distribution(q)
    np.testing.assert_allclose(p, expected, rtol=1e-6)
    np.testing.assert_allclose(p[0], [1.6 / 3.0, 1.4 / 3.0], rtol=1e-6)  # (0.25/1.4) : (0.25/1.6)
    assert p[1, 0] > q[1, 0]  # confident assignments get sharper


def test_alpha_survives_serialisation(tmp_path) -> None:
    inputs = tf_keras.Input(shape=(2,))
    model = tf_keras.Model(inputs, ClusteringLayer(2, alpha=2.5, name="q")(inputs))
    model.get_layer("q").set_weights([MU])
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = tf_keras.models.load_model(path, compile=False)
    assert loaded.get_layer("q").alpha == 2.5
    assert loaded.get_layer("q").get_config()["n_clusters"] == 2
    np.testing.assert_allclose(loaded.predict(Z, verbose=0), _reference_q(Z, MU, 2.5), rtol=1e-5)


def test_bad_arguments_rejected() -> None:
    with pytest.raises(ValueError):
        ClusteringLayer(0)
    with pytest.raises(ValueError):
        ClusteringLayer(3, alpha=0.0)
