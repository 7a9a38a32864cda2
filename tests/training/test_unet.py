"""U-Net builders, configuration and a tiny end-to-end training run on synthetic pairs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tf_keras

from contract.errors import AgrilandError
from training.unet import build_unet, encoder_view, load_encoder_weights, set_encoder_trainable
from training.unet_config import UnetConfig, get_profile
from training.unet_handbuilt import build_handbuilt_unet


def _check_contract(model: tf_keras.Model, tile: int) -> None:
    assert model.input.name == "image" and model.input.dtype == "uint8"
    assert tuple(model.input.shape) == (None, tile, tile, 3)
    assert model.output_names == ["mask"]
    probs = model.predict(np.full((2, tile, tile, 3), 120, np.uint8), verbose=0)
    assert probs.shape == (2, tile, tile, 1) and probs.dtype == np.float32
    assert ((probs >= 0) & (probs <= 1)).all()


@pytest.mark.slow
@pytest.mark.parametrize("tile", [64, 128, 256])
def test_handbuilt_builds_at_multiples_of_32(tile: int) -> None:
    model = build_handbuilt_unet(tile)
    _check_contract(model, tile)
    names = {layer.name for layer in model.get_layer("segmentation_core").layers}
    assert {"decoder_stage0_transpose", "decoder_stage3_concat", "final_conv"} <= names
    widths = [model.get_layer("segmentation_core").get_layer(f"decoder_stage{i}_conv").filters for i in range(4)]
    assert widths == [512, 256, 128, 64]


@pytest.mark.parametrize("tile", [100, 48, 32 * 3 + 1])
def test_sizes_not_divisible_by_32_are_rejected(tile: int) -> None:
    with pytest.raises(AgrilandError, match="divisible by 32"):
        build_handbuilt_unet(tile)
    with pytest.raises(AgrilandError, match="divisible by 32"):
        build_unet(tile, encoder="none")


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ["inceptionv3", "resnet50", "untrained"])
def test_segmentation_models_unet_builds_at_64_px(encoder: str) -> None:
    """segmentation-models' InceptionV3 works at 64 px although keras.applications requires >= 75 px."""
    _check_contract(build_unet(64, encoder=encoder), 64)


def test_handbuilt_needs_the_inception_encoder_and_unknown_names_fail() -> None:
    with pytest.raises(AgrilandError, match="InceptionV3"):
        build_unet(64, encoder="resnet50", arch="handbuilt")
    with pytest.raises(AgrilandError, match="unknown encoder"):
        build_unet(64, encoder="mobilenet-xl")
    with pytest.raises(AgrilandError, match="unknown arch"):
        build_unet(64, encoder="none", arch="fpn")  # type: ignore[arg-type]


@pytest.mark.slow
def test_encoder_weights_from_a_local_file_and_freezing(tmp_path: Path) -> None:
    donor = build_unet(64, encoder="resnet50")
    view = encoder_view(donor)
    weights_file = tmp_path / "resnet50_notop.h5"
    view.save_weights(str(weights_file))
    model = build_unet(64, encoder="resnet50", encoder_weights=str(weights_file))
    donor_kernels = [w.numpy() for w in view.weights]
    loaded_kernels = [w.numpy() for w in encoder_view(model).weights]
    assert len(donor_kernels) == len(loaded_kernels) > 100
    for a, b in zip(donor_kernels, loaded_kernels):
        np.testing.assert_array_equal(a, b)
    trainable_before = len(model.trainable_weights)
    assert set_encoder_trainable(model, False) > 0
    assert len(model.trainable_weights) < trainable_before
    set_encoder_trainable(model, True)
    assert len(model.trainable_weights) == trainable_before


