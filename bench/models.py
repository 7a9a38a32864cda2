"""The benchmark's models: a trained run when runs/ has one at 256 px, else random-init builds, exported once."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as `python bench/models.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import ROOT, TILE, WORK, scene_tiles, setup_logging

log = logging.getLogger(__name__)

MODELS_DIR = WORK / "models"  # models/<name>/<variant>/{model.onnx,manifest.json}, served by the benchmarks
RUNS_DIR = WORK / "runs"
TILES_DIR = WORK / "calibration_tiles"
DEC_PROFILE = "quick"  # hidden 256, embedding 100, K=5, at 256 px; "full" (hidden 1024: a 134 M-weight Dense) OOMs tf2onnx at 22 GB here
N_CALIBRATION = 80  # 16 parity + 64 calibration tiles


@dataclass(frozen=True)
class BenchModel:
    """Where one benchmarked model lives and where it came from."""

    name: str
    run_dir: Path
    origin: str  # "trained run runs/unet" or "random init (...)"

    def onnx(self, variant: str) -> Path:
        return MODELS_DIR / self.name / variant / "model.onnx"

    @property
    def keras(self) -> Path:
        return self.run_dir / "inference_model.keras"


def _trained_run(name: str) -> Path | None:
    """runs/<name> when it holds a finished run at the benchmark tile size."""
    run = ROOT / "runs" / name
    summary = run / "training_summary.json"
    if not (run / "inference_model.keras").is_file() or not summary.is_file():
        return None
    tile = json.loads(summary.read_text(encoding="utf-8")).get("tile_size")
    if tile != TILE:
        log.info("%s has tile_size %s, not %d: benchmarking a random-init build instead", run, tile, TILE)
        return None
    return run


def _write_tiles(folder: Path, n: int) -> None:
    from PIL import Image

    if folder.is_dir() and len(list(folder.glob("*.png"))) >= n:
        return
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for i, tile in enumerate(scene_tiles(n, TILE, seed=7)):
        Image.fromarray(tile).save(tmp / f"tile_{i:03d}.png")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)


def _random_run(name: str) -> tuple[Path, str]:
    """Save a random-init inference model and a minimal training summary as a run folder."""
    run = RUNS_DIR / name
    if (run / "inference_model.keras").is_file():
        return run, json.loads((run / "origin.json").read_text(encoding="utf-8"))["origin"]
    import tf_keras

    import training  # noqa: F401  (environment before TF)

    tf_keras.utils.set_random_seed(0)
    data = {"source": str(TILES_DIR), "n_tiles": N_CALIBRATION}
    if name == "unet":
        from training.unet import build_unet

        model = build_unet(TILE, encoder="inceptionv3", arch="unet")
        summary = {"task": "segmentation", "tile_size": TILE, "threshold": 0.5, "data": data, "metrics": {},
                   "config": {"encoder": "inceptionv3", "arch": "unet"}}
        origin = "random init: build_unet(256, encoder='inceptionv3')"
    else:
        from training.autoencoder import build_autoencoder
        from training.dec import build_dec_model
        from training.dec_config import get_profile

        config = get_profile(DEC_PROFILE).with_overrides(tile_size=TILE)
        model = build_dec_model(build_autoencoder(config).encoder, config.n_clusters, config.alpha)
        summary = {"task": "clustering", "tile_size": TILE, "data": data, "metrics": {}, "config": config.to_dict()}
        origin = (f"random init: DEC '{DEC_PROFILE}' profile at {TILE} px (ResNet-50 encoder, hidden "
                  f"{config.hidden_units}, embedding {config.embedding_dim}, K={config.n_clusters})")
    tmp = run.with_name(run.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / "inference_model.keras")
    (tmp / "training_summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    (tmp / "origin.json").write_text(json.dumps({"origin": origin, "params": int(model.count_params())}) + "\n",
                                     encoding="utf-8")
    shutil.rmtree(run, ignore_errors=True)
    tmp.rename(run)
    return run, origin


@contextlib.contextmanager
def _tf2onnx_optimizers(enabled: bool) -> Iterator[None]:
    """Turn tf2onnx's graph optimizers off for the DEC export (bench-only workaround, see docs/benchmarks.md).

    At 256 px the DEC encoder flattens 8x8x2048 into a 131072 x hidden Dense; tf2onnx's optimizer passes
    (66 transpose-optimizer iterations and the passes after them) keep re-materialising that weight and
    grew past 18 GB RSS (quick profile) / 22 GB (full profile, OOM-killed) on this 23 GB machine. Without
    them the conversion takes ~20 s and 4 GB; ONNX Runtime's own graph optimizer (ORT_ENABLE_ALL) removes
    the leftover Transposes and fuses BatchNorm when the session is created.
    """
    if enabled:
        yield
        return
    from tf2onnx import optimizer

    saved = dict(optimizer._optimizers)  # noqa: SLF001 - no public switch in tf2onnx.convert.from_keras callers
    optimizer._optimizers.clear()  # noqa: SLF001
    log.warning("DEC export: tf2onnx graph optimizers disabled (they exhaust memory on the 256 px Dense)")
    try:
        yield
    finally:
        optimizer._optimizers.update(saved)  # noqa: SLF001


def _export(model: BenchModel, variant: str) -> None:
    """export.pipeline for fp32/int8; an int8 that fails its parity gate is still written (bench-only) and logged."""
    from contract.errors import AgrilandError
    from export.pipeline import export_model

    if model.onnx(variant).is_file():
        return
    try:
        with _tf2onnx_optimizers(model.name != "dec"):
            export_model(model.run_dir, MODELS_DIR, model.name, variant, calibration_source=TILES_DIR)
    except AgrilandError as err:
        if variant != "int8":
            raise
        log.warning("%s int8 export refused by its parity gate (%s); quantizing without the gate for timing", model.name,
                    err)
        from bench.common import scene_tiles as _tiles
        from export.variants import to_int8

        target = model.onnx(variant)
        target.parent.mkdir(parents=True, exist_ok=True)
        to_int8(model.onnx("fp32"), target, _tiles(64, TILE, seed=7)[16:])
        (target.parent / "UNGATED").write_text(str(err) + "\n", encoding="utf-8")


def prepare(names: tuple[str, ...] = ("unet", "dec"), variants: tuple[str, ...] = ("fp32", "int8")) -> dict[str, BenchModel]:
    """Build (or reuse) each model's run folder and its exported ONNX variants under out/bench/models."""
    _write_tiles(TILES_DIR, N_CALIBRATION)
    models: dict[str, BenchModel] = {}
    for name in names:
        trained = _trained_run(name)
        if trained is not None:
            run, origin = trained, f"trained run {trained.relative_to(ROOT)}"
        else:
            run, origin = _random_run(name)
        model = BenchModel(name, run, origin)
        for variant in variants:
            _export(model, variant)
        models[name] = model
        log.info("%s: %s; ONNX %s", name, origin, ", ".join(str(model.onnx(v)) for v in variants))
    return models


def parity_tiles(n: int = 32) -> np.ndarray:
    """Held-out tiles (a different seed from calibration) for int8-vs-fp32 agreement."""
    return scene_tiles(n, TILE, seed=11)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build and export the benchmark models to out/bench/models")
    parser.add_argument("--force", action="store_true", help="rebuild and re-export everything")
    args = parser.parse_args(argv)
    setup_logging()
    if args.force:
        shutil.rmtree(MODELS_DIR, ignore_errors=True)
        shutil.rmtree(RUNS_DIR, ignore_errors=True)
    prepare()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
