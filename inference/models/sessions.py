"""ONNX Runtime sessions: execution-provider choice, CUDA libraries, thread and arena settings."""

from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path
from typing import Literal

import onnxruntime as ort

from contract.errors import AgrilandError
from inference.models.runtime import CONV_ALGO_SEARCHES, ConvAlgoSearch, RuntimeOptions

__all__ = ["CONV_ALGO_SEARCHES", "ConvAlgoSearch", "RuntimeOptions", "choose_providers", "create_session"]

log = logging.getLogger(__name__)

ProviderChoice = Literal["auto", "cpu", "cuda", "tensorrt"]
_CUDA_LIBS = ("libcudart.so.13", "libcublasLt.so.13", "libcudnn.so.9")
# The process-wide runtime choices (cuDNN algorithm search, CPU thread spinning, the CPU memory arena) are one
# `RuntimeOptions` (inference/models/runtime.py), passed in; this module never reads the environment.
#   cudnn_conv_algo_search: EXHAUSTIVE benchmarks every algorithm per new input shape (fastest runs; the first run
#   of each batch size is slow, which `warm_up` pays before the service reports ready); HEURISTIC uses cuDNN's
#   heuristics; DEFAULT the implicit-GEMM default. `python -m bench.gpu` measures all three.
#   spinning: ONNX Runtime's intra-op threads busy-wait for new work after each run. In the service the same cores
#   decode uploads, encode answers and run the event loop between model runs; measured on 2 cores with the 64 px
#   quickstart models (docs/benchmarks.md, section 2), off served 1.5-3x the requests/s of on at 32 clients
#   (`python -m bench.service_load` measures both side by side).
_DLLS_PRELOADED: list[bool] = []


def nvidia_device_present() -> bool:
    """True when the host exposes an NVIDIA device node (no driver calls)."""
    return any(Path(p).exists() for p in ("/dev/nvidia0", "/dev/nvidiactl"))


def preload_cuda_dlls() -> bool:
    """Load the CUDA / cuDNN libraries installed as Python packages (`onnxruntime.preload_dlls()`), once.

    Only on hosts with an NVIDIA device and an onnxruntime that has the function (1.21+); returns whether it ran.
    """
    if _DLLS_PRELOADED:
        return _DLLS_PRELOADED[0]
    ran = False
    if nvidia_device_present() and hasattr(ort, "preload_dlls"):
        try:
            ort.preload_dlls()
            ran = True
        except Exception as err:  # noqa: BLE001 - a failed preload leaves the system search path to try
            log.warning("onnxruntime.preload_dlls() failed (%s); relying on the system library path", err)
    _DLLS_PRELOADED.append(ran)
    return ran


def cuda_loadable() -> bool:
    """True when the CUDA 13 / cuDNN 9 libraries the onnxruntime-gpu wheel needs can be loaded."""
    if not nvidia_device_present():
        return False
    preload_cuda_dlls()  # libraries from the nvidia-* Python packages become loadable by name
    for lib in _CUDA_LIBS:
        try:
            ctypes.CDLL(lib)
        except OSError:
            return False
    return True


def tensorrt_options(tile_size: int, max_batch_size: int, cache_dir: Path | str, fp16: bool = False,
                     input_name: str = "image") -> dict[str, str]:
    """TensorRT provider options: an engine + timing cache in `cache_dir` and one shape profile covering every
    batch the micro-batcher can form (1..max_batch_size, optimised for the largest)."""
    Path(cache_dir).mkdir(parents=True, exist_ok=True)

    def shape(n: int) -> str:
        return f"{input_name}:{n}x{tile_size}x{tile_size}x3"

    return {
        "trt_engine_cache_enable": "True",
        "trt_engine_cache_path": str(cache_dir),
        "trt_timing_cache_enable": "True",
        "trt_timing_cache_path": str(cache_dir),
        "trt_fp16_enable": "True" if fp16 else "False",
        "trt_profile_min_shapes": shape(1),
        "trt_profile_opt_shapes": shape(max_batch_size),
        "trt_profile_max_shapes": shape(max_batch_size),
    }


def choose_providers(choice: ProviderChoice = "auto", algo_search: ConvAlgoSearch = "EXHAUSTIVE",
                     trt_options: dict[str, str] | None = None) -> list[str | tuple[str, dict]]:
    """Execution providers in preference order; CUDA/TensorRT are only asked for where they can load."""
    available = set(ort.get_available_providers())
    cuda_options = {
        "cudnn_conv_algo_search": algo_search,
        "cudnn_conv_use_max_workspace": "1",
        "do_copy_in_default_stream": "1",
    }
    gpu_ok = "CUDAExecutionProvider" in available and cuda_loadable()
    providers: list[str | tuple[str, dict]] = []
    if choice == "tensorrt" and gpu_ok and "TensorrtExecutionProvider" in available:
        providers.append(("TensorrtExecutionProvider", trt_options or {}))
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
    runtime: RuntimeOptions = RuntimeOptions(),
    trt_options: dict[str, str] | None = None,
) -> ort.InferenceSession:
    """An InferenceSession with full graph optimisation and explicit thread counts.

    `runtime` sets thread spinning, the CPU arena and the CUDA provider's cudnn_conv_algo_search;
    `trt_options` go to the TensorRT provider (see `tensorrt_options`).
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = intra_op_threads or default_cpu_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if runtime.spinning else "0")
    options.enable_cpu_mem_arena = runtime.cpu_arena
    try:
        session = ort.InferenceSession(str(model_path), sess_options=options,
                                       providers=choose_providers(providers, runtime.conv_algo_search, trt_options))
    except Exception as err:  # onnxruntime raises its own exception types for corrupt files
        raise AgrilandError(f"ONNX Runtime cannot load {model_path}: {err}") from err
    log.info("loaded %s with providers %s", model_path, session.get_providers())
    return session
