"""U-Net training run: load pairs, split, fit with Adam (best checkpoint and early stopping on validation IoU),
evaluate on the held-out split, and write the run folder (model, summary, curve, overlays)."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
import tf_keras

from contract.radiometry import DEFAULT_RADIOMETRY
from training.seg_losses import get_loss
from training.seg_metrics import keras_metrics
from training.unet import (
    PREPROCESSING,
    build_unet,
    normalize_encoder,
    set_batchnorm_momentum,
    set_encoder_trainable,
)
from training.unet_config import UnetConfig
from training.unet_data import split_by_group, split_indices
from training.unet_evaluate import evaluate_masks, write_overlays

log = logging.getLogger(__name__)

MODEL_FILE = "inference_model.keras"
SUMMARY_FILE = "training_summary.json"
CURVE_FILE = "curve.png"
OVERLAYS_FILE = "overlays.png"
CHECKPOINT_FILE = "checkpoints/best.weights.h5"


def plot_curves(history: dict[str, list[float]], path: Path, title: str) -> Path:
    """Loss and IoU per epoch, training vs validation, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for ax, key in zip(axes, ("loss", "iou")):
        for prefix, style in (("", "-o"), ("val_", "-s")):
            if history.get(prefix + key):
                ax.plot(epochs, history[prefix + key], style, ms=3, label=("validation " if prefix else "train ") + key)
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _fit(
    model: tf_keras.Model,
    config: UnetConfig,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    callbacks: list[tf_keras.callbacks.Callback],
    first: int,
    last: int,
    verbose: int,
) -> dict[str, list[float]]:
    model.compile(
        optimizer=tf_keras.optimizers.Adam(config.learning_rate),
        loss=get_loss(config.loss),
        metrics=keras_metrics(config.threshold),
    )
    hist = model.fit(
        train_ds, validation_data=val_ds, initial_epoch=first, epochs=last, callbacks=callbacks, verbose=verbose
    )
    return {k: [float(v) for v in values] for k, values in hist.history.items()}


Split = tuple[np.ndarray, np.ndarray]


def _train(
    model: tf_keras.Model, config: UnetConfig, splits: tuple[Split, Split], staging: Path, verbose: int
) -> dict[str, list[float]]:
    from training.augment import AugmentConfig
    from training.tf_dataset import make_tf_dataset

    (x_tr, m_tr), (x_val, m_val) = splits
    augment = AugmentConfig(min_crop_scale=config.min_crop_scale, photometric=config.photometric)
    train_ds = make_tf_dataset(
        x_tr, m_tr, config.batch_size, shuffle=True, augment=config.augment, seed=config.seed, augment_config=augment
    )
    val_ds = make_tf_dataset(x_val, m_val, config.batch_size, shuffle=False, augment=False)
    checkpoint = staging / CHECKPOINT_FILE
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    saver = tf_keras.callbacks.ModelCheckpoint(
        str(checkpoint), monitor="val_iou", mode="max", save_best_only=True, save_weights_only=True, verbose=0
    )
    history: dict[str, list[float]] = {}
    if config.freeze_encoder_epochs:
        log.info(
            "warm-up: %d epochs with the encoder frozen (%d layers)",
            config.freeze_encoder_epochs,
            set_encoder_trainable(model, False),
        )
        history = _fit(model, config, train_ds, val_ds, [saver], 0, config.freeze_encoder_epochs, verbose)
        set_encoder_trainable(model, True)
    stopper = tf_keras.callbacks.EarlyStopping(monitor="val_iou", mode="max", patience=config.patience, verbose=1)
    rest = _fit(
        model,
        config,
        train_ds,
        val_ds,
        [saver, stopper, tf_keras.callbacks.TerminateOnNaN()],
        config.freeze_encoder_epochs,
        config.epochs,
        verbose,
    )
    for key, values in rest.items():
        history.setdefault(key, []).extend(values)
    if checkpoint.is_file():
        model.load_weights(str(checkpoint))
    return history


