"""ONNX Runtime session factory: provider choice with CPU fallback, warm-up, artifact checks, GPU bench CPU mode."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from contract.artifacts import artifact_folder, sha256_file
from contract.errors import AgrilandError
from contract.manifest import Manifest, TensorSpec, write_manifest
from contract.radiometry import Radiometry
from inference.models import sessions
from inference.models.onnx_model import OnnxModel, warm_up
from inference.models.runtime import CONV_ALGO_SEARCH_ENV, CPU_ARENA_ENV, SPINNING_ENV, RuntimeOptions
from inference.models.sessions import (
    choose_providers,
    cuda_loadable,
    nvidia_device_present,
    tensorrt_options,
)

ROOT = Path(__file__).resolve().parents[3]


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
        radiometry=Radiometry(),
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


CPU_EP, CUDA_EP, TRT_EP = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


@pytest.mark.parametrize("choice", ["auto", "cpu", "cuda", "tensorrt"])
@pytest.mark.parametrize("built_with", [(CPU_EP,), (CUDA_EP, CPU_EP), (TRT_EP, CUDA_EP, CPU_EP)])
@pytest.mark.parametrize("loadable", [True, False])
def test_gpu_providers_are_asked_for_exactly_where_onnxruntime_has_them_and_cuda_loads(
    monkeypatch: pytest.MonkeyPatch, choice: str, built_with: tuple[str, ...], loadable: bool
) -> None:
    monkeypatch.setattr(sessions.ort, "get_available_providers", lambda: list(built_with))
    monkeypatch.setattr(sessions, "cuda_loadable", lambda: loadable)
    names = [p if isinstance(p, str) else p[0] for p in choose_providers(choice, trt_options={"k": "v"})]
    gpu = loadable and CUDA_EP in built_with and choice != "cpu"
    trt = gpu and choice == "tensorrt" and TRT_EP in built_with
    assert names == [TRT_EP] * trt + [CUDA_EP] * gpu + [CPU_EP]  # CPU always last, TensorRT before CUDA
    options = dict(p for p in choose_providers(choice, trt_options={"k": "v"}) if not isinstance(p, str))
    if trt:
        assert options[TRT_EP] == {"k": "v"}
    if gpu:
        assert options[CUDA_EP]["cudnn_conv_algo_search"] == "EXHAUSTIVE"


def test_cuda_is_not_loadable_without_an_nvidia_device(monkeypatch: pytest.MonkeyPatch) -> None:
    def never(name: str) -> None:
        raise AssertionError(f"tried to load {name} on a host without an NVIDIA device")

    monkeypatch.setattr(sessions, "nvidia_device_present", lambda: False)
    monkeypatch.setattr(sessions.ctypes, "CDLL", never)
    assert cuda_loadable() is False


@pytest.mark.parametrize("missing", [None, *sessions._CUDA_LIBS])
def test_cuda_is_loadable_only_when_every_library_loads(monkeypatch: pytest.MonkeyPatch, missing: str | None) -> None:
    tried: list[str] = []

    def load(name: str) -> object:
        tried.append(name)
        if name == missing:
            raise OSError(f"{name}: cannot open shared object file")
        return object()

    monkeypatch.setattr(sessions, "nvidia_device_present", lambda: True)
    monkeypatch.setattr(sessions, "preload_cuda_dlls", lambda: False)
    monkeypatch.setattr(sessions.ctypes, "CDLL", load)
    assert cuda_loadable() is (missing is None)
    assert missing is None or tried[-1] == missing
    assert set(sessions._CUDA_LIBS) >= set(tried) and tried[0] == sessions._CUDA_LIBS[0]


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


def test_runtime_options_come_from_the_front_end_not_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    assert RuntimeOptions.from_env({}) == RuntimeOptions()
    assert RuntimeOptions.from_env({CONV_ALGO_SEARCH_ENV: "heuristic"}).conv_algo_search == "HEURISTIC"
    with pytest.raises(AgrilandError, match=CONV_ALGO_SEARCH_ENV):
        RuntimeOptions.from_env({CONV_ALGO_SEARCH_ENV: "fastest"})
    with pytest.raises(AgrilandError, match=SPINNING_ENV):
        RuntimeOptions.from_env({SPINNING_ENV: "sometimes"})
    assert RuntimeOptions.from_env({SPINNING_ENV: "on", CPU_ARENA_ENV: "0"}) == RuntimeOptions(spinning=True, cpu_arena=False)
    monkeypatch.setenv(CONV_ALGO_SEARCH_ENV, "fastest")  # the library itself never reads the environment
    choose_providers("cpu")


def test_tensorrt_profile_covers_every_batch(tmp_path: Path) -> None:
    options = tensorrt_options(256, 16, tmp_path / "cache", fp16=True)
    assert options["trt_profile_min_shapes"] == "image:1x256x256x3"
    assert options["trt_profile_max_shapes"] == options["trt_profile_opt_shapes"] == "image:16x256x256x3"
    assert options["trt_engine_cache_enable"] == "True" and options["trt_fp16_enable"] == "True"
    assert (tmp_path / "cache").is_dir()


def test_warm_up_runs_the_batch_sizes(tmp_path: Path) -> None:
    _write_identity_artifact(tmp_path / "unet" / "fp32")
    model = OnnxModel.load(tmp_path / "unet" / "fp32", providers="cpu")
    assert sorted(warm_up(model, 4, every_size=True)) == [1, 2, 3, 4]
    assert sorted(warm_up(model, 4)) == [1]  # CPU kernels do not specialise per batch size
    with pytest.raises(AgrilandError, match="max_batch_size"):
        warm_up(model, 0)


@pytest.mark.skipif(nvidia_device_present() and cuda_loadable(), reason="a usable GPU: the real run is bench's job")
def test_gpu_bench_quick_reports_no_gpu(tmp_path: Path) -> None:
    doc, out = tmp_path / "benchmarks.md", tmp_path / "gpu.json"
    doc.write_text("# Benchmarks\n\n## 1. Model level\n\nkept\n", encoding="utf-8")
    argv = [sys.executable, str(ROOT / "bench" / "gpu.py"), "--quick", "--doc", str(doc), "--out", str(out),
            "--models", str(tmp_path / "models")]
    for _ in range(2):  # a second run replaces the section instead of appending another
        result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
        assert result.returncode == 0, result.stderr
        assert "no GPU: not run" in result.stdout
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks") and "kept" in text
    assert text.count("## GPU") == 1 and "**no GPU: not run**" in text
    import json

    assert json.loads(out.read_text())["status"] == "no GPU: not run"
