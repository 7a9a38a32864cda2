"""`agriland batch` on Ray Data: scenes to an ONNX Runtime actor pool, run manifest, resume, failure isolation."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
from tqdm import tqdm

from batch.config import BatchConfig
from batch.inputs import SceneInput
from batch.scene_task import (
    SCENES_DIR,
    STR_FIELDS,
    answer_key,
    finished_record,
    polygons_file,
    run_scene,
    scene_dir,
    wanted_files,
)
from batch.vectors import merge_polygons, write_summary
from contract.artifacts import verify_artifact
from contract.errors import AgrilandError
from inference.models.answering import answering_model_name
from inference.models.onnx_model import choose_variant
from inference.scenes.outputs import write_json

log = logging.getLogger(__name__)

RUN_MANIFEST = "run.json"
MERGED = "polygons.parquet"
SUMMARY = "summary.csv"
LOCAL_OBJECT_STORE = 256 * 1024 * 1024


class SceneWorker:
    """A Ray Data actor: one ONNX Runtime session, scenes in, result rows out."""

    def __init__(self, config: BatchConfig, model_folder: str) -> None:
        from inference.models.onnx_model import OnnxModel, predictor
        from inference.models.runtime import RuntimeOptions

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.config = config
        self.model = OnnxModel.load(
            Path(model_folder),
            providers=config.provider,
            intra_op_threads=config.threads_per_actor,
            runtime=RuntimeOptions.from_env(),
        )
        self.predict = predictor(self.model)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        rows = [
            run_scene(SceneInput(str(sid), str(href), str(calibration)), self.predict, self.model.manifest, self.config)
            for sid, href, calibration in zip(batch["scene_id"], batch["href"], batch["calibration"])
        ]
        return {key: [row[key] for row in rows] for key in rows[0]}


@dataclass
class RunReport:
    """What a run did; `exit_code` is 0 when every scene is done, 1 when some failed."""

    manifest_path: Path
    ok: int
    skipped: int
    failed: int

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def _clean_leftovers(out: Path) -> None:
    """Remove temporary scene folders a killed run left behind (finished scenes are never temporary)."""
    folder = out / SCENES_DIR
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name.startswith(".") and (".tmp-" in entry.name or ".old-" in entry.name):
                shutil.rmtree(entry, ignore_errors=True)


def _init_ray(config: BatchConfig) -> None:
    import ray

    address = config.address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():
        return
    if address:
        log.info("connecting to the Ray cluster at %s", address)
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(
            num_cpus=config.num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=LOCAL_OBJECT_STORE,
            configure_logging=False,
        )
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # one tqdm bar over scenes instead
    context.print_on_execution_start = False


def _actors(config: BatchConfig, n_scenes: int) -> int:
    import ray

    if config.actors is not None:
        return min(config.actors, n_scenes)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(n_scenes, cpus // config.threads_per_actor))


def _process(config: BatchConfig, todo: list[SceneInput], model_folder: Path):
    """Yield result rows as actors finish scenes."""
    import ray.data

    _init_ray(config)
    actors = _actors(config, len(todo))
    log.info("%d scene(s) on %d ONNX Runtime actor(s) x %d thread(s)", len(todo), actors, config.threads_per_actor)
    dataset = ray.data.from_items(
        [{"scene_id": s.scene_id, "href": s.href, "calibration": s.calibration} for s in todo],
        override_num_blocks=len(todo),
    )
    results = dataset.map_batches(
        SceneWorker,
        fn_constructor_kwargs={"config": config, "model_folder": str(model_folder)},
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=config.threads_per_actor,
        num_gpus=config.gpus_per_actor or None,
    )
    yield from results.iter_rows()


def run_batch(config: BatchConfig, scenes: list[SceneInput], progress: bool = True) -> RunReport:
    """Segment every scene not already finished; keep `run.json` current after each scene."""
    config.check()
    name = answering_model_name(config.models, config.mask_mode)
    model_folder, fallback = choose_variant(config.models, name, config.variant)
    if fallback:
        log.warning("%s", fallback)
    manifest = verify_artifact(model_folder)
    if manifest.task != ("fields" if name == "fields" else "segmentation"):
        raise AgrilandError(f"{model_folder} holds a {manifest.task} model, not the {name} model")
    config.scene_request().resolve(manifest)  # options this model cannot answer with fail here, not per scene
    config.out.mkdir(parents=True, exist_ok=True)
    _clean_leftovers(config.out)
    started = time.monotonic()
    records: dict[str, dict] = {}
    todo: list[SceneInput] = []
    for scene in scenes:
        key = answer_key(scene, config, manifest)
        done = finished_record(config.out, scene, key, wanted_files(config))
        if done is None:
            todo.append(scene)
        else:
            records[scene.scene_id] = {
                **{k: done[k] for k in done if k not in ("model_version", "model_sha256", "answer_key")},
                "status": "skipped",
            }
    log.info("%d scene(s): %d already finished (resume), %d to run", len(scenes), len(records), len(todo))
    run = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": {
            "folder": str(model_folder),
            "name": manifest.name,
            "version": manifest.version,
            "variant": manifest.variant,
            "sha256": manifest.onnx_sha256,
            "tile_size": manifest.tile_size,
        },
        "config": config.public(),
        "inputs": [{"scene_id": s.scene_id, "href": s.href} for s in scenes],
        "scenes": records,
    }
    manifest_path = write_json(config.out / RUN_MANIFEST, run)
    if todo:
        bar = tqdm(total=len(todo), desc="scenes", unit="scene", disable=not progress)
        for row in _process(config, todo, model_folder):
            row = {k: (str(v) if k in STR_FIELDS else v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            row["radiometry"] = json.loads(row["radiometry"]) if row.get("radiometry") else None
            records[row["scene_id"]] = row
            bar.update(1)
            bar.set_postfix(failed=sum(r["status"] == "failed" for r in records.values()))
            write_json(manifest_path, run)
        bar.close()
    order = [s.scene_id for s in scenes]
    run["scenes"] = {sid: records[sid] for sid in order if sid in records}
    finished = [sid for sid in order if records.get(sid, {}).get("status") in ("ok", "skipped")]
    merged_path, shared_ha = merge_polygons(
        [(polygons_file(config.out, sid), scene_dir(config.out, sid) / "mask.tif") for sid in finished],
        config.out / MERGED,
    )
    merged_ha = float(gpd.read_parquet(merged_path)["area_ha"].sum())
    write_summary([records[sid] for sid in order if sid in records], config.out / SUMMARY, merged_ha, shared_ha)
    counts = {s: sum(r["status"] == s for r in records.values()) for s in ("ok", "skipped", "failed")}
    wall = time.monotonic() - started
    tiles = sum(int(records[sid].get("n_tiles", 0)) for sid in order if records.get(sid, {}).get("status") == "ok")
    run.update(
        finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        timings={"wall_s": round(wall, 3), "tiles": tiles, "tiles_per_s": round(tiles / wall, 3) if wall else 0.0},
        counts=counts,
        overlap={
            "shared_valid_ha": round(shared_ha, 6),
            "rule": "where scenes overlap, the first scene in input order that has data there answers; "
            "polygons.parquet and the summary TOTAL count each place once",
        },
        failures={sid: r["error"] for sid, r in records.items() if r["status"] == "failed"},
        outputs={"merged_polygons": MERGED, "summary": SUMMARY, "scenes": SCENES_DIR},
    )
    write_json(manifest_path, run)
    log.info("batch done: %(ok)d ok, %(skipped)d skipped (resume), %(failed)d failed", counts)
    return RunReport(manifest_path, counts["ok"], counts["skipped"], counts["failed"])
