"""Shared benchmark plumbing: paths, synthetic tiles, timing, the matmul peak and results files."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from contract.atomic import write_text_atomic
from contract.reports import DOCS, machine_info, replace_section

__all__ = ["DOCS", "machine_info", "replace_section"]  # the one report writer, shared with evaluation/

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "out" / "bench"  # exported models, tiles, raw results (git-ignored)
RESULTS_DIR = WORK / "results"
PYTHON = ROOT / ".venv" / "bin" / "python"
TILE = 64  # the quickstart models' tile size (profile `quick`)


def setup_logging() -> None:
    """INFO logs with timestamps for the benchmark CLIs."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    return os.getloadavg()


def scene_tiles(n: int, tile: int = TILE, seed: int = 0) -> np.ndarray:
    """`n` uint8 tiles cut on a grid from seeded synthetic scenes (much faster than stratified make_tiles)."""
    from training.synthetic import make_scene

    side = 2048
    per_scene = (side // tile) ** 2
    out: list[np.ndarray] = []
    scene_seed = seed
    while len(out) < n:
        image = make_scene(side, side, seed=scene_seed).image
        for y in range(0, side - tile + 1, tile):
            for x in range(0, side - tile + 1, tile):
                out.append(image[y : y + tile, x : x + tile])
        scene_seed += 1000
    order = np.random.default_rng(seed).permutation(len(out))[:n]
    log.info("cut %d tiles of %d px from %d synthetic scene(s)", n, tile, -(-n // per_scene))
    return np.ascontiguousarray(np.stack([out[i] for i in order]))


def time_runs(fn: Callable[[], object], min_runs: int, min_seconds: float, warmup: int = 1) -> list[float]:
    """Seconds per call of `fn`, after `warmup` calls, until both `min_runs` and `min_seconds` are reached."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def matmul_peak(n: int = 3072, seconds: float = 3.0) -> dict[str, float]:
    """fp32 GFLOP/s of a large square matmul: numpy (BLAS) and ONNX Runtime, all cores; the max is the peak."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    flop = 2.0 * n**3
    numpy_s = min(time_runs(lambda: a @ b, 3, seconds))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])],
        "mm",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [n, n])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = len(os.sched_getaffinity(0))
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    onnx.checker.check_model(model)
    ort_s = min(time_runs(lambda: session.run(None, {"a": a, "b": b}), 3, seconds))
    result = {"n": n, "numpy_gflops": flop / numpy_s / 1e9, "ort_gflops": flop / ort_s / 1e9}
    result["peak_gflops"] = max(result["numpy_gflops"], result["ort_gflops"])
    log.info(
        "matmul %dx%d fp32: numpy %.1f GFLOP/s, ONNX Runtime %.1f GFLOP/s",
        n,
        n,
        result["numpy_gflops"],
        result["ort_gflops"],
    )
    return result


def save_result(name: str, data: dict) -> Path:
    """Write one benchmark's results as RESULTS_DIR/<name>.json (atomically)."""
    return write_text_atomic(RESULTS_DIR / f"{name}.json", json.dumps(data, indent=2, default=float) + "\n")


def load_result(name: str) -> dict | None:
    """RESULTS_DIR/<name>.json, or None when that benchmark has not run."""
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def scene_cli_options(models: Path, variant: str, overlap: int) -> list[str]:
    """The `agriland segment` / `agriland batch` options the scene benchmarks share (Sentinel-2 10 m band order)."""
    return [
        "--models",
        str(models),
        "--variant",
        variant,
        "--overlap",
        str(overlap),
        "--bands",
        "sentinel2-10m",
        "--provider",
        "cpu",
        "--no-progress",
    ]
