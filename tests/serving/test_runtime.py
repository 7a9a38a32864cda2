"""ONNX Runtime session factory: provider choice with CPU fallback, artifact verification."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from contract.errors import AgrilandError
from contract.manifest import Manifest, TensorSpec, sha256_file, write_manifest
from serving.runtime import OnnxModel, artifact_folder, choose_providers, cuda_loadable


def _write_identity_artifact(folder: Path) -> None:
    """A real (tiny) ONNX graph: uint8 image -> float mask = mean over channels / 255."""
    folder.mkdir(parents=True)
    image = helper.make_tensor_value_info("image", TensorProto.UINT8, [None, 4, 4, 3])
    mask = helper.make_tensor_value_info("mask", TensorProto.FLOAT, [None, 4, 4, 1])
    scale = helper.make_tensor("scale", TensorProto.FLOAT, [], [1.0 / 255.0])
    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["f"], ["m"], axes=[3], keepdims=1),
        helper.make_node("Mul", ["m", "scale"], ["mask"]),
    ]
    graph = helper.make_graph(nodes, "tiny", [image], [mask], initializer=[scale])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, folder / "model.onnx")
    manifest = Manifest(
        name="unet",
        task="segmentation",
        version="test",
        tile_size=4,
        input=TensorSpec(name="image", dtype="uint8", shape=[None, 4, 4, 3]),
        outputs=[TensorSpec(name="mask", dtype="float32", shape=[None, 4, 4, 1])],
        onnx_sha256=sha256_file(folder / "model.onnx"),
    )
    write_manifest(folder, manifest)


def test_cpu_fallback_without_cuda() -> None:
    providers = choose_providers("cuda")
    assert providers[-1] == "CPUExecutionProvider"
    if not cuda_loadable():
        assert providers == ["CPUExecutionProvider"]


def test_auto_never_asks_for_cuda_that_cannot_load() -> None:
    names = [p if isinstance(p, str) else p[0] for p in choose_providers("auto")]
    assert ("CUDAExecutionProvider" in names) == cuda_loadable()


def test_loads_and_runs_a_verified_artifact(tmp_path: Path) -> None:
    _write_identity_artifact(tmp_path / "unet" / "fp32")
    model = OnnxModel.load(artifact_folder(tmp_path, "unet", "fp32"), providers="cpu")
    assert model.provider == "CPUExecutionProvider"
    batch = np.full((2, 4, 4, 3), 255, dtype=np.uint8)
    out = model.run(batch)["mask"]
    assert out.shape == (2, 4, 4, 1)
    np.testing.assert_allclose(out, 1.0, rtol=1e-6)


def test_wrong_batch_type_is_refused(tmp_path: Path) -> None:
    _write_identity_artifact(tmp_path / "unet" / "fp32")
    model = OnnxModel.load(tmp_path / "unet" / "fp32", providers="cpu")
    with pytest.raises(AgrilandError, match="uint8"):
        model.run(np.zeros((1, 4, 4, 3), dtype=np.float32))


def test_tampered_model_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "unet" / "fp32"
    _write_identity_artifact(folder)
    with open(folder / "model.onnx", "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(AgrilandError, match="does not match its manifest"):
        OnnxModel.load(folder)


def test_unknown_variant_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AgrilandError, match="unknown variant 'bf8'"):
        artifact_folder(tmp_path, "unet", "bf8")
