"""The GPU path in one command: CUDA EP fp32/fp16, TensorRT EP, IO binding, batch sweep, CPU decode rate per core."""

from __future__ import annotations

import argparse
import io
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from contract.reports import replace_section
from inference.models.sessions import (
    CONV_ALGO_SEARCHES,
    RuntimeOptions,
    create_session,
    cuda_loadable,
    nvidia_device_present,
    tensorrt_options,
)

ROOT = Path(__file__).resolve().parents[1]

log = logging.getLogger("bench.gpu")

BEGIN, END = "<!-- gpu:begin -->", "<!-- gpu:end -->"
NO_GPU = "no GPU: not run"
COMMAND = ".venv/bin/python -m bench.gpu"


def gpu_status() -> tuple[bool, str]:
    """(usable, why): an NVIDIA device, onnxruntime-gpu's CUDA provider, and its CUDA 13 / cuDNN 9 libraries."""
    import onnxruntime as ort

    if not nvidia_device_present():
        return False, "no NVIDIA device on this machine (/dev/nvidia0 absent)"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False, f"onnxruntime {ort.__version__} has no CUDA provider (is onnxruntime-gpu installed?)"
    if not cuda_loadable():
        return False, "an NVIDIA device is present but the CUDA 13 / cuDNN 9 libraries cannot be loaded"
    return True, "CUDA provider usable"


