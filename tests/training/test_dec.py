"""DEC end to end on tiny synthetic tiles: run folder outputs, resume, and clear errors for bad configuration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from contract.errors import AgrilandError
from training.dec_config import DecConfig, get_profile
from training.dec_run import MODEL_FILE, SUMMARY_FILE, run_dec
from training.synthetic import write_dataset

TINY = get_profile("tiny").with_overrides(max_iter=2, update_interval=2, tsne_every=1)


@pytest.fixture(scope="module")
def tiles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 synthetic 64 px tiles with land-cover labels (pairs.csv layout)."""
    return write_dataset(tmp_path_factory.mktemp("dec-data") / "synth", n_tiles=40, tile_size=64, seed=1)


@pytest.mark.slow
def test_tiny_run_writes_model_assignments_tsne_gallery(tiles: Path, tmp_path: Path) -> None:
    from training.keras_objects import load_inference_model

    run = tmp_path / "run"
    summary = run_dec(tiles, run, TINY, verbose=0)

    assert summary["task"] == "clustering" and summary["tile_size"] == 64 and summary["n_clusters"] == 5
    assert summary["data"]["n_tiles"] == 40 and summary["data"]["source"] == str(tiles)
    assert {"acc", "nmi", "ari"} <= set(summary["metrics"])
    assert json.loads((run / SUMMARY_FILE).read_text()) == json.loads(json.dumps(summary))
    assert json.loads((run / "cluster_names.json").read_text()) == {}

    model = load_inference_model(run / MODEL_FILE)
    assert model.input.name.startswith("image") and model.input.dtype == "uint8"
    assert model.output_names == ["embedding", "q"]
    x = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    z, q = model.predict(x, verbose=0)
    assert z.shape == (3, TINY.embedding_dim) and q.shape == (3, 5)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, rtol=1e-5)

    rows = (run / "assignments.csv").read_text().splitlines()
    assert rows[0] == "index,path,cluster,confidence,label" and len(rows) == 41
    assert sorted(p.name for p in (run / "tsne").glob("*.png")) == [
        "tsne_final.png",
        "tsne_iter_000000.png",
        "tsne_iter_000002.png",
    ]
    index = (run / "galleries" / "index.md").read_text()
    galleries = list((run / "galleries").glob("cluster_*.png"))
    assert galleries and all(g.name in index for g in galleries)
    assert not list(run.glob(".*"))  # no temp files left behind


@pytest.mark.slow
def test_resume_continues_iteration_count(tiles: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    config = TINY.with_overrides(tol=0.0, max_iter=2, tsne_every=0)
    first = run_dec(tiles, run, config, verbose=0)
    assert first["dec"]["iterations"] == 2 and first["dec"]["start_iteration"] == 0

    second = run_dec(tiles, run, config.with_overrides(max_iter=4), resume=True, verbose=0)
    assert second["dec"]["start_iteration"] == 2
    assert second["dec"]["iterations"] == 4
    assert [h["iteration"] for h in second["dec"]["history"]] == [0.0, 2.0, 4.0]
    assert second["dec"]["ae_epochs"] == 1  # pretraining was not repeated
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(run / "checkpoints" / "dec_optimizer"))
    steps = [reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if k.startswith("optimizer/_iterations")]
    assert steps == [4]  # the optimizer (and its moments) continued from step 2 instead of starting again


def test_k_larger_than_tiles_is_rejected(tiles: Path, tmp_path: Path) -> None:
    with pytest.raises(AgrilandError, match=r"K=50 is larger than the number of tiles \(40\)"):
        run_dec(tiles, tmp_path / "run", TINY.with_overrides(n_clusters=50))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("size", [48, 80, 288])
def test_tile_size_must_be_multiple_of_32(size: int, tiles: Path, tmp_path: Path) -> None:
    with pytest.raises(AgrilandError, match="multiple of 32"):
        run_dec(tiles, tmp_path / "run", TINY.with_overrides(tile_size=size))


def test_missing_data_folder(tmp_path: Path) -> None:
    with pytest.raises(AgrilandError, match="does not exist"):
        run_dec(tmp_path / "nowhere", tmp_path / "run", TINY)


def test_bad_values_name_the_field() -> None:
    with pytest.raises(AgrilandError, match="kmeans_n_init"):
        DecConfig(kmeans_n_init=3).validate()
    with pytest.raises(AgrilandError, match="momentum"):
        DecConfig(momentum=1.5).validate()
    with pytest.raises(AgrilandError, match="pooling"):
        DecConfig(pooling="max").validate()  # type: ignore[arg-type]
    with pytest.raises(AgrilandError, match="unknown DEC profile"):
        get_profile("huge")


def test_missing_encoder_weights_file(tmp_path: Path) -> None:
    from training.autoencoder import build_encoder

    with pytest.raises(AgrilandError, match="no weights file"):
        build_encoder(TINY.with_overrides(encoder_weights=str(tmp_path / "missing.h5")))


@pytest.mark.slow
def test_frozen_backbone_keeps_its_weights_and_calibrates_batchnorm(tmp_path: Path) -> None:
    from training.autoencoder import build_autoencoder, pretrain

    config = TINY.with_overrides(backbone="resnet50", train_backbone=False, pooling="avg", ae_epochs=1, augment=False)
    ae = build_autoencoder(config)
    backbone = ae.encoder.get_layer("resnet50")
    conv, bn = backbone.get_layer("conv1_conv"), backbone.get_layer("conv1_bn")
    conv_before, hidden_before = conv.get_weights()[0].copy(), ae.encoder.get_layer("hidden").get_weights()[0].copy()
    images = np.random.default_rng(0).integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)
    pretrain(ae, images, config, tmp_path, verbose=0)

    assert not backbone.trainable
    np.testing.assert_array_equal(conv.get_weights()[0], conv_before)
    assert not np.allclose(bn.moving_mean.numpy(), 0.0)  # statistics estimated on the tiles before freezing
    assert not np.allclose(ae.encoder.get_layer("hidden").get_weights()[0], hidden_before)
