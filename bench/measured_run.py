"""Run a command and sample its whole process tree's memory: summed RSS, summed PSS and who held it at the peak.

Summed RSS counts a shared page once per process that maps it (Ray's dozen Python processes share their
libraries), so it overstates what the machine holds; PSS (proportional set size, Linux) splits each shared page
between the processes that share it, so the summed PSS is the tree's real share of memory. Both are reported.
"""

from __future__ import annotations

import logging
import subprocess
import time

import psutil

log = logging.getLogger(__name__)
SAMPLE_S = 0.2


def _name(process: psutil.Process) -> str:
    """A short label for one process: Ray's `ray::Actor` titles, else the executable and first argument."""
    try:
        words = process.cmdline()
    except psutil.Error:
        return "?"
    if not words:
        return process.name()
    if words[0].startswith("ray::"):
        return words[0]
    tail = [w.rsplit("/", 1)[-1] for w in words[:3] if not w.startswith("-")]
    return " ".join(tail)[:60]


def _sample(root: psutil.Process) -> list[tuple[str, int, int]]:
    """(label, rss, pss) in bytes of every live process in the tree; PSS is the RSS where the kernel hides it."""
    rows = []
    for process in [root, *root.children(recursive=True)]:
        try:
            info = process.memory_full_info()
            rows.append((_name(process), info.rss, getattr(info, "pss", info.rss)))
        except psutil.Error:
            continue
    return rows


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run `cmd` to the end; wall seconds, peak summed RSS and PSS (MB) of its tree, the processes at the PSS peak.

    Raises RuntimeError with the output's tail when the command fails.
    """
    started = time.monotonic()
    log.info("running %s", " ".join(cmd))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    root = psutil.Process(proc.pid)
    peak_rss = peak_pss = 0
    at_peak: list[tuple[str, int, int]] = []
    while proc.poll() is None:
        try:
            rows = _sample(root)
        except psutil.Error:
            rows = []
        peak_rss = max(peak_rss, sum(r[1] for r in rows))
        pss = sum(r[2] for r in rows)
        if pss > peak_pss:
            peak_pss, at_peak = pss, rows
        time.sleep(SAMPLE_S)
    output = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{output[-3000:]}")
    mb = 2**20
    return {
        "wall_s": round(time.monotonic() - started, 2),
        "peak_rss_mb": round(peak_rss / mb),
        "peak_pss_mb": round(peak_pss / mb),
        "n_processes_at_peak": len(at_peak),
        "processes_at_peak": [
            {"name": n, "rss_mb": round(r / mb), "pss_mb": round(p / mb)}
            for n, r, p in sorted(at_peak, key=lambda row: -row[2])
        ],
        "output": output[-2000:],
    }