def gpu_name() -> str:
    """nvidia-smi's name, memory and driver of GPU 0 ('unknown' without nvidia-smi)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "unknown (no nvidia-smi)"
    out = subprocess.run(
        [smi, "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return out.splitlines()[0] if out else "unknown"


def _timed(fn: Callable[[], object], runs: int) -> float:
    """Median seconds of `runs` calls after one untimed call."""
    fn()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def sweep(session, tiles: np.ndarray, batches: list[int], runs: int, io_binding: bool) -> list[dict]:
    """tiles/s per batch size; with IO binding the input is copied to the GPU once and outputs stay there."""
    import onnxruntime as ort

    name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs()]
    rows = []
    for batch in batches:
        x = np.ascontiguousarray(tiles[np.arange(batch) % len(tiles)])
        started = time.perf_counter()
        if io_binding:
            binding = session.io_binding()
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0))
            for out in outputs:
                binding.bind_output(out, "cuda", 0)

            def call() -> None:
                session.run_with_iobinding(binding)
                binding.synchronize_outputs()
        else:

            def call() -> None:
                session.run(outputs, {name: x})

        call()
        first = time.perf_counter() - started
        seconds = _timed(call, runs)
        rows.append(
            {"batch": batch, "first_run_s": first, "ms_per_batch": seconds * 1e3, "tiles_per_s": batch / seconds}
        )
    return rows


def decode_rate(tile: int, n: int = 64) -> dict[str, float]:
    """PNG and JPEG tiles decoded per second on ONE core (inference.tiles.decoding.decode_image, single thread)."""
    from PIL import Image

    from inference.tiles.decoding import decode_image

    rng = np.random.default_rng(0)
    result = {}
    for fmt in ("PNG", "JPEG"):
        blobs = []
        for _ in range(8):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (tile, tile, 3), dtype=np.uint8)).save(buffer, format=fmt)
            blobs.append(buffer.getvalue())
        started = time.perf_counter()
        for i in range(n):
            decode_image(blobs[i % len(blobs)])
        result[f"{fmt.lower()}_tiles_per_s_per_core"] = n / (time.perf_counter() - started)
    return result


def measure(models: Path, quick: bool, max_batch: int, cache: Path) -> dict:
    """Every GPU figure for each exported model folder found under `models` (fp32 and fp16)."""
    import onnxruntime as ort

    from contract.manifest import read_manifest

    batches = [1, 8] if quick else sorted({1, 2, 4, 8, 16, 32, max_batch})
    runs = 3 if quick else 20
    searches = ["EXHAUSTIVE"] if quick else list(CONV_ALGO_SEARCHES)
    trt = "TensorrtExecutionProvider" in ort.get_available_providers()
    results: list[dict] = []
    for folder in sorted(p for p in models.glob("*/*") if (p / "model.onnx").is_file()):
        manifest = read_manifest(folder)
        if manifest.variant not in ("fp32", "fp16"):
            continue
        tiles = np.random.default_rng(0).integers(
            0, 256, (max(batches), manifest.tile_size, manifest.tile_size, 3), dtype=np.uint8
        )
        label = f"{manifest.name}/{manifest.variant}"
        for search in searches:
            started = time.perf_counter()
            session = create_session(folder / "model.onnx", "cuda", runtime=RuntimeOptions(conv_algo_search=search))
            load_s = time.perf_counter() - started
            provider = session.get_providers()[0]
            for binding in (False, True):
                rows = sweep(session, tiles, batches, runs, binding)
                results.append(
                    {
                        "model": label,
                        "provider": provider,
                        "algo_search": search,
                        "io_binding": binding,
                        "session_s": load_s,
                        "rows": rows,
                    }
                )
                log.info(
                    "%s %s %s io_binding=%s: %s",
                    label,
                    provider,
                    search,
                    binding,
                    ", ".join(f"b{r['batch']} {r['tiles_per_s']:.0f}/s" for r in rows),
                )
        if trt:
            options = tensorrt_options(
                manifest.tile_size,
                max(batches),
                cache / manifest.name / manifest.variant,
                fp16=manifest.variant == "fp16",
            )
            for attempt in ("cold cache", "warm cache"):
                try:
                    started = time.perf_counter()
                    session = create_session(folder / "model.onnx", "tensorrt", trt_options=options)
                    rows = sweep(session, tiles, batches, runs, io_binding=True)
                except Exception as err:  # noqa: BLE001 - TensorRT libraries may be missing or refuse the graph
                    results.append({"model": label, "provider": "TensorrtExecutionProvider", "error": str(err)})
                    break
                results.append(
                    {
                        "model": label,
                        "provider": session.get_providers()[0],
                        "algo_search": attempt,
                        "io_binding": True,
                        "session_s": time.perf_counter() - started,
                        "rows": rows,
                    }
                )
    return {
        "runs": results,
        "tensorrt_available": trt,
        "batches": batches,
        "decode": decode_rate(256, 32 if quick else 256),
    }


def render(result: dict) -> str:
    """The GPU section of docs/benchmarks.md, between its markers."""
    command = COMMAND + (" --quick" if result.get("quick") else "")
    lines = [BEGIN, "## GPU", "", f"Command: `{command}`; run {result['date']}.", ""]
    if result["status"] != "measured":
        lines += [
            f"**{NO_GPU}** — {result['reason']}. The script is ready: on a machine with an NVIDIA GPU "
            "and onnxruntime-gpu's CUDA 13 / cuDNN 9 libraries it measures the CUDA provider (fp32, fp16; "
            "cudnn_conv_algo_search EXHAUSTIVE / HEURISTIC / DEFAULT, the service's "
            "AGRILAND_CUDNN_CONV_ALGO_SEARCH), IO binding, a batch-size sweep, the "
            "TensorRT provider with an engine cache and a 1..max-batch shape profile, and the CPU decode "
            "rate per core that feeds it.",
            END,
            "",
        ]
        return "\n".join(lines)
    lines += [
        f"GPU: {result['gpu']}. TensorRT provider available: {result['tensorrt_available']}.",
        "",
        "| model | provider | conv algo / cache | IO binding | session s | batch | first run s | ms/batch | tiles/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for run in result["runs"]:
        if "error" in run:
            lines.append(f"| {run['model']} | {run['provider']} | failed: {run['error'][:120]} | | | | | | |")
            continue
        for row in run["rows"]:
            lines.append(
                f"| {run['model']} | {run['provider']} | {run['algo_search']} | {run['io_binding']} | "
                f"{run['session_s']:.1f} | {row['batch']} | {row['first_run_s']:.2f} | "
                f"{row['ms_per_batch']:.2f} | {row['tiles_per_s']:.1f} |"
            )
    best: dict[str, tuple[float, str]] = {}  # model -> (tiles/s at the largest batch, conv algo search)
    for run in result["runs"]:
        if "error" not in run and run["provider"] == "CUDAExecutionProvider" and not run["io_binding"]:
            rate = run["rows"][-1]["tiles_per_s"]
            if rate > best.get(run["model"], (0.0, ""))[0]:
                best[run["model"]] = (rate, run["algo_search"])
    lines += [""] + [
        f"- {model}: fastest cudnn_conv_algo_search at batch {max(result['batches'])}: **{algo}** "
        f"({rate:.1f} tiles/s); set AGRILAND_CUDNN_CONV_ALGO_SEARCH accordingly."
        for model, (rate, algo) in sorted(best.items())
    ]
    decode = result["decode"]
    lines += [
        "",
        f"CPU decode (inference.tiles.decoding.decode_image, one core, 256 px): "
        f"PNG {decode['png_tiles_per_s_per_core']:.0f} tiles/s, JPEG {decode['jpeg_tiles_per_s_per_core']:.0f} "
        "tiles/s per core; cores needed to feed the GPU = its tiles/s divided by these.",
        END,
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="exported models (default models/)")
    parser.add_argument("--quick", action="store_true", help="batches 1 and 8, one conv algo search, 3 runs")
    parser.add_argument("--max-batch", type=int, default=16, help="the micro-batcher's largest batch (default 16)")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md", help="report to update")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "out" / "bench" / "results" / "gpu.json", help="raw results (JSON)"
    )
    parser.add_argument("--trt-cache", type=Path, default=ROOT / "out" / "bench" / "trt-cache")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    usable, reason = gpu_status()
    result: dict = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "quick": args.quick}
    if usable:
        result.update(
            status="measured", gpu=gpu_name(), **measure(args.models, args.quick, args.max_batch, args.trt_cache)
        )
    else:
        result.update(status=NO_GPU, reason=reason)
        log.warning("%s: %s", NO_GPU, reason)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    replace_section(args.doc, BEGIN, END, render(result))
    print(f"GPU benchmark: {result['status']}" + ("" if usable else f" ({reason})"))
    print(f"wrote {args.out} and the GPU section of {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
