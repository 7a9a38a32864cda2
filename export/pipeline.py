"""Export pipeline: run folder -> `models/<name>/<variant>/{model.onnx,manifest.json}`, parity-checked, atomic."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np

from contract.artifacts import MODEL_FILE, VARIANTS, artifact_folder, verify_artifact
from contract.atomic import atomic_dir, write_text_atomic
from contract.errors import AgrilandError
from contract.manifest import read_manifest, write_manifest
from export.manifest_builder import KERAS_FILE, build_manifest, read_summary
from export.onnx_export import OUTPUT_NAMES, GraphOptimizer, convert_keras
from export.parity import MIN_GATE_TILES, check_parity, keras_outputs
from export.reference_tiles import tile_sources
from export.variants import VariantOutcome, gated, to_fp16, to_int8

log = logging.getLogger(__name__)

Name = Literal["dec", "unet", "fields"]
PARITY_CHIPS_FILE = "parity_chips.npy"  # a field run's held-out chips (real imagery), its default parity tiles
Variant = Literal["fp32", "fp16", "int8"]
MAX_CALIBRATION_TILES = 64
SUMMARY_NAME = "export_summary.json"  # models/<name>/export_summary.json: what each variant's export did


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
    calibration_source: str = ""
    graph_optimizer: GraphOptimizer = "auto"
    min_gate_tiles: int = MIN_GATE_TILES
    parity_split: str = ""  # whether the parity tiles were held out from training (said in parity.gate)


def prepare(
    run_dir: Path,
    name: Name,
    calibration_source: Path | None,
    n_parity_tiles: int,
    n_calibration_tiles: int = MAX_CALIBRATION_TILES,
    parity_source: Path | None = None,
) -> ExportInputs:
    """Read the run, load the Keras model and the tiles, and compute the Keras reference outputs once.

    int8 calibration tiles come from `calibration_source` (a folder, class folders, GeoTIFF tiles or a pairs CSV
    of real tiles, read with training.data's loader), else from the training data recorded in the run's
    training_summary.json. Parity tiles come from `parity_source`, else the run's training data (else, when
    that cannot be read, `calibration_source`). Drawn from one source, parity and calibration tiles are
    disjoint (they overlap only when it holds too few tiles).
    """
    from training.keras_objects import load_inference_model

    if n_parity_tiles < 1:
        raise AgrilandError(f"--parity-tiles must be >= 1, got {n_parity_tiles}")
    if n_calibration_tiles < 1:
        raise AgrilandError(f"--calibration-tiles must be >= 1, got {n_calibration_tiles}")
    summary = read_summary(run_dir, name)
    tile = int(summary["tile_size"])
    model = load_inference_model(run_dir / KERAS_FILE)
    shape = tuple(model.inputs[0].shape)
    if shape[1:] != (tile, tile, 3):
        raise AgrilandError(f"{run_dir / KERAS_FILE} takes {shape[1:]} tiles but its summary says tile_size {tile}")
    chips = run_dir / PARITY_CHIPS_FILE
    if name == "fields" and parity_source is None and calibration_source is None:
        if not chips.is_file():
            raise AgrilandError(f"{chips} is missing: pass --parity-data PATH (image tiles) to check the export")
        images = np.load(chips, allow_pickle=False)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (tile, tile, 3):
            raise AgrilandError(f"{chips} holds {images.dtype} {images.shape}, not uint8 [N, {tile}, {tile}, 3] chips")
        source = cal_source = str(chips)
        cal_images = images
    else:
        images, source, cal_images, cal_source = tile_sources(run_dir, summary, tile, calibration_source, parity_source)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))
    parity = images[order[:n_parity_tiles]]
    if cal_images is not images:
        rest = rng.permutation(len(cal_images))
    elif len(order) > n_parity_tiles:
        rest = order[n_parity_tiles:]
    else:
        log.warning("%s: %s holds only %d tiles, so int8 calibration reuses the parity tiles", name, source, len(order))
        rest = order
    calibration = cal_images[np.sort(rest[:n_calibration_tiles])]
    log.info(
        "%s: %d parity tiles from %s, %d int8 calibration tiles from %s",
        name,
        len(parity),
        source,
        len(calibration),
        cal_source,
    )
    reference = keras_outputs(model, parity, OUTPUT_NAMES[name])
    split = (
        "held-out tiles from --parity-data"
        if parity_source is not None
        else f"held-out validation chips of the run ({PARITY_CHIPS_FILE})"
        if source == str(chips)
        else "tiles of the run's training data, not held out: pass --parity-data for a held-out figure"
    )
    return ExportInputs(
        run_dir,
        name,
        summary,
        parity,
        calibration,
        reference,
        str(source),
        model,
        calibration_source=cal_source,
        parity_split=split,
    )


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
    with atomic_dir(final, overwrite=True) as staging:
        model_path = staging / MODEL_FILE
        extra: dict[str, object] = {"parity_source": inputs.tile_source}
        tile = int(inputs.summary["tile_size"])
        if variant == "fp32":
            report = convert_keras(inputs.model, inputs.name, tile, model_path, inputs.graph_optimizer)
            extra["graph"] = {
                "nodes": report.n_nodes,
                "transposes": report.n_transposes,
                "input_path": list(report.input_prefix),
                "optimizer": report.optimizer,
            }
        elif variant == "fp16":
            to_fp16(fp32_folder / MODEL_FILE, model_path)
        else:
            to_int8(fp32_folder / MODEL_FILE, model_path, inputs.calibration_tiles)
            extra["calibration_tiles"] = int(len(inputs.calibration_tiles))
            extra["calibration_source"] = inputs.calibration_source or inputs.tile_source
        threshold = float(inputs.summary.get("threshold", 0.5))
        parity = check_parity(
            inputs.keras_reference,
            model_path,
            inputs.parity_tiles,
            variant,
            threshold,
            inputs.min_gate_tiles,
            inputs.parity_split,
        )
        manifest = build_manifest(inputs.run_dir, staging, inputs.name, variant, parity, inputs.summary, extra)
        write_manifest(staging, manifest)
        verify_artifact(staging)
    log.info("exported %s/%s -> %s", inputs.name, variant, final)
    return final


def _drop_stale(models_dir: Path, name: str, outcome: VariantOutcome) -> None:
    """Remove a previous export of a variant that was just dropped: it belongs to another model version."""
    folder = artifact_folder(models_dir, name, outcome.variant)
    if folder.exists():
        log.warning(
            "%s/%s: removing the previous export in %s (this export dropped that variant)",
            name,
            outcome.variant,
            folder,
        )
        shutil.rmtree(folder)


def write_export_summary(models_dir: Path, inputs: ExportInputs, outcomes: list[VariantOutcome]) -> Path:
    """Record each variant's fate in `models_dir/<name>/export_summary.json` (merged with earlier entries of
    the same model version) and return its path."""
    from export.manifest_builder import model_version

    path = Path(models_dir) / inputs.name / SUMMARY_NAME
    version = model_version(inputs.run_dir)
    previous: dict = {}
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            log.warning("%s is not valid JSON; writing it afresh", path)
    variants = previous.get("variants", {}) if previous.get("version") == version else {}
    for outcome in outcomes:
        variants[outcome.variant] = outcome.to_json()
    summary = {
        "name": inputs.name,
        "version": version,
        "run": str(inputs.run_dir),
        "parity_source": inputs.tile_source,
        "parity_tiles": int(len(inputs.parity_tiles)),
        "calibration_source": inputs.calibration_source or inputs.tile_source,
        "calibration_tiles": int(len(inputs.calibration_tiles)),
        "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "variants": variants,
    }
    return write_text_atomic(path, json.dumps(summary, indent=2) + "\n")


def run_export(
    run_dir: Path | str,
    models_dir: Path | str,
    name: Name,
    variants: list[str],
    calibration_source: Path | None = None,
    n_parity_tiles: int = 64,
    strict: bool = False,
    n_calibration_tiles: int = MAX_CALIBRATION_TILES,
    graph_optimizer: GraphOptimizer = "auto",
    parity_source: Path | None = None,
    min_gate_tiles: int = MIN_GATE_TILES,
) -> list[VariantOutcome]:
    """Export several variants of one model, sharing the Keras model, tiles and reference outputs.

    fp32 must pass its parity gate (else AgrilandError and nothing is published). fp16/int8 that miss theirs
    are dropped with a warning, recorded in export_summary.json, unless `strict`.
    """
    if name not in OUTPUT_NAMES:
        raise AgrilandError(f"unknown model {name!r}; choose dec, unet or fields")
    for variant in variants:
        if variant not in VARIANTS:
            raise AgrilandError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    inputs = prepare(Path(run_dir), name, calibration_source, n_parity_tiles, n_calibration_tiles, parity_source)
    inputs.graph_optimizer = graph_optimizer
    inputs.min_gate_tiles = min_gate_tiles
    models_dir = Path(models_dir)
    outcomes: list[VariantOutcome] = []
    for variant in sorted(set(variants), key=VARIANTS.index):
        outcome = gated(variant, lambda v=variant: export_variant(inputs, models_dir, v), strict)  # type: ignore[misc]
        if outcome.status == "dropped":
            _drop_stale(models_dir, name, outcome)
        else:
            manifest = read_manifest(outcome.folder)
            outcome = VariantOutcome(
                variant, "exported", outcome.folder, parity=manifest.parity.model_dump(mode="json")
            )
        outcomes.append(outcome)
    log.info("%s export summary: %s", name, write_export_summary(models_dir, inputs, outcomes))
    return outcomes


def export_model(
    run_dir: Path | str,
    models_dir: Path | str,
    name: Name,
    variant: Variant,
    calibration_source: Path | None = None,
    n_parity_tiles: int = 64,
    min_gate_tiles: int = MIN_GATE_TILES,
) -> Path:
    """Export `run_dir`'s model as `models_dir/name/variant/{model.onnx,manifest.json}` and return that folder.

    One variant asked for by name must exist afterwards: a missed gate raises (strict)."""
    outcomes = run_export(
        run_dir,
        models_dir,
        name,
        [variant],
        calibration_source,
        n_parity_tiles,
        strict=True,
        min_gate_tiles=min_gate_tiles,
    )
    return outcomes[0].folder  # type: ignore[return-value]
