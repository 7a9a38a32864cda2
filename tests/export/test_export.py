"""Export of tiny trained DEC / U-Net models: ONNX contract, parity with Keras, variants, failures refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from contract.artifacts import sha256_file
from contract.errors import AgrilandError
from contract.manifest import read_manifest
from export.onnx_export import inspect_graph
from export.parity import ParityError, check_parity, keras_outputs
from export.pipeline import export_model, export_variant, prepare
from export.reference_tiles import load_reference_tiles
from inference.models.onnx_model import OnnxModel
from inference.models.runtime import RuntimeOptions
from testkit.exports import was_exported

pytestmark = pytest.mark.slow
OUTPUTS = {"unet": ("mask",), "dec": ("embedding", "q")}


def _tiles(case, name: str, n: int = 8) -> np.ndarray:
    summary = json.loads((case.runs / name / "training_summary.json").read_text())
    return load_reference_tiles(case.data, summary["tile_size"], "test")[:n]


@pytest.mark.parametrize("name", ["unet", "dec"])
def test_fp32_matches_keras(export_case, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The graph alone (one view) against Keras; the U-Net's test-time rotations against Keras' own rotations."""
    from training.keras_objects import load_inference_model

    model = OnnxModel.load(export_case.models / name / "fp32", providers="cpu")
    images = _tiles(export_case, name)
    keras_model = load_inference_model(export_case.runs / name / "inference_model.keras")
    if name == "unet":
        assert model.manifest.tta_views == 4
        rotated = [
            keras_outputs(keras_model, np.ascontiguousarray(np.rot90(images, k, axes=(1, 2))), ["mask"])["mask"]
            for k in range(4)
        ]
        want_tta = np.mean([np.rot90(r, -k, axes=(1, 2)) for k, r in enumerate(rotated)], axis=0)
        np.testing.assert_allclose(model.run(images)["mask"], want_tta, atol=1e-4)
    model.runtime = RuntimeOptions(tta_views=1)
    got = model.run(images)
    want = keras_outputs(keras_model, images, OUTPUTS[name])
    assert list(got) == list(OUTPUTS[name])
    for key in OUTPUTS[name]:
        assert got[key].dtype == np.float32 and got[key].shape == want[key].shape
        scale = max(1.0, float(np.abs(want[key]).max())) if key == "embedding" else 1.0
        np.testing.assert_allclose(got[key], want[key], atol=1e-4 * scale)
    if name == "unet":
        assert got["mask"].shape == (len(images), model.tile_size, model.tile_size, 1)
    else:
        np.testing.assert_allclose(got["q"].sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", ["unet", "dec"])
def test_graph_is_clean(export_case, name: str) -> None:
    """uint8 `image` in, one NHWC->NCHW Transpose (after the in-graph preprocessing), no deprecated Resize mode."""
    proto = onnx.load(str(export_case.models / name / "fp32" / "model.onnx"))
    assert [i.name for i in proto.graph.input] == ["image"]
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [o.name for o in proto.graph.output] == list(OUTPUTS[name])
    assert any(o.domain in ("", "ai.onnx") and o.version == 17 for o in proto.opset_import)
    report = inspect_graph(proto)
    assert report.input_transposes == 1 and not report.transpose_right_after_input
    assert report.input_prefix[0] == "Cast"
    for node in proto.graph.node:
        if node.op_type == "Resize":
            modes = {a.name: a.s for a in node.attribute}
            assert modes.get("coordinate_transformation_mode") != b"tf_half_pixel_for_nn"


@pytest.mark.parametrize("name", ["unet", "dec"])
def test_variants_have_parity_and_run(export_case, name: str) -> None:
    images = _tiles(export_case, name)
    fp32 = OnnxModel.load(export_case.models / name / "fp32", providers="cpu").run(images)
    for variant in ("fp16", "int8"):
        if not was_exported(export_case.models, name, variant):  # dropped by its gate: the standin case has it
            continue
        folder = export_case.models / name / variant
        manifest = read_manifest(folder)
        assert manifest.variant == variant and manifest.parity.reference == "keras"
        assert manifest.parity.passed and manifest.parity.n_tiles == 8
        assert manifest.parity.max_abs_diff is not None
        if name == "unet":
            assert manifest.parity.mask_iou is not None and manifest.parity.mask_iou >= 0.95
        else:
            assert manifest.parity.cluster_agreement is not None and manifest.parity.cluster_agreement >= 0.95
        got = OnnxModel.load(folder, providers="cpu").run(images)
        for key in OUTPUTS[name]:
            assert got[key].dtype == np.float32 and got[key].shape == fp32[key].shape
    if export_case.label == "standin" or was_exported(export_case.models, name, "int8"):
        ops = {n.op_type for n in onnx.load(str(export_case.models / name / "int8" / "model.onnx")).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    fp16 = onnx.load(str(export_case.models / name / "fp16" / "model.onnx"))
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in fp16.graph.initializer)
    assert fp16.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8


def test_unknown_variant_and_model_refused(export_case, tmp_path: Path) -> None:
    with pytest.raises(AgrilandError, match="unknown variant 'bf16'"):
        export_model(export_case.runs / "unet", tmp_path, "unet", "bf16")  # type: ignore[arg-type]
    with pytest.raises(AgrilandError, match="unknown model"):
        export_model(export_case.runs / "unet", tmp_path, "vgg", "fp32")  # type: ignore[arg-type]
    with pytest.raises(AgrilandError, match="task is 'clustering'"):
        export_model(export_case.runs / "dec", tmp_path, "unet", "fp32")


def test_unreadable_tiles_fail_clearly(export_case, tmp_path: Path) -> None:
    run = tmp_path / "unet"
    shutil.copytree(export_case.runs / "unet", run)
    summary = json.loads((run / "training_summary.json").read_text())
    summary["data"]["source"] = str(tmp_path / "gone")
    (run / "training_summary.json").write_text(json.dumps(summary))
    with pytest.raises(AgrilandError, match="--calibration-data"):
        export_model(run, tmp_path / "models", "unet", "int8")
    assert not (tmp_path / "models" / "unet" / "int8").exists()
    try:
        folder = export_model(
            run,
            tmp_path / "models",
            "unet",
            "int8",
            calibration_source=export_case.data,
            n_parity_tiles=4,
            min_gate_tiles=4,
        )
    except ParityError as err:  # a tiny real U-Net's int8 may miss its gate: calibrated and measured all the same
        assert err.parity.n_tiles == 4 and not err.parity.passed
    else:
        assert read_manifest(folder).parity.n_tiles == 4
    assert (tmp_path / "models" / "unet" / "fp32" / "model.onnx").is_file()  # derived from a fresh fp32


def test_failed_parity_leaves_previous_export(export_case, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(export_case.models / "unet", models / "unet")
    before = sha256_file(models / "unet" / "fp32" / "model.onnx")
    listing = sorted(p.name for p in (models / "unet").iterdir())
    inputs = prepare(export_case.runs / "unet", "unet", export_case.data, 4)
    inputs.keras_reference = {"mask": 1.0 - inputs.keras_reference["mask"]}  # a reference the export cannot meet
    with pytest.raises(AgrilandError, match="fails parity"):
        export_variant(inputs, models, "fp32")
    assert sha256_file(models / "unet" / "fp32" / "model.onnx") == before
    assert sorted(p.name for p in (models / "unet").iterdir()) == listing  # nothing added, nothing removed


def test_parity_check_refuses_wrong_model(export_case) -> None:
    images = _tiles(export_case, "unet", 4)
    reference = {"mask": np.zeros((4, *images.shape[1:3], 1), np.float32) + 0.9}
    with pytest.raises(AgrilandError, match="mask IoU|differs"):
        check_parity(reference, export_case.models / "unet" / "fp16" / "model.onnx", images, "fp16")


def test_cli_rejects_unknown_variant() -> None:
    from export.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["unet", "--variant", "bf16"])
    assert exit_info.value.code == 2