def train_unet(
    images: np.ndarray,
    masks: np.ndarray,
    config: UnetConfig,
    run_dir: Path,
    data_info: dict[str, object],
    verbose: int = 1,
) -> dict[str, object]:
    """Train, evaluate and write `run_dir` (replacing its files only once everything succeeded)."""
    config.validate()
    started = time.monotonic()
    encoder = normalize_encoder(config.encoder)
    groups = data_info.get("groups")
    data_info = {k: v for k, v in data_info.items() if k != "groups"}
    if groups is not None:
        train_idx, val_idx, test_idx = split_by_group(
            list(groups), config.val_fraction, config.test_fraction, config.seed
        )
        data_info["split"] = "grouped (by source tile/scene: no test tile or scene is seen in training)"
    else:
        train_idx, val_idx, test_idx = split_indices(
            len(images), config.val_fraction, config.test_fraction, config.seed
        )
        data_info["split"] = "random by tile (the data names no source groups)"
    eval_idx, eval_split = (test_idx, "test") if len(test_idx) else (val_idx, "val")
    log.info(
        "U-Net run: %s/%s, %d px, %d train / %d val / %d test tiles -> %s",
        config.arch,
        encoder,
        config.tile_size,
        len(train_idx),
        len(val_idx),
        len(test_idx),
        run_dir,
    )
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.staging-", dir=run_dir.parent))
    try:
        tf_keras.utils.set_random_seed(config.seed)  # same seed, same initial weights and batches
        model = build_unet(config.tile_size, encoder, config.arch, config.encoder_weights, config.decoder_filters)
        set_batchnorm_momentum(model, config.bn_momentum)
        fit_start = time.monotonic()
        history = _train(
            model, config, ((images[train_idx], masks[train_idx]), (images[val_idx], masks[val_idx])), staging, verbose
        )
        fit_seconds = time.monotonic() - fit_start
        val_metrics, _ = evaluate_masks(model, images[val_idx], masks[val_idx], config.threshold, config.batch_size)
        metrics, probs = evaluate_masks(model, images[eval_idx], masks[eval_idx], config.threshold, config.batch_size)
        title = f"{config.arch}/{encoder}, {config.tile_size} px, held-out {eval_split}: IoU {metrics['iou']:.3f}"
        write_overlays(
            staging / OVERLAYS_FILE,
            images[eval_idx],
            masks[eval_idx],
            probs,
            config.n_overlays,
            config.threshold,
            title,
        )
        plot_curves(history, staging / CURVE_FILE, f"{config.arch}/{encoder}, {config.tile_size} px")
        export_model = tf_keras.Model(model.inputs, model.outputs, name=model.name)  # uncompiled: no loss in file
        export_model.save(staging / MODEL_FILE)
        val_iou = history.get("val_iou", [0.0])
        summary = {
            "task": "segmentation",
            "tile_size": config.tile_size,
            "arch": config.arch,
            "encoder": encoder,
            "data": {**data_info, "n_train": len(train_idx), "n_val": len(val_idx), "n_test": len(test_idx)},
            "metrics": metrics,
            "metrics_split": eval_split,
            "val_metrics": val_metrics,
            "threshold": config.threshold,
            "model": {
                "arch": config.arch,
                "encoder": encoder,
                "preprocessing": PREPROCESSING[encoder],
                "encoder_weights": config.encoder_weights or "random init",
                "params": int(model.count_params()),
                "input": "image",
                "output": "mask",
            },
            "training": {
                "epochs_run": len(history.get("loss", [])),
                "best_epoch": int(np.argmax(val_iou)) + 1,
                "best_val_iou": float(max(val_iou)),
                "fit_seconds": round(fit_seconds, 1),
                "total_seconds": round(time.monotonic() - started, 1),
            },
            "history": history,
            "radiometry": DEFAULT_RADIOMETRY.model_dump(mode="json"),
            "config": config.to_dict(),
        }
        (staging / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=float) + "\n", encoding="utf-8")
        _publish(staging, run_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info(
        "U-Net: held-out %s IoU %.3f, F1 %.3f, pixel accuracy %.3f -> %s",
        eval_split,
        metrics["iou"],
        metrics["f1"],
        metrics["pixel_accuracy"],
        run_dir,
    )
    return summary


def _publish(staging: Path, run_dir: Path) -> None:
    """Move every finished output from the staging folder into the run folder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in (MODEL_FILE, CURVE_FILE, OVERLAYS_FILE, SUMMARY_FILE):  # not the checkpoint: it is the model again
        source = staging / name
        if not source.exists():
            continue
        target = run_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            shutil.rmtree(target)
        shutil.move(str(source), str(target))
