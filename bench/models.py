"""The benchmark's models: the quickstart's default architectures at 64 px, trained runs when present, else built.

What `make run` serves (agriland quickstart, profile `quick`): a DEC on frozen ImageNet EfficientNet-Lite0 features
(64 px, 4 flip views averaged in the graph, K=50; training/pretrained_features.py) and a U-Net with the Lite0
encoder (64 px; training/unet.py `efficientnet-lite0`). On a fresh machine nothing is trained, so this module
builds the same architectures from the `agriland` profiles with ImageNet encoder weights (installed package) and
random heads/decoders; the DEC's 50 centres are set to the embeddings of 50 real sample tiles so q is not flat.
`--runs DIR` (or AGRILAND_BENCH_RUNS) points at trained quickstart runs (`DIR/dec-quick`, `DIR/unet-quick`)
instead; timing does not depend on weights, int8 agreement does. Calibration, parity and request tiles are the
shipped real EuroSAT RGB sample (samples/eurosat-rgb).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.common import ROOT, TILE, WORK, setup_logging

log = logging.getLogger(__name__)

MODELS_DIR = WORK / "models"  # models/<name>/<variant>/{model.onnx,manifest.json}, served by the benchmarks
RUNS_DIR = WORK / "runs"
TILES_DIR = WORK / "request_tiles"  # real EuroSAT PNGs: service request bodies
SAMPLE_DIR = ROOT / "samples" / "eurosat-rgb"  # shipped real tiles: calibration, parity, requests
PROFILE = "quick"  # the quickstart's default profile for both models
RUN_NAMES = {"dec": f"dec-{PROFILE}", "unet": f"unet-{PROFILE}"}  # agriland quickstart's run folder names
N_REQUEST_TILES = 32
N_PARITY = 64


@dataclass(frozen=True)
class BenchModel:
    """Where one benchmarked model lives and where it came from."""

    name: str
    run_dir: Path
    origin: str  # "trained run ..." or "built: ..."

    def onnx(self, variant: str) -> Path:
        return MODELS_DIR / self.name / variant / "model.onnx"

    @property
    def keras(self) -> Path:
        return self.run_dir / "inference_model.keras"


def sample_tiles() -> tuple[np.ndarray, np.ndarray]:
    """All shipped EuroSAT RGB tiles (uint8 [N, 64, 64, 3]) and class ids, in a seeded shuffled order."""
    from training.data import load_tiles

    data = load_tiles(SAMPLE_DIR, TILE)
    order = np.random.default_rng(0).permutation(len(data.images))
    labels = np.asarray(data.labels if getattr(data, "labels", None) is not None else np.zeros(len(order)))
    return np.ascontiguousarray(np.asarray(data.images, dtype=np.uint8)[order]), labels[order]


def parity_tiles(n: int = N_PARITY) -> np.ndarray:
    """Real held-out tiles (the tail of the shuffled sample; export calibrates on a random subset of all)."""
    return sample_tiles()[0][-n:]


def _write_tiles(folder: Path, n: int) -> None:
    from PIL import Image

    if folder.is_dir() and len(list(folder.glob("*.png"))) >= n:
        return
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for i, tile in enumerate(sample_tiles()[0][:n]):
        Image.fromarray(tile).save(tmp / f"tile_{i:03d}.png")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def _trained_run(name: str, runs: Path | None) -> Path | None:
    """`runs/<dec|unet>-quick` when it holds a finished run at the benchmark tile size."""
    if runs is None:
        return None
    run = runs / RUN_NAMES[name]
    summary = run / "training_summary.json"
    if not (run / "inference_model.keras").is_file() or not summary.is_file():
        log.info("%s: no finished run, building %s instead", run, name)
        return None
    tile = json.loads(summary.read_text(encoding="utf-8")).get("tile_size")
    if tile != TILE:
        log.info("%s has tile_size %s, not %d: building %s instead", run, tile, TILE, name)
        return None
    return run


def _build_unet():  # noqa: ANN202 - (tf_keras.Model, summary, origin)
    from training.unet import build_unet
    from training.unet_config import get_profile

    config = get_profile(PROFILE)
    model = build_unet(config.tile_size, encoder=config.encoder, arch="unet")
    summary = {
        "task": "segmentation",
        "tile_size": config.tile_size,
        "threshold": 0.5,
        "metrics": {},
        "config": {"encoder": config.encoder, "arch": "unet"},
    }
    origin = (
        f"built: U-Net '{PROFILE}' profile, {config.tile_size} px, ImageNet EfficientNet-Lite0 encoder, "
        "random decoder (untrained)"
    )
    return model, summary, origin


def _build_dec():  # noqa: ANN202 - (tf_keras.Model, summary, origin)
    from training.autoencoder import compose_image_model
    from training.dec import build_dec_model
    from training.dec_config import get_profile
    from training.feature_heads import build_head_autoencoder, build_pca_head
    from training.pretrained_features import build_feature_extractor

    config = get_profile(PROFILE)
    extractor = build_feature_extractor(config.tile_size, weights="imagenet", n_views=config.views)
    tiles = sample_tiles()[0][: 8 * config.n_clusters]
    features = extractor.predict(tiles, batch_size=64, verbose=0)
    head_kind = getattr(config, "head", "mlp")
    if head_kind == "pca":  # the profile's head: PCA whitening fitted on these real tiles' features
        head, _ = build_pca_head(config, features)
    else:
        head = build_head_autoencoder(config, int(extractor.output.shape[-1]))
    dec_head = build_dec_model(head.encoder, config.n_clusters, config.alpha)
    z = head.encoder.predict(features, verbose=0)
    centres = z[np.random.default_rng(0).choice(len(z), config.n_clusters, replace=False)]
    dec_head.get_layer("q").set_weights([centres.astype(np.float32)])
    model = compose_image_model(extractor, dec_head)
    summary = {
        "task": "clustering",
        "tile_size": config.tile_size,
        "n_clusters": config.n_clusters,
        "backbone": config.backbone,
        "metrics": {},
        "config": config.to_dict(),
    }
    origin = (
        f"built: DEC '{PROFILE}' profile, {config.tile_size} px, frozen ImageNet EfficientNet-Lite0 "
        f"features x {config.views} flip views, "
        + (
            f"PCA-whitening head (embedding {config.embedding_dim}) fitted on {len(tiles)} sample tiles"
            if head_kind == "pca"
            else f"random head (hidden {config.hidden_units}, embedding {config.embedding_dim})"
        )
        + f", K={config.n_clusters} centres at sample-tile embeddings (no DEC training)"
    )
    return model, summary, origin


def _profile_config(name: str) -> dict:
    """The `agriland` profile the built model follows (a changed profile means a rebuild)."""
    if name == "unet":
        from training.unet_config import get_profile
    else:
        from training.dec_config import get_profile
    return json.loads(json.dumps(get_profile(PROFILE).to_dict(), default=str))


def _built_run(name: str) -> tuple[Path, str]:
    """Save a built (untrained-head) inference model and a minimal training summary as a run folder."""
    run = RUNS_DIR / name
    config = _profile_config(name)
    if (run / "inference_model.keras").is_file():
        saved = json.loads((run / "origin.json").read_text(encoding="utf-8"))
        if saved.get("config") == config:
            return run, saved["origin"]
        log.info("%s: the '%s' profile changed since %s was built; building again", name, PROFILE, run)
    import tf_keras

    import training  # noqa: F401  (environment before TF)
    from contract.radiometry import DEFAULT_RADIOMETRY

    tf_keras.utils.set_random_seed(0)
    model, summary, origin = _build_unet() if name == "unet" else _build_dec()
    summary["data"] = {"source": str(SAMPLE_DIR), "n_tiles": 0}
    summary["radiometry"] = DEFAULT_RADIOMETRY.model_dump()
    tmp = run.with_name(run.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "inference_model.keras")
    (tmp / "training_summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    (tmp / "origin.json").write_text(
        json.dumps({"origin": origin, "params": int(model.count_params()), "config": config}) + "\n", encoding="utf-8"
    )
    shutil.rmtree(run, ignore_errors=True)
    tmp.rename(run)
    return run, origin


def _export(model: BenchModel, variant: str) -> None:
    """export.pipeline for fp32/int8; an int8 that fails its parity gate is still written (bench-only) and logged."""
    from contract.errors import AgrilandError
    from export.pipeline import export_model

    if model.onnx(variant).is_file():
        return
    try:
        export_model(model.run_dir, MODELS_DIR, model.name, variant, calibration_source=SAMPLE_DIR)
    except AgrilandError as err:
        if variant != "int8":
            raise
        log.warning(
            "%s int8 export refused by its parity gate (%s); quantizing without the gate for timing", model.name, err
        )
        from export.variants import to_int8

        target = model.onnx(variant)
        target.parent.mkdir(parents=True, exist_ok=True)
        to_int8(model.onnx("fp32"), target, sample_tiles()[0][:-N_PARITY][:64])
        (target.parent / "UNGATED").write_text(str(err) + "\n", encoding="utf-8")


def default_runs() -> Path | None:
    """AGRILAND_BENCH_RUNS (trained quickstart runs), else ./runs when it holds them, else None (build)."""
    env = os.environ.get("AGRILAND_BENCH_RUNS")
    return Path(env) if env else ROOT / "runs"


def prepare(
    names: tuple[str, ...] = ("unet", "dec"), variants: tuple[str, ...] = ("fp32", "int8"), runs: Path | None = None
) -> dict[str, BenchModel]:
    """Find (or build) each model's run folder and export its ONNX variants under out/bench/models, once.

    A models/<name> folder exported from another origin is re-exported (origin.txt records it)."""
    _write_tiles(TILES_DIR, N_REQUEST_TILES)
    runs = runs if runs is not None else default_runs()
    models: dict[str, BenchModel] = {}
    for name in names:
        trained = _trained_run(name, runs)
        if trained is not None:
            run, origin = trained, f"trained quickstart run {trained.name} (profile '{PROFILE}')"
        else:
            run, origin = _built_run(name)
        marker = MODELS_DIR / name / "origin.txt"
        if marker.is_file() and marker.read_text(encoding="utf-8").strip() != f"{run}|{origin}":
            log.info("%s: exported from another run; exporting again", name)
            shutil.rmtree(MODELS_DIR / name)
        model = BenchModel(name, run, origin)
        for variant in variants:
            _export(model, variant)
        marker.write_text(f"{run}|{origin}\n", encoding="utf-8")
        models[name] = model
        log.info("%s: %s; ONNX %s", name, origin, ", ".join(str(model.onnx(v)) for v in variants))
    return models


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build or find and export the benchmark models to out/bench/models")
    parser.add_argument("--force", action="store_true", help="rebuild and re-export everything")
    parser.add_argument(
        "--runs",
        type=Path,
        default=None,
        help="folder with trained quickstart runs dec-quick/ and unet-quick/ (default: "
        "AGRILAND_BENCH_RUNS, else ./runs; missing runs are built)",
    )
    args = parser.parse_args(argv)
    setup_logging()
    if args.force:
        shutil.rmtree(MODELS_DIR, ignore_errors=True)
        shutil.rmtree(RUNS_DIR, ignore_errors=True)
    prepare(runs=args.runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
