"""Field model training run: chips from field images (split by image), fit with Adam, keep the best epoch on
held-out images, write the run folder (inference_model.keras, training_summary.json, curve)."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import tf_keras

from contract.errors import AgrilandError
from contract.radiometry import DEFAULT_RADIOMETRY
from training.field_chips import ChipConfig, ChipSampler
from training.field_model import CLASS_WEIGHTS, OUTPUT_NAME, build_field_unet, field_loss
from training.field_polygons import FieldImage
from training.field_targets import CLASSES
from training.unet import normalize_encoder, set_batchnorm_momentum

log = logging.getLogger(__name__)

MODEL_FILE = "inference_model.keras"
SUMMARY_FILE = "training_summary.json"
CURVE_FILE = "curve.png"
PARITY_CHIPS_FILE = "parity_chips.npy"  # held-out chips the export checks ONNX against Keras on


@dataclass(frozen=True)
class FieldConfig:
    """Everything that shapes a field-model run."""

    tile_size: int = 128
    encoder: str = "efficientnet-lite0"
    epochs: int = 30
    steps_per_epoch: int = 40
    batch_size: int = 16
    learning_rate: float = 1e-3
    val_fraction: float = 0.15  # of the images (by image): picks the best epoch
    val_chips: int = 96
    negative_share: float = 0.15
    negatives_per_class: int | None = 400
    gsd_levels_m: tuple[float, ...] = ChipConfig().gsd_levels_m
    work_gsd_m: float = 2.5  # finer inputs are answered at this resolution; coarser ones at their own
    max_gsd_m: float = 10.0  # the coarsest resolution trained on
    bn_momentum: float = 0.9
    seed: int = 0

    def validate(self) -> FieldConfig:
        normalize_encoder(self.encoder)
        for name in ("epochs", "steps_per_epoch", "batch_size", "val_chips"):
            if int(getattr(self, name)) < 1:
                raise AgrilandError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.val_fraction < 1:
            raise AgrilandError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if not 0 <= self.negative_share < 1:
            raise AgrilandError(f"negative_share must be in [0, 1), got {self.negative_share}")
        if self.learning_rate <= 0:
            raise AgrilandError(f"learning_rate must be > 0, got {self.learning_rate}")
        return self


PROFILES: dict[str, FieldConfig] = {
    # seconds: tests and smoke checks (plain encoder, 64 px chips, a few steps)
    "tiny": FieldConfig(
        tile_size=64, encoder="none", epochs=2, steps_per_epoch=3, batch_size=4, val_chips=8, negatives_per_class=20
    ),
    # about an hour on 2 CPU cores: ImageNet EfficientNet-Lite0, 128 px chips at 2-10 m
    "quick": FieldConfig(),
    # for a GPU: 256 px chips, many more steps
    "full": FieldConfig(tile_size=256, epochs=80, steps_per_epoch=150, batch_size=16, val_chips=256),
}


class _Chips(tf_keras.utils.Sequence):
    """Fresh augmented chips every epoch."""

    def __init__(self, sampler: ChipSampler, steps: int, batch: int) -> None:
        super().__init__()
        self.sampler, self.steps, self.batch = sampler, steps, batch

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.sampler.sample(self.batch)


def split_images(images: list[FieldImage], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of training and validation images (by image, seeded)."""
    order = np.random.default_rng(seed).permutation(len(images))
    n_val = int(round(len(images) * val_fraction)) if len(images) > 2 else 0
    n_val = min(max(n_val, 1 if val_fraction > 0 and len(images) > 2 else 0), len(images) - 1)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def plot_curve(history: dict[str, list[float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key in ("loss", "val_loss"):
        if history.get(key):
            ax.plot(np.arange(1, len(history[key]) + 1), history[key], "-o", ms=3, label=key)
    ax.set_xlabel("epoch")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


class _Progress(tf_keras.callbacks.Callback):
    def __init__(self, total: int) -> None:
        super().__init__()
        self.total, self.started = total, time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        log.info(
            "epoch %d/%d: loss %.4f, val_loss %.4f (%.0f s)",
            epoch + 1,
            self.total,
            logs.get("loss", np.nan),
            logs.get("val_loss", np.nan),
            time.monotonic() - self.started,
        )


def train_fields(
    images: list[FieldImage],
    negatives: np.ndarray | None,
    config: FieldConfig,
    run_dir: Path,
    data_info: dict[str, object],
    verbose: int = 0,
    weights: str | None = "imagenet",
) -> dict[str, object]:
    """Train, pick the best epoch on the validation images, write `run_dir` (replaced only when all succeeded)."""
    config.validate()
    started = time.monotonic()
    train_idx, val_idx = split_images(images, config.val_fraction, config.seed)
    chips = ChipConfig(tile=config.tile_size, gsd_levels_m=config.gsd_levels_m, negative_share=config.negative_share)
    tf_keras.utils.set_random_seed(config.seed)
    train_sampler = ChipSampler([images[i] for i in train_idx], negatives, chips, seed=config.seed)
    validation = None
    if val_idx:
        val_sampler = ChipSampler(
            [images[i] for i in val_idx], None, replace(chips, photometric=False), seed=config.seed + 1
        )
        validation = val_sampler.sample(config.val_chips, augment=False)
    log.info(
        "field model: %s, %d px chips at %s m, %d train / %d val images, %d negative tiles -> %s",
        config.encoder,
        config.tile_size,
        "/".join(f"{g:g}" for g in config.gsd_levels_m),
        len(train_idx),
        len(val_idx),
        0 if negatives is None else len(negatives),
        run_dir,
    )
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.staging-", dir=run_dir.parent))
    try:
        model = build_field_unet(config.tile_size, config.encoder, weights)
        set_batchnorm_momentum(model, config.bn_momentum)
        schedule = tf_keras.optimizers.schedules.CosineDecay(
            config.learning_rate, config.epochs * config.steps_per_epoch, alpha=0.05
        )
        model.compile(optimizer=tf_keras.optimizers.Adam(schedule), loss=field_loss())
        checkpoint = staging / "best.weights.h5"
        monitor = "val_loss" if validation is not None else "loss"
        callbacks = [
            tf_keras.callbacks.ModelCheckpoint(
                str(checkpoint), monitor=monitor, save_best_only=True, save_weights_only=True
            ),
            tf_keras.callbacks.TerminateOnNaN(),
            _Progress(config.epochs),
        ]
        fit_start = time.monotonic()
        hist = model.fit(
            _Chips(train_sampler, config.steps_per_epoch, config.batch_size),
            validation_data=validation,
            epochs=config.epochs,
            callbacks=callbacks,
            verbose=verbose,
        )
        fit_seconds = time.monotonic() - fit_start
        history = {k: [float(v) for v in values] for k, values in hist.history.items()}
        if checkpoint.is_file():
            model.load_weights(str(checkpoint))
        tf_keras.Model(model.inputs, model.outputs, name=model.name).save(staging / MODEL_FILE)
        parity = validation[0] if validation is not None else train_sampler.sample(config.val_chips, augment=False)[0]
        np.save(staging / PARITY_CHIPS_FILE, parity[:64])
        plot_curve(history, staging / CURVE_FILE, f"field model {config.encoder}, {config.tile_size} px")
        best = history.get(monitor, [0.0])
        summary = {
            "task": "fields",
            "tile_size": config.tile_size,
            "encoder": normalize_encoder(config.encoder),
            "classes": list(CLASSES),
            "class_weights": list(CLASS_WEIGHTS),
            "output": OUTPUT_NAME,
            "work_gsd_m": config.work_gsd_m,
            "max_gsd_m": config.max_gsd_m,
            "radiometry": DEFAULT_RADIOMETRY.model_copy(
                update={
                    "rendering": "8-bit RGB as delivered (NAIP aerial, EuroSAT Sentinel-2 B4-B3-B2 0..0.275); 16-bit "
                    "reflectance 0..0.275 linear to 0..255"
                }
            ).model_dump(mode="json"),
            "data": {
                **data_info,
                "train_images": [images[i].name for i in train_idx],
                "val_images": [images[i].name for i in val_idx],
                "n_fields_train": int(sum(images[i].n_fields for i in train_idx)),
                "n_negative_tiles": 0 if negatives is None else int(len(negatives)),
            },
            "training": {
                "epochs_run": len(history.get("loss", [])),
                "best_epoch": int(np.argmin(best)) + 1,
                "best_" + monitor: float(min(best)),
                "fit_seconds": round(fit_seconds, 1),
                "total_seconds": round(time.monotonic() - started, 1),
                "params": int(model.count_params()),
            },
            "history": history,
            "config": asdict(config),
        }
        (staging / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=float) + "\n", encoding="utf-8")
        run_dir.mkdir(parents=True, exist_ok=True)
        for name in (MODEL_FILE, CURVE_FILE, SUMMARY_FILE, PARITY_CHIPS_FILE):
            target = run_dir / name
            if target.is_dir():
                shutil.rmtree(target)
            shutil.move(str(staging / name), str(target))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info(
        "field model: best %s %.4f at epoch %d, %.0f s -> %s",
        monitor,
        min(best),
        summary["training"]["best_epoch"],
        fit_seconds,
        run_dir,
    )
    return summary
