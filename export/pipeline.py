"""Export pipeline: run folder -> `models/<name>/<variant>/{model.onnx,manifest.json}`, parity-checked, atomic."""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from contract.errors import AgrilandError
from export.manifest_builder import KERAS_FILE, build_manifest, read_summary
from export.onnx_export import OUTPUT_NAMES, convert_keras
from export.parity import check_parity, keras_outputs
from export.variants import to_fp16, to_int8
from contract.manifest import MODEL_FILE, VARIANTS, read_manifest, verify_artifact, write_manifest
from serving.runtime import artifact_folder

log = logging.getLogger(__name__)

Name = Literal["dec", "unet"]
Variant = Literal["fp32", "fp16", "int8"]
MAX_CALIBRATION_TILES = 64
_SYNTHETIC = re.compile(r"^synthetic:(\d+) tiles \(seed (\d+)\)$")


@dataclass
class ExportInputs:
    """What every variant of one export shares: the run summary, the tiles and the Keras reference outputs."""

    run_dir: Path
    name: Name
    summary: dict
    parity_tiles: np.ndarray
    calibration_tiles: np.ndarray
    keras_reference: dict[str, np.ndarray]
    tile_source: str
    model: object


def load_reference_tiles(source: str | Path, tile_size: int, origin: str) -> np.ndarray:
    """uint8 tiles from a data source readable by training.data.load_tiles (or a seeded synthetic set)."""
    from training.data import load_tiles

    text = str(source)
    match = _SYNTHETIC.match(text)
    if match:  # a run trained on freshly generated synthetic tiles: regenerate the same set
        from training.synthetic import make_tiles

        log.info("regenerating the run's synthetic training tiles (%s)", text)
        return make_tiles(int(match[1]), tile_size, seed=int(match[2])).images
    try:
        images = load_tiles(Path(text), tile_size).images
    except AgrilandError as err:
        raise AgrilandError(f"cannot read parity/calibration tiles from {origin} {text!r}: {err}. Pass "
                            "--calibration-data PATH (a folder or pairs CSV of real training tiles)") from err
    if len(images) == 0:
        raise AgrilandError(f"{origin} {text!r} holds no tiles; pass --calibration-data PATH")
    return np.asarray(images, dtype=np.uint8)


def prepare(run_dir: Path, name: Name, calibration_source: Path | None, n_parity_tiles: int) -> ExportInputs:
    """Read the run, load the Keras model and the tiles, and compute the Keras reference outputs once."""
    from training.keras_objects import load_inference_model

    if n_parity_tiles < 1:
        raise AgrilandError(f"--parity-tiles must be >= 1, got {n_parity_tiles}")
    summary = read_summary(run_dir, name)
    tile = int(summary["tile_size"])
    model = load_inference_model(run_dir / KERAS_FILE)
    shape = tuple(model.inputs[0].shape)
    if shape[1:] != (tile, tile, 3):
        raise AgrilandError(f"{run_dir / KERAS_FILE} takes {shape[1:]} tiles but its summary says tile_size {tile}")
    if calibration_source is not None:
        source, origin = str(calibration_source), "--calibration-data"
    else:
        source, origin = (summary.get("data") or {}).get("source"), f"{run_dir}/training_summary.json data.source"
        if not source:
            raise AgrilandError(f"{origin} is missing: pass --calibration-data PATH (real training tiles)")
    images = load_reference_tiles(source, tile, origin)
    order = np.random.default_rng(0).permutation(len(images))
    parity = images[order[:n_parity_tiles]]
    rest = order[n_parity_tiles:] if len(order) > n_parity_tiles else order
    calibration = images[np.sort(rest[:MAX_CALIBRATION_TILES])]
    log.info("%s: %d parity tiles and %d calibration tiles from %s", name, len(parity), len(calibration), source)
    reference = keras_outputs(model, parity, OUTPUT_NAMES[name])
    return ExportInputs(run_dir, name, summary, parity, calibration, reference, str(source), model)


def _publish(staging: Path, final: Path) -> None:
    """Swap `staging` into place as `final` (the old folder is removed only once the new one is there)."""
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _fp32_is_current(folder: Path, inputs: ExportInputs) -> bool:
    from export.manifest_builder import model_version

    if not (folder / MODEL_FILE).is_file():
        return False
    try:
        verify_artifact(folder)
        return read_manifest(folder).version == model_version(inputs.run_dir)
    except AgrilandError as err:
        log.warning("existing fp32 export in %s is unusable (%s); exporting it again", folder, err)
        return False


def export_variant(inputs: ExportInputs, models_dir: Path, variant: Variant) -> Path:
    """Write one variant's folder atomically; variants derive from the (current) fp32 ONNX."""
    final = artifact_folder(models_dir, inputs.name, variant)
    fp32_folder = artifact_folder(models_dir, inputs.name, "fp32")
    if variant != "fp32" and not _fp32_is_current(fp32_folder, inputs):
        log.info("%s: exporting fp32 first (variants derive from it)", inputs.name)
        export_variant(inputs, models_dir, "fp32")
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{variant}.tmp-", dir=final.parent))
    try:
        model_path = staging / MODEL_FILE
        extra: dict[str, object] = {"parity_source": inputs.tile_source}
        tile = int(inputs.summary["tile_size"])
        if variant == "fp32":
            report = convert_keras(inputs.model, inputs.name, tile, model_path)
            extra["graph"] = {"nodes": report.n_nodes, "transposes": report.n_transposes,
                              "input_path": list(report.input_prefix)}
        elif variant == "fp16":
            to_fp16(fp32_folder / MODEL_FILE, model_path)
        else:
            to_int8(fp32_folder / MODEL_FILE, model_path, inputs.calibration_tiles)
            extra["calibration_tiles"] = int(len(inputs.calibration_tiles))
        threshold = float(inputs.summary.get("threshold", 0.5))
        parity = check_parity(inputs.keras_reference, model_path, inputs.parity_tiles, variant, threshold)
        manifest = build_manifest(inputs.run_dir, staging, inputs.name, variant, parity, inputs.summary, extra)
        write_manifest(staging, manifest)
        verify_artifact(staging)
        _publish(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported %s/%s -> %s", inputs.name, variant, final)
    return final


def export_models(run_dir: Path | str, models_dir: Path | str, name: Name, variants: list[str],
                  calibration_source: Path | None = None, n_parity_tiles: int = 16) -> list[Path]:
    """Export several variants of one model, sharing the Keras model, tiles and reference outputs."""
    if name not in OUTPUT_NAMES:
        raise AgrilandError(f"unknown model {name!r}; choose dec or unet")
    for variant in variants:
        if variant not in VARIANTS:
            raise AgrilandError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    inputs = prepare(Path(run_dir), name, calibration_source, n_parity_tiles)
    ordered = sorted(set(variants), key=VARIANTS.index)
    return [export_variant(inputs, Path(models_dir), variant) for variant in ordered]  # type: ignore[arg-type]


def export_model(run_dir: Path | str, models_dir: Path | str, name: Name, variant: Variant,
                 calibration_source: Path | None = None, n_parity_tiles: int = 16) -> Path:
    """Export `run_dir`'s model as `models_dir/name/variant/{model.onnx,manifest.json}` and return that folder."""
    return export_models(run_dir, models_dir, name, [variant], calibration_source, n_parity_tiles)[0]
