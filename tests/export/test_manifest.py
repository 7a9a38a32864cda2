"""Manifests of exported models validate, carry the run's facts, and guard model.onnx (sha256, missing, corrupt)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from contract.artifacts import artifact_folder, sha256_file, verify_artifact
from contract.errors import AgrilandError
from contract.manifest import Parity, read_manifest, write_manifest
from export.manifest_builder import build_manifest, read_summary
from inference.models.onnx_model import OnnxModel
from testkit.exports import was_exported

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["unet", "dec"])
@pytest.mark.parametrize("variant", ["fp32", "fp16", "int8"])
def test_manifest_validates(export_case, name: str, variant: str) -> None:
    if not was_exported(export_case.models, name, variant):
        pytest.skip(f"{name}/{variant} was dropped by its parity gate (checked); nothing to validate")
    folder = artifact_folder(export_case.models, name, variant)
    manifest = verify_artifact(folder)
    summary = json.loads((export_case.runs / name / "training_summary.json").read_text())
    assert (manifest.name, manifest.variant, manifest.tile_size) == (name, variant, summary["tile_size"])
    assert manifest.task == summary["task"]
    assert manifest.input.name == "image" and manifest.input.dtype == "uint8"
    assert manifest.input.shape == [None, summary["tile_size"], summary["tile_size"], 3]
    assert all(o.dtype == "float32" and o.shape[0] is None for o in manifest.outputs)
    assert manifest.onnx_sha256 == sha256_file(folder / "model.onnx")
    assert manifest.metrics and all(isinstance(v, float) for v in manifest.metrics.values())
    assert manifest.training_data["source"] == summary["data"]["source"]
    assert {"tf2onnx", "onnx", "tensorflow", "numpy"} <= set(manifest.library_versions)
    assert manifest.version == read_manifest(artifact_folder(export_case.models, name, "fp32")).version
    if name == "dec":
        assert [o.name for o in manifest.outputs] == ["embedding", "q"]
        names = json.loads((export_case.runs / name / "cluster_names.json").read_text())
        assert manifest.cluster_names == names and manifest.n_clusters is not None
    else:
        assert [o.name for o in manifest.outputs] == ["mask"]
        assert manifest.threshold == summary.get("threshold", 0.5)


def _copy(export_case, tmp_path: Path, variant: str = "fp32") -> Path:
    folder = tmp_path / "unet" / variant
    shutil.copytree(export_case.models / "unet" / variant, folder)
    return folder


def test_sha256_mismatch_refused(export_case, tmp_path: Path) -> None:
    folder = _copy(export_case, tmp_path)
    with open(folder / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(AgrilandError, match="does not match its manifest"):
        OnnxModel.load(folder, providers="cpu")


def test_missing_model_refused(export_case, tmp_path: Path) -> None:
    folder = _copy(export_case, tmp_path)
    (folder / "model.onnx").unlink()
    with pytest.raises(AgrilandError, match="no model.onnx"):
        OnnxModel.load(folder, providers="cpu")


def test_corrupt_model_refused(export_case, tmp_path: Path) -> None:
    folder = _copy(export_case, tmp_path)
    (folder / "model.onnx").write_bytes(b"this is not an onnx file")
    manifest = read_manifest(folder)
    write_manifest(folder, manifest.model_copy(update={"onnx_sha256": sha256_file(folder / "model.onnx")}))
    with pytest.raises(AgrilandError, match="ONNX Runtime cannot load"):
        OnnxModel.load(folder, providers="cpu")


def test_missing_or_broken_manifest_refused(export_case, tmp_path: Path) -> None:
    folder = _copy(export_case, tmp_path)
    (folder / "manifest.json").write_text("{not json")
    with pytest.raises(AgrilandError, match=r"(?s)not a valid manifest.*Invalid JSON"):
        OnnxModel.load(folder, providers="cpu")
    (folder / "manifest.json").unlink()
    with pytest.raises(AgrilandError, match="no manifest.json"):
        OnnxModel.load(folder, providers="cpu")


def test_unknown_variant_refused(export_case) -> None:
    with pytest.raises(AgrilandError, match="unknown variant 'int4'"):
        artifact_folder(export_case.models, "unet", "int4")


def test_bad_cluster_names_refused(export_case, tmp_path: Path) -> None:
    run = tmp_path / "dec"
    shutil.copytree(export_case.runs / "dec", run)
    (run / "cluster_names.json").write_text(json.dumps({"99": "arable"}))
    with pytest.raises(AgrilandError, match="99"):
        build_manifest(run, export_case.models / "dec" / "fp32", "dec", "fp32", Parity())
    (run / "cluster_names.json").write_text("[1, 2")
    with pytest.raises(AgrilandError, match="cluster_names.json is not valid JSON"):
        build_manifest(run, export_case.models / "dec" / "fp32", "dec", "fp32", Parity())


def test_bad_summary_refused(tmp_path: Path) -> None:
    with pytest.raises(AgrilandError, match="no training_summary.json"):
        read_summary(tmp_path, "unet")
    (tmp_path / "training_summary.json").write_text(json.dumps({"task": "segmentation", "tile_size": "big"}))
    with pytest.raises(AgrilandError, match="tile_size"):
        read_summary(tmp_path, "unet")
