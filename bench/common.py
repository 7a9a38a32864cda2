"""Shared benchmark plumbing: paths, machine description, synthetic tiles, timing and the matmul peak."""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "out" / "bench"  # exported models, tiles, raw results (git-ignored)
RESULTS_DIR = WORK / "results"
DOCS = ROOT / "docs"
PYTHON = ROOT / ".venv" / "bin" / "python"
TILE = 64  # the quickstart models' tile size (profile `quick`)


def setup_logging() -> None:
    """INFO logs with timestamps for the benchmark CLIs."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    return os.getloadavg()


def machine_info() -> dict[str, object]:
    """CPU model, cores, RAM, ISA flags that matter (VNNI, bf16), load average, date and library versions."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lscpu.splitlines())}
    flags = set(fields.get("Flags", "").split())
    with open("/proc/meminfo", encoding="utf-8") as handle:
        mem_kb = int(next(line.split()[1] for line in handle if line.startswith("MemTotal")))
    versions = {}
    from importlib import metadata

    for package in ("onnxruntime-gpu", "tensorflow", "tf-keras", "bentoml", "locust", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return {
        "cpu_model": fields.get("Model name", platform.processor()),
        "cores": len(os.sched_getaffinity(0)),
        "threads_per_core": fields.get("Thread(s) per core"),
        "ram_gb": round(mem_kb / 1024**2, 1),
        "isa": sorted(f for f in flags if f in {"avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8"}),
        "load_average": [round(x, 2) for x in load_average()],
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "versions": versions,
        "gpu": "none (no GPU was lent to this task; fp16/CUDA figures not measurable)",
    }


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
                out.append(image[y:y + tile, x:x + tile])
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
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "mm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [n, n]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [n, n])],
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
    log.info("matmul %dx%d fp32: numpy %.1f GFLOP/s, ONNX Runtime %.1f GFLOP/s", n, n, result["numpy_gflops"],
             result["ort_gflops"])
    return result


def save_result(name: str, data: dict) -> Path:
    """Write one benchmark's results as RESULTS_DIR/<name>.json (atomically)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=float) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def load_result(name: str) -> dict | None:
    """RESULTS_DIR/<name>.json, or None when that benchmark has not run."""
    path = RESULTS_DIR / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def percentile_ms(values: list[float], q: float) -> float:
    """The q-th percentile of seconds, in milliseconds."""
    return float(np.percentile(np.asarray(values) * 1000.0, q)) if values else float("nan")


def scene_cli_options(models: Path, variant: str, overlap: int) -> list[str]:
    """The `agriland segment` / `agriland batch` options the scene benchmarks share (Sentinel-2 10 m band order)."""
    return ["--models", str(models), "--variant", variant, "--overlap", str(overlap), "--bands", "sentinel2-10m",
            "--provider", "cpu", "--no-progress"]


def replace_section(path: Path, begin: str, end: str, section: str, append: bool = True) -> None:
    """Write `section` (which starts with `begin` and ends with `end`) between those markers of `path`, keeping the
    rest of the page; a page without the markers gets it appended (or, with `append=False`, put first)."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section.rstrip("\n") + rest.split(end, 1)[1]
    elif append:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        text = section + ("\n" + text if text else "")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def baseline_tree(ref: str) -> Path:
    """The code of git `ref` exported to out/bench/baseline-<ref> (served from there, models from --models)."""
    folder = WORK / f"baseline-{ref.replace('/', '_')}"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder
