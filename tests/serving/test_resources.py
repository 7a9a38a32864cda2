"""What the service asks BentoML for: ONNX Runtime threads per worker, CPUs, and a GPU only for CUDA/TensorRT."""

from __future__ import annotations

import pytest

from serving import resources
from serving.config import ServeSettings
from serving.resources import service_ort_threads, service_resources


@pytest.fixture
def six_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "available_cpus", lambda: 6)


@pytest.mark.usefixtures("six_cpus")
def test_each_worker_gets_its_share_of_the_cores_unless_overridden() -> None:
    assert [service_ort_threads(w) for w in (1, 2, 4, 6, 12)] == [6, 3, 1, 1, 1]
    assert service_ort_threads(0) == 6
    assert service_ort_threads(4, override=5) == 5  # AGRILAND_ORT_THREADS wins, even above the share
    assert service_ort_threads(2, override=None) == 3


@pytest.mark.usefixtures("six_cpus")
@pytest.mark.parametrize(("providers", "gpu"), [("auto", False), ("cpu", False), ("cuda", True), ("tensorrt", True)])
def test_a_gpu_is_asked_for_only_for_cuda_or_tensorrt(providers: str, gpu: bool) -> None:
    asked = service_resources(ServeSettings.from_env({"AGRILAND_PROVIDERS": providers}))
    assert asked["cpu"] == "6"
    assert ("gpu" in asked) is gpu
    if gpu:
        assert asked["gpu"] == 1


def test_the_cpus_asked_for_are_the_usable_cores() -> None:
    from inference.models.cpus import available_cpus

    assert service_resources(ServeSettings.from_env({}))["cpu"] == str(available_cpus())