@pytest.mark.slow
def test_bad_encoder_weights_are_clear_errors(tmp_path: Path) -> None:
    model = build_unet(64, encoder="resnet50")
    with pytest.raises(AgrilandError, match="not found"):
        load_encoder_weights(model, "resnet50", tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file")
    with pytest.raises(AgrilandError, match="cannot load resnet50 encoder weights"):
        load_encoder_weights(model, "resnet50", junk)
    with pytest.raises(AgrilandError, match="needs a backbone encoder"):
        build_unet(64, encoder="none", encoder_weights=str(junk))


def test_config_validation_names_the_field() -> None:
    assert get_profile("quick").validate().encoder == "efficientnet-lite0"
    assert get_profile("full").tile_size == 256
    with pytest.raises(AgrilandError, match="divisible by 32"):
        UnetConfig(tile_size=80).validate()
    with pytest.raises(AgrilandError, match="loss"):
        UnetConfig(loss="hinge").validate()  # type: ignore[arg-type]
    with pytest.raises(AgrilandError, match="freeze_encoder_epochs"):
        UnetConfig(epochs=2, freeze_encoder_epochs=2).validate()
    with pytest.raises(AgrilandError, match="val_fraction"):
        UnetConfig(val_fraction=0.6, test_fraction=0.5).validate()
    with pytest.raises(AgrilandError, match="unknown U-Net profile"):
        get_profile("huge")
    with pytest.raises(AgrilandError, match="unknown U-Net config"):
        UnetConfig().with_overrides(colour="red")


@pytest.mark.slow
def test_tiny_end_to_end_run_lowers_validation_loss(tmp_path: Path) -> None:
    from training.keras_objects import load_inference_model
    from training.synthetic import write_dataset
    from training.unet_cli import main

    data = write_dataset(tmp_path / "data", n_tiles=40, tile_size=64, seed=1)
    run = tmp_path / "runs" / "unet"
    argv = [
        "--data",
        str(data / "pairs.csv"),
        "--run",
        str(run),
        "--profile",
        "tiny",
        "--epochs",
        "3",
        "--patience",
        "3",
        "--quiet",
    ]
    assert main(argv) == 0
    for name in ("inference_model.keras", "training_summary.json", "curve.png", "overlays.png"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    summary = json.loads((run / "training_summary.json").read_text())
    assert summary["task"] == "segmentation" and summary["tile_size"] == 64
    assert summary["data"]["n_tiles"] == 40 and summary["data"]["source"].endswith("pairs.csv")
    assert set(summary["metrics"]) >= {"iou", "f1", "precision", "recall", "pixel_accuracy"}
    val_loss = summary["history"]["val_loss"]
    assert len(val_loss) == 3 and min(val_loss[1:]) < val_loss[0]
    model = load_inference_model(run / "inference_model.keras")
    probs = model.predict(np.zeros((1, 64, 64, 3), np.uint8), verbose=0)
    assert model.input.name == "image" and model.output_names == ["mask"] and probs.shape == (1, 64, 64, 1)
    assert not list(run.parent.glob(".unet.staging-*"))  # staging folder cleaned up


def test_pairs_without_masks_are_rejected(tmp_path: Path) -> None:
    from PIL import Image

    from training.unet_cli import main

    folder = tmp_path / "tiles"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((64, 64, 3), 40 * i, np.uint8)).save(folder / f"t{i}.png")
    with pytest.raises(AgrilandError, match="no masks"):
        main(["--data", str(folder), "--run", str(tmp_path / "run"), "--profile", "tiny"])
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_frozen_encoder_warm_up_and_other_loss_from_synthetic_tiles(tmp_path: Path) -> None:
    from training.unet_cli import main

    run = tmp_path / "run"
    assert (
        main(
            [
                "--synthetic",
                "24",
                "--run",
                str(run),
                "--profile",
                "tiny",
                "--epochs",
                "2",
                "--freeze-encoder-epochs",
                "1",
                "--loss",
                "bce_dice",
                "--quiet",
            ]
        )
        == 0
    )
    summary = json.loads((run / "training_summary.json").read_text())
    assert len(summary["history"]["loss"]) == 2 and summary["config"]["loss"] == "bce_dice"
    assert summary["data"]["source"].startswith("synthetic:24")
