"""Build the serving Manifest of one exported variant from its run folder, ONNX graph and parity figures."""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import onnx

from contract.artifacts import MODEL_FILE, sha256_file
from contract.errors import AgrilandError
from contract.manifest import FieldModelSpec, Manifest, Parity, TensorSpec
from contract.radiometry import DEFAULT_RADIOMETRY, Radiometry
from training.cluster_naming import NAMES_FILE
from training.cluster_naming import read_cluster_names as training_cluster_names

log = logging.getLogger(__name__)

SUMMARY_FILE = "training_summary.json"
KERAS_FILE = "inference_model.keras"
TASKS = {"dec": "clustering", "unet": "segmentation", "fields": "fields"}
_LIBRARIES = (
    "agriland",
    "tensorflow",
    "tf-keras",
    "tf2onnx",
    "onnx",
    "onnxconverter-common",
    "onnxruntime-gpu",
    "onnxruntime",
    "numpy",
)
_DTYPES = {
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.INT64: "int64",
}


# Rotations averaged per U-Net tile at inference (inference/models/tta.py). Measured on the 30 real NAIP field images
# (docs/field_evaluation.md): 4 views raised pixel IoU 0.60 -> 0.66 and object F1 0.41 -> 0.43 at 4x the compute.
SEGMENTATION_TTA_VIEWS = 4


def read_summary(run_dir: Path, name: str) -> dict:
    """The run's training_summary.json, checked for the fields export needs."""
    path = run_dir / SUMMARY_FILE
    if not path.is_file():
        raise AgrilandError(f"no {SUMMARY_FILE} in {run_dir}: train first (agriland train-{name} --run {run_dir})")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise AgrilandError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(summary, dict):
        raise AgrilandError(f"{path} must hold a JSON object")
    if summary.get("task") != TASKS[name]:
        raise AgrilandError(
            f"{path}: task is {summary.get('task')!r}, but exporting {name!r} needs {TASKS[name]!r}"
            " (is --run pointing at the right run folder?)"
        )
    tile = summary.get("tile_size")
    if not isinstance(tile, int) or tile <= 0:
        raise AgrilandError(f"{path}: field tile_size must be a positive integer, got {tile!r}")
    if not isinstance(summary.get("data", {}), dict):
        raise AgrilandError(f"{path}: field data must be an object")
    return summary


def read_cluster_names(run_dir: Path, n_clusters: int | None) -> dict[str, str]:
    """cluster_names.json of a DEC run ({} when absent), checked against K."""
    if not (run_dir / NAMES_FILE).is_file():
        log.warning(
            "no %s in %s: the dec manifest has no cluster names (name them with `agriland clusters "
            "name`, or edit the manifest later)",
            NAMES_FILE,
            run_dir,
        )
    names = training_cluster_names(run_dir)
    for key in names:
        if not key.isdigit() or (n_clusters is not None and int(key) >= n_clusters):
            raise AgrilandError(
                f"{run_dir / NAMES_FILE}: {key!r} is not a cluster id of this model (0..{(n_clusters or 1) - 1})"
            )
    return names


def graph_specs(model_path: Path) -> tuple[TensorSpec, list[TensorSpec]]:
    """Input and output TensorSpecs read from the ONNX graph (symbolic dims become None)."""
    graph = onnx.load(str(model_path), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}

    def spec(value: onnx.ValueInfoProto) -> TensorSpec:
        tensor = value.type.tensor_type
        if tensor.elem_type not in _DTYPES:
            raise AgrilandError(f"{model_path}: {value.name} has unsupported element type {tensor.elem_type}")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
        return TensorSpec(name=value.name, dtype=_DTYPES[tensor.elem_type], shape=[None, *dims[1:]])

    inputs = [spec(v) for v in graph.input if v.name not in initializers]
    return inputs[0], [spec(v) for v in graph.output]


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shaped this artifact (those installed)."""
    versions: dict[str, str] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def model_version(run_dir: Path) -> str:
    """A stable id of the trained Keras model: its file date and the start of its sha256."""
    path = run_dir / KERAS_FILE
    stamp = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).strftime("%Y%m%d")
    return f"{stamp}-{sha256_file(path)[:10]}"


def field_model_spec(summary: dict) -> FieldModelSpec:
    """The manifest's field block from a field run's summary (classes, working resolutions, instance cuts)."""
    keys = ("classes", "work_gsd_m", "max_gsd_m", "extent_cut", "interior_cut", "vote_cut", "min_field_ha")
    return FieldModelSpec(**{k: summary[k] for k in keys if k in summary})


def build_manifest(
    run_dir: Path,
    folder: Path,
    name: str,
    variant: str,
    parity: Parity,
    summary: dict | None = None,
    extra_data: dict[str, object] | None = None,
) -> Manifest:
    """The Manifest for `folder/model.onnx` (written there by the caller), validated by pydantic."""
    summary = summary if summary is not None else read_summary(run_dir, name)
    model_path = folder / MODEL_FILE
    input_spec, outputs = graph_specs(model_path)
    tile = int(summary["tile_size"])
    n_clusters = next((o.shape[-1] for o in outputs if o.name == "q"), None)
    metrics = {
        str(k): float(v)
        for k, v in (summary.get("metrics") or {}).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }
    training_data = {
        **(summary.get("data") or {}),
        "run": str(run_dir),
        "keras_model": KERAS_FILE,
        **(extra_data or {}),
    }
    for key in ("arch", "encoder", "backbone", "n_clusters", "encoder_weights"):
        if key in summary:
            training_data.setdefault(key, summary[key])
    try:
        return Manifest(
            name=name,
            task=TASKS[name],
            version=model_version(run_dir),
            variant=variant,
            tile_size=tile,
            input=input_spec,
            outputs=outputs,
            cluster_names=read_cluster_names(run_dir, n_clusters) if name == "dec" else {},
            threshold=float(summary.get("threshold", 0.5)),
            tta_views=SEGMENTATION_TTA_VIEWS if name == "unet" else int(summary.get("tta_views", 1)),
            radiometry=Radiometry.model_validate(summary.get("radiometry") or DEFAULT_RADIOMETRY.model_dump()),
            field_model=field_model_spec(summary) if name == "fields" else None,
            metrics=metrics,
            parity=parity,
            training_data=json.loads(json.dumps(training_data, default=str)),
            library_versions=library_versions(),
            onnx_sha256=sha256_file(model_path),
            created_at=datetime.now(UTC),
        )
    except ValueError as err:  # pydantic ValidationError
        raise AgrilandError(f"the {name}/{variant} manifest built from {run_dir} is invalid: {err}") from err
