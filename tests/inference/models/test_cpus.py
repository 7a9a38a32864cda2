"""What a process may use: cgroup CPU quota (v2 and v1), usable cores, memory left, worker and thread counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.models import cpus
from inference.models.cpus import (
    auto_workers,
    available_cpus,
    available_memory_mb,
    cgroup_cpu_quota,
    intra_op_threads,
)


def _cgroup(root: Path, cpus: float | None, limit_mb: int | None, used_mb: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "cpu.max").write_text("max 100000\n" if cpus is None else f"{int(cpus * 100000)} 100000\n")
    (root / "memory.max").write_text("max\n" if limit_mb is None else f"{limit_mb * 2**20}\n")
    (root / "memory.current").write_text(f"{used_mb * 2**20}\n")
    return root


@pytest.fixture
def eight_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's CPU affinity set to eight cores, whatever the machine has."""
    monkeypatch.setattr(cpus.os, "sched_getaffinity", lambda pid: set(range(8)))


def _meminfo_mb(key: str) -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {key} in /proc/meminfo")


def test_cgroup_v2_quota_is_quota_over_period(tmp_path: Path) -> None:
    assert cgroup_cpu_quota(_cgroup(tmp_path / "a", cpus=1.5, limit_mb=None)) == pytest.approx(1.5)
    assert cgroup_cpu_quota(_cgroup(tmp_path / "b", cpus=None, limit_mb=None)) is None  # "max": unlimited
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "cpu.max").write_text("50000 200000\n")
    assert cgroup_cpu_quota(tmp_path / "c") == pytest.approx(0.25)
    assert cgroup_cpu_quota(tmp_path / "nothing") is None


def test_cgroup_v1_quota_is_read_when_there_is_no_cpu_max(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(tmp_path) == pytest.approx(3.0)
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # v1 for unlimited
    assert cgroup_cpu_quota(tmp_path) is None
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("garbage\n")
    assert cgroup_cpu_quota(tmp_path) is None


@pytest.mark.usefixtures("eight_cores")
def test_usable_cores_are_the_affinity_capped_by_the_quota_rounded_up(tmp_path: Path) -> None:
    assert available_cpus(_cgroup(tmp_path / "a", cpus=None, limit_mb=None)) == 8
    assert available_cpus(_cgroup(tmp_path / "b", cpus=1.5, limit_mb=None)) == 2
    assert available_cpus(_cgroup(tmp_path / "c", cpus=0.2, limit_mb=None)) == 1  # never zero
    assert available_cpus(_cgroup(tmp_path / "d", cpus=32, limit_mb=None)) == 8  # the quota does not add cores


def test_memory_left_is_the_cgroup_limit_less_what_is_used(tmp_path: Path) -> None:
    left = available_memory_mb(_cgroup(tmp_path / "a", cpus=None, limit_mb=300, used_mb=100))
    assert left == pytest.approx(200.0)  # far below what the machine has available
    unlimited = available_memory_mb(_cgroup(tmp_path / "b", cpus=None, limit_mb=None))
    assert 0 < unlimited <= _meminfo_mb("MemTotal")  # MemAvailable when the cgroup sets no limit
    huge = available_memory_mb(_cgroup(tmp_path / "c", cpus=None, limit_mb=1 << 30))
    assert huge <= _meminfo_mb("MemTotal")  # a limit above the machine's memory does not count


@pytest.mark.usefixtures("eight_cores")
def test_auto_workers_is_one_per_core_capped_by_memory(tmp_path: Path) -> None:
    assert auto_workers(512, _cgroup(tmp_path / "a", cpus=1, limit_mb=None)) == 1
    assert auto_workers(16, _cgroup(tmp_path / "b", cpus=3, limit_mb=1024)) == 3  # cores bound it
    limited = _cgroup(tmp_path / "c", cpus=None, limit_mb=300, used_mb=44)  # 256 MB left: memory bounds it
    assert [auto_workers(mb, limited) for mb in (128, 64, 16)] == [2, 4, 8]
    assert auto_workers(512, _cgroup(tmp_path / "d", cpus=None, limit_mb=300)) == 1  # never zero


def test_intra_op_threads_divide_the_usable_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus, "available_cpus", lambda root=cpus.CGROUP_ROOT: 8)
    assert [intra_op_threads(w) for w in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    assert intra_op_threads(0) == 8  # no workers counts as one
