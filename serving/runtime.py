"""ONNX Runtime sessions: execution-provider choice, thread settings, and a loaded-model wrapper."""

from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from contract.errors import AgrilandError
from contract.manifest import MODEL_FILE, VARIANTS, Manifest, verify_artifact

log = logging.getLogger(__name__)

ProviderChoice = Literal["auto", "cpu", "cuda", "tensorrt"]
_CUDA_LIBS = ("libcudart.so.13", "libcublasLt.so.13", "libcudnn.so.9")


def cuda_loadable() -> bool:
    """True when the CUDA 13 / cuDNN 9 libraries the onnxruntime-gpu wheel needs can be loaded."""
    if not any(Path(p).exists() for p in ("/dev/nvidia0", "/dev/nvidiactl")):
        return False
    for lib in _CUDA_LIBS:
        try:
            ctypes.CDLL(lib)
        except OSError:
            return False
    return True


def choose_providers(choice: ProviderChoice = "auto") -> list[str | tuple[str, dict]]:
    """Execution providers in preference order; CUDA/TensorRT are only asked for where they can load."""
    available = set(ort.get_available_providers())
    cuda_options = {
        "cudnn_conv_algo_search": "EXHAUSTIVE",
        "cudnn_conv_use_max_workspace": "1",
        "do_copy_in_default_stream": "1",
    }
    gpu_ok = "CUDAExecutionProvider" in available and cuda_loadable()
    providers: list[str | tuple[str, dict]] = []
    if choice == "tensorrt" and gpu_ok and "TensorrtExecutionProvider" in available:
        providers.append("TensorrtExecutionProvider")
    if choice in {"auto", "cuda", "tensorrt"} and gpu_ok:
        providers.append(("CUDAExecutionProvider", cuda_options))
    elif choice in {"cuda", "tensorrt"}:
        log.warning("%s execution provider requested but CUDA cannot be loaded here; using CPU", choice)
    providers.append("CPUExecutionProvider")
    return providers


def default_cpu_threads(workers: int = 1) -> int:
    """Intra-op threads per session: the cores this process may use divided by the number of workers."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(1, workers))


def create_session(
    model_path: Path | str,
    providers: ProviderChoice = "auto",
    intra_op_threads: int | None = None,
) -> ort.InferenceSession:
    """An InferenceSession with full graph optimisation and explicit thread counts."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = intra_op_threads or default_cpu_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(model_path), sess_options=options, providers=choose_providers(providers))
    except Exception as err:  # onnxruntime raises its own exception types for corrupt files
        raise AgrilandError(f"ONNX Runtime cannot load {model_path}: {err}") from err
    log.info("loaded %s with providers %s", model_path, session.get_providers())
    return session


def artifact_folder(models_dir: Path | str, name: str, variant: str = "fp32") -> Path:
    """`models_dir/name/variant`, refusing unknown variants with a clear message."""
    if variant not in VARIANTS:
        raise AgrilandError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return Path(models_dir) / name / variant


@dataclass
class OnnxModel:
    """A verified artifact folder and its ONNX Runtime session."""

    folder: Path
    manifest: Manifest
    session: ort.InferenceSession

    @classmethod
    def load(
        cls,
        folder: Path | str,
        providers: ProviderChoice = "auto",
        intra_op_threads: int | None = None,
    ) -> "OnnxModel":
        """Verify manifest + sha256, then open the session."""
        folder = Path(folder)
        manifest = verify_artifact(folder)
        session = create_session(folder / MODEL_FILE, providers, intra_op_threads)
        return cls(folder=folder, manifest=manifest, session=session)

    @property
    def tile_size(self) -> int:
        return self.manifest.tile_size

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Run a uint8 NHWC batch and return outputs by name."""
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise AgrilandError(f"expected a uint8 [N, H, W, 3] batch, got {images.dtype} {images.shape}")
        names = [spec.name for spec in self.manifest.outputs]
        values = self.session.run(names, {self.manifest.input.name: np.ascontiguousarray(images)})
        return dict(zip(names, values))
