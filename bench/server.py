"""A `bentoml serve` process for the benchmarks: start, time to /readyz, RSS/CPU of its tree, metrics, stop."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import psutil

from bench.common import ROOT, WORK

log = logging.getLogger(__name__)

BENTOML = ROOT / ".venv" / "bin" / "bentoml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One `bentoml serve TARGET` on a loopback port, in its own process group (stopped by its pid only)."""

    def __init__(self, target: str, env: dict[str, str], label: str, cwd: Path | None = None) -> None:
        self.target, self.label = target, label
        self.cwd = cwd or ROOT
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env}
        self.log_path = WORK / f"server-{label}.log"
        self.proc: subprocess.Popen | None = None
        self.cold_start_s: float | None = None
        self._peak_rss = 0
        self._sampling = False

    def start(self, timeout_s: float = 300.0) -> float:
        """Start the server and wait for /readyz 200; returns seconds from spawn to ready (cold start)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.log_path.open("w", encoding="utf-8")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [str(BENTOML), "serve", self.target, "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=self.cwd,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        with httpx.Client(timeout=2.0) as client:
            while time.perf_counter() - started < timeout_s:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.label} server exited with {self.proc.returncode}; see {self.log_path}")
                try:
                    if client.get(f"{self.url}/readyz").status_code == 200:
                        self.cold_start_s = time.perf_counter() - started
                        log.info("%s ready on %s after %.1f s", self.label, self.url, self.cold_start_s)
                        self._start_sampler()
                        return self.cold_start_s
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.label} server not ready after {timeout_s:.0f} s; see {self.log_path}")

    def processes(self) -> list[psutil.Process]:
        assert self.proc is not None
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def rss_mb(self) -> dict[str, float]:
        """RSS of every process of the tree (MB) and their total."""
        out: dict[str, float] = {}
        for proc in self.processes():
            try:
                out[f"{proc.pid} {' '.join(proc.cmdline()[1:3])[:60]}"] = proc.memory_info().rss / 2**20
            except psutil.Error:
                continue
        out["total"] = sum(out.values())
        return out

    def cpu_seconds(self) -> float:
        """User + system CPU seconds used so far by the tree."""
        total = 0.0
        for proc in self.processes():
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    def _start_sampler(self) -> None:
        self._sampling = True

        def sample() -> None:
            while self._sampling:
                try:
                    self._peak_rss = max(self._peak_rss, int(self.rss_mb()["total"]))
                except (psutil.Error, AssertionError):
                    pass
                time.sleep(0.5)

        threading.Thread(target=sample, daemon=True).start()

    def wait_idle(self, busy_cores: float = 0.15, timeout_s: float = 30.0) -> float:
        """Wait until the tree uses under `busy_cores` of CPU over 0.5 s (a point's backlog has drained); seconds."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout_s:
            before = self.cpu_seconds()
            time.sleep(0.5)
            if (self.cpu_seconds() - before) / 0.5 < busy_cores:
                break
        return time.perf_counter() - started

    @property
    def peak_rss_mb(self) -> int:
        return self._peak_rss

    def metrics_text(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=10.0).text

    def batch_counters(self, model: str) -> tuple[float, float]:
        """(sum, count) of the agriland_batch_size histogram for `model`, summed over workers."""
        text = self.metrics_text()
        values = {"sum": 0.0, "count": 0.0}
        pattern = re.compile(r'^agriland_batch_size_(sum|count)\{[^}]*model="' + re.escape(model) + r'"[^}]*\}\s+(\S+)')
        for line in text.splitlines():
            match = pattern.match(line)
            if match:
                values[match[1]] += float(match[2])
        return values["sum"], values["count"]

    def stop(self) -> None:
        """SIGTERM to this server's own process group, SIGKILL after 20 s."""
        self._sampling = False
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def log_tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]) if path.exists() else ""
