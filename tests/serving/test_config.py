"""AGRILAND_* settings: workers=auto from cores and memory, the access-log / tracing switches, refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.errors import AgrilandError
from inference.models.cpus import auto_workers
from serving.config import ServeSettings


def _cgroup(root: Path, cpus: float | None, limit_mb: int | None, used_mb: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text("max 100000\n" if cpus is None else f"{int(cpus * 100000)} 100000\n")
    (root / "memory.max").write_text("max\n" if limit_mb is None else f"{limit_mb * 2**20}\n")
    (root / "memory.current").write_text(f"{used_mb * 2**20}\n")
    return root


def test_auto_workers_is_one_per_core_capped_by_memory(tmp_path: Path) -> None:
    import os

    cores = len(os.sched_getaffinity(0))
    assert auto_workers(512, _cgroup(tmp_path / "a", cpus=1, limit_mb=None)) == 1
    assert auto_workers(512, _cgroup(tmp_path / "b", cpus=None, limit_mb=1 << 20)) == cores
    assert auto_workers(512, _cgroup(tmp_path / "c", cpus=None, limit_mb=1200, used_mb=100)) == min(cores, 2)
    assert auto_workers(512, _cgroup(tmp_path / "d", cpus=None, limit_mb=300)) == 1  # never zero


def test_switches_and_auto_from_the_environment() -> None:
    settings = ServeSettings.from_env({"AGRILAND_ACCESS_LOG": "1", "AGRILAND_TRACING": "off",
                                       "AGRILAND_WORKERS": "auto", "AGRILAND_WORKER_MEMORY_MB": "256"})
    assert settings.access_log is True and settings.tracing is False and settings.workers >= 1
    defaults = ServeSettings.from_env({})
    assert defaults.access_log is False and defaults.tracing is False and defaults.workers == 1


@pytest.mark.parametrize(("key", "value"), [("AGRILAND_ACCESS_LOG", "maybe"), ("AGRILAND_WORKERS", "many"),
                                            ("AGRILAND_WORKERS", "0")])
def test_bad_values_are_refused_by_name(key: str, value: str) -> None:
    with pytest.raises(AgrilandError, match=key):
        ServeSettings.from_env({key: value})
