"""One scene of a batch run: windowed segmentation into an atomic scene folder, or a failure record."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

from batch.config import BatchConfig
from batch.inputs import SceneInput
from batch.vectors import FILE_NAMES, polygons_frame, write_vectors
from contract.atomic import atomic_dir
from contract.errors import AgrilandError
from contract.manifest import Manifest
from inference.scenes.outputs import write_json
from inference.scenes.segment import segment_file
from inference.scenes.windowed import Predict

log = logging.getLogger(__name__)

SCENES_DIR = "scenes"
RECORD_FILE = "scene.json"
FLOAT_FIELDS = ("arable_ha", "valid_ha", "arable_fraction", "seconds")
INT_FIELDS = ("n_polygons", "n_tiles", "n_tiles_skipped", "width", "height")
STR_FIELDS = ("scene_id", "href", "status", "error", "crs", "outputs", "radiometry")


def scene_dir(out: Path, scene_id: str) -> Path:
    return out / SCENES_DIR / scene_id


def answer_key(scene: SceneInput, config: BatchConfig, manifest: Manifest) -> dict:
    """Everything that changes a scene's answer: a rerun skips a scene only when all of it agrees (and the files
    asked for were written: see `finished_record`)."""
    return {"href": scene.href, **config.scene_request().answer_key(manifest), "calibration": scene.calibration}


def wanted_files(config: BatchConfig) -> set[str]:
    """The files a scene folder must hold for this run's options."""
    names = {"mask.tif", *(FILE_NAMES[f] for f in config.formats)}
    return names | {"probability.tif"} if config.probability else names


def finished_record(out: Path, scene: SceneInput, key: dict, wanted: set[str] | None = None) -> dict | None:
    """The record of a scene finished earlier with the same answer key (model, input, options) and every
    `wanted` file, or None."""
    path = scene_dir(out, scene.scene_id) / RECORD_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if record.get("status") != "ok":
        return None
    earlier = record.get("answer_key")
    if earlier != key:
        changed = sorted(k for k in key if not isinstance(earlier, dict) or earlier.get(k) != key[k])
        log.info("%s: finished earlier with other %s; running it again", scene.scene_id, ", ".join(changed))
        return None
    try:
        written = set(json.loads(record.get("outputs") or "{}"))
    except ValueError:
        written = set()
    if wanted and not wanted <= written:
        log.info(
            "%s: finished earlier without %s; running it again", scene.scene_id, ", ".join(sorted(wanted - written))
        )
        return None
    return record


def _row(scene: SceneInput, status: str, **values: object) -> dict:
    """A fixed-schema row (Arrow needs the same column types from every actor)."""
    row: dict = {k: 0.0 for k in FLOAT_FIELDS} | {k: 0 for k in INT_FIELDS} | {k: "" for k in STR_FIELDS}
    row.update(scene_id=scene.scene_id, href=scene.href, status=status, **values)
    return row


def run_scene(scene: SceneInput, predict: Predict, manifest: Manifest, config: BatchConfig) -> dict:
    """Segment one scene into `out/scenes/<id>/`; every failure becomes a `failed` row, never an exception."""
    started = time.monotonic()
    key = answer_key(scene, config, manifest)
    model_version, model_sha256 = manifest.version, manifest.onnx_sha256
    request = replace(config.scene_request(), calibration=scene.pixel_calibration())
    resolved = request.resolve(manifest, config.batch_size, config.block_size)
    params = resolved.params
    dest = scene_dir(config.out, scene.scene_id)
    try:
        with atomic_dir(dest, overwrite=True) as tmp:
            targets = {"mask": tmp / "mask.tif"}
            if config.probability:
                targets["probability"] = tmp / "probability.tif"
            result = segment_file(scene.href, predict, resolved, targets)
            frame = polygons_frame(result.polygons, scene.scene_id, model_version, model_sha256)
            vectors = write_vectors(frame, tmp, config.formats)
            files = [p.name for p in result.outputs.values()] + [p.name for p in vectors.values()]
            summary = result.summary
            row = _row(
                scene,
                "ok",
                arable_ha=summary.arable_ha,
                valid_ha=summary.valid_ha,
                arable_fraction=summary.arable_fraction,
                n_polygons=summary.n_polygons,
                n_tiles=result.stats.n_tiles,
                n_tiles_skipped=result.stats.n_tiles_skipped,
                width=result.width,
                height=result.height,
                crs=summary.crs,
                seconds=round(time.monotonic() - started, 3),
                outputs=json.dumps({name: f"{SCENES_DIR}/{scene.scene_id}/{name}" for name in files}),
                radiometry="" if result.radiometry is None else result.radiometry.model_dump_json(),
            )
            write_json(
                tmp / RECORD_FILE,
                {
                    **row,
                    "radiometry": json.loads(row["radiometry"] or "null"),
                    "answer_key": key,
                    "model_version": model_version,
                    "model_sha256": model_sha256,
                    "threshold": params.threshold,
                    "tile_size": params.tile_size,
                    "overlap": params.overlap,
                    "sieve_px": params.sieve_px,
                },
            )
        dest.chmod(0o755)  # the temporary folder was private (0700)
        log.info("%s: ok, %.2f ha arable, %.1f s", scene.scene_id, row["arable_ha"], row["seconds"])
        return row
    except AgrilandError as err:
        error = str(err)
    except Exception as err:  # one broken scene must not stop the others; the run manifest says why
        log.exception("%s failed", scene.scene_id)
        error = f"{type(err).__name__}: {err}"
    log.warning("%s: failed: %s", scene.scene_id, error)
    return _row(scene, "failed", error=error, seconds=round(time.monotonic() - started, 3))


def polygons_file(out: Path, scene_id: str) -> Path:
    return scene_dir(out, scene_id) / FILE_NAMES["parquet"]
