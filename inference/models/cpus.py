"""What this process may use: CPUs from the cgroup quota (not the host's core count), memory, worker counts."""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs allowed by the cgroup (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), or None when unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """Cores this process may really use: CPU affinity, capped by the cgroup quota (rounded up, at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return max(1, cores)


def available_memory_mb(root: Path = CGROUP_ROOT) -> float:
    """Memory this process tree may still use: the cgroup limit (v2 `memory.max`) or MemAvailable, in MB."""
    limits: list[float] = []
    try:
        raw = (root / "memory.max").read_text().strip()
        if raw != "max":
            used = int((root / "memory.current").read_text().strip())
            limits.append((int(raw) - used) / 2**20)
    except (OSError, ValueError):
        pass
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) / 1024)
    except (OSError, ValueError, IndexError):
        pass
    return min(limits) if limits else float("inf")


def auto_workers(per_worker_mb: int, root: Path = CGROUP_ROOT) -> int:
    """One BentoML worker per usable core, fewer when memory cannot hold `per_worker_mb` for each (at least 1)."""
    cores = available_cpus(root)
    by_memory = int(available_memory_mb(root) // max(1, per_worker_mb))
    workers = max(1, min(cores, by_memory))
    log.info("AGRILAND_WORKERS=auto: %d worker(s) (%d usable cores, memory for %d at %d MB each)",
             workers, cores, by_memory, per_worker_mb)
    return workers


def intra_op_threads(workers: int) -> int:
    """ONNX Runtime threads per session: the usable cores divided among the workers."""
    return max(1, available_cpus() // max(1, workers))
