"""The workflow's full DEC shape (256 px, ResNet-50 flatten -> 1024-unit Dense, K=100) exports with parity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

import export  # noqa: F401  (TF environment before TensorFlow loads)
from export.onnx_export import LARGE_WEIGHT_ELEMENTS, choose_optimizer, convert_keras, largest_weight
from export.parity import check_parity, keras_outputs

pytestmark = pytest.mark.slow
OUTPUTS = ("embedding", "q")


def _dec(profile: str, **overrides: object):
    """The DEC inference model of a profile, random weights, built with the training builders (no training)."""
    import tf_keras

    from training.autoencoder import build_encoder
    from training.dec import build_dec_model
    from training.dec_config import get_profile

    config = get_profile(profile).with_overrides(**overrides)
    tf_keras.utils.set_random_seed(0)
    return build_dec_model(build_encoder(config), config.n_clusters, config.alpha), config


def _check(model, tile: int, path: Path, optimizer: str) -> None:
    report = convert_keras(model, "dec", tile, path, optimizer)  # type: ignore[arg-type]
    assert report.optimizer == optimizer
    assert report.input_transposes == 1 and report.input_prefix[0] == "Cast"
    proto = onnx.load(str(path), load_external_data=False)
    assert [o.name for o in proto.graph.output] == list(OUTPUTS)
    assert {o.domain or "ai.onnx" for o in proto.opset_import} == {"ai.onnx"}  # standard ops only
    assert all(node.domain in ("", "ai.onnx") for node in proto.graph.node)
    images = np.random.default_rng(0).integers(0, 256, (4, tile, tile, 3), dtype=np.uint8)
    reference = keras_outputs(model, images, OUTPUTS, batch_size=2)
    parity = check_parity(reference, path, images, "fp32")  # raises on a miss
    assert parity.passed and parity.cluster_agreement == 1.0


def test_onnxruntime_optimiser_path_on_a_small_dec(tmp_path: Path) -> None:
    """The path the full profile takes, forced on a tiny DEC (fast): same contract, same parity gate."""
    model, config = _dec("tiny", backbone="resnet50")
    assert choose_optimizer(model) == "tf2onnx"  # small weights keep tf2onnx's optimisers
    _check(model, config.tile_size, tmp_path / "model.onnx", "onnxruntime")


def test_full_profile_dec_exports(tmp_path: Path) -> None:
    """~16 GB peak RSS and ~2 min on 2 cores (docs/benchmarks.md); tf2onnx's optimisers ran out at 22 GB."""
    model, config = _dec("full", backbone="resnet50", views=1, hidden_units=1024)  # the workflow's ResNet-50 DEC
    assert (config.tile_size, config.hidden_units, config.n_clusters, config.pooling) == (256, 1024, 100, "flatten")
    assert largest_weight(model) == 8 * 8 * 2048 * 1024 > LARGE_WEIGHT_ELEMENTS
    assert choose_optimizer(model) == "onnxruntime"
    path = tmp_path / "model.onnx"
    _check(model, config.tile_size, path, "onnxruntime")
    q = onnx.load(str(path), load_external_data=False).graph.output[1]
    assert q.type.tensor_type.shape.dim[1].dim_value == 100
