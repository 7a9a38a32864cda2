"""The bench's process-tree memory sampler: it sees a child's memory, PSS never above RSS, failures raise."""

from __future__ import annotations

import sys

import pytest

from bench.measured_run import run_measured

# a parent that starts a child; the child holds 200 MB of touched memory for a second
_TREE = (
    "import subprocess, sys; subprocess.run([sys.executable, '-c', "
    '"import time, numpy as np; a = np.ones(200 * 2**20 // 8); time.sleep(1.5); print(a[-1])"], check=True)'
)


def test_the_child_memory_counts_and_pss_is_at_most_rss() -> None:
    result = run_measured([sys.executable, "-c", _TREE])
    assert result["peak_rss_mb"] >= 200
    assert 150 <= result["peak_pss_mb"] <= result["peak_rss_mb"]
    assert result["n_processes_at_peak"] == 2
    assert result["processes_at_peak"][0]["pss_mb"] >= 150  # the child, largest first
    assert "1.0" in result["output"]


def test_a_failing_command_raises_with_its_output() -> None:
    with pytest.raises(RuntimeError, match="exited 3"):
        run_measured([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
