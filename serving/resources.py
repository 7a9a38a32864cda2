"""What the service asks BentoML for: each worker's ONNX Runtime threads and the CPUs/GPU of its resources."""

from __future__ import annotations

from typing import Any

from inference.models.cpus import available_cpus
from serving.config import ServeSettings


def service_ort_threads(workers: int, override: int | None = None) -> int:
    """ONNX Runtime threads per session inside the service: each worker's share of the usable cores, or
    `override` (AGRILAND_ORT_THREADS).

    One less than the share would leave each worker's event loop (HTTP, decoding, encoding: one core at most under
    the GIL) a core of its own while the model runs; measured on 2 cores shared with other jobs the difference was
    inside the noise either way (docs/benchmarks.md, "Tile path overhead"), so the default stays the whole share
    and the knob is there to try it on a machine of one's own.
    """
    if override:
        return override
    return max(1, available_cpus() // max(1, workers))


def service_resources(settings: ServeSettings) -> dict[str, Any]:
    """BentoML `resources=`: the CPUs of this machine or quota, and one GPU when CUDA/TensorRT is asked for."""
    resources: dict[str, Any] = {"cpu": str(available_cpus())}
    if settings.providers in ("cuda", "tensorrt"):
        resources["gpu"] = 1
    return resources
