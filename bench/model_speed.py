"""Model level: Keras predict vs ONNX Runtime fp32 vs int8 (CPU) on the same tiles at batch 1, 8 and 32.

Reproduce: `.venv/bin/python -m bench.model_speed [--quick]` (writes out/bench/results/model_speed.json).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np

from bench.common import TILE, load_average, machine_info, matmul_peak, save_result, setup_logging, time_runs
from bench.flops import count_flops, params_of
from bench.models import BenchModel, parity_tiles, prepare, sample_tiles

log = logging.getLogger(__name__)

BATCHES = (1, 8, 32)
WORK_TILES = 32  # every timed call processes these 32 tiles, in batches of b
OUTPUTS = {"unet": ("mask",), "dec": ("embedding", "q")}


def ort_session(path: Path):  # noqa: ANN201 - onnxruntime.InferenceSession
    """A CPU session configured like the service's (inference.models.sessions.create_session)."""
    from inference.models.sessions import create_session

    return create_session(path, providers="cpu", intra_op_threads=len(os.sched_getaffinity(0)))


def ort_runner(session, tiles: np.ndarray, batch: int):  # noqa: ANN001, ANN201
    def run() -> None:
        for start in range(0, len(tiles), batch):
            session.run(None, {"image": tiles[start : start + batch]})

    return run


def keras_runner(model, tiles: np.ndarray, batch: int):  # noqa: ANN001, ANN201
    def run() -> None:
        model.predict(tiles, batch_size=batch, verbose=0)

    return run


def _row(backend: str, batch: int, times: list[float], n_tiles: int, gflop: float, peak: float) -> dict:
    best = min(times)
    median = float(np.median(times))
    tiles_s = n_tiles / median
    return {
        "backend": backend,
        "batch": batch,
        "runs": len(times),
        "tiles_per_s": tiles_s,
        "ms_per_tile": 1000.0 * median / n_tiles,
        "best_ms_per_tile": 1000.0 * best / n_tiles,
        "gflops": gflop * tiles_s,
        "peak_ratio": gflop * tiles_s / peak,
        "load_average": load_average()[0],
    }


def agreement(name: str, fp32: Path, int8: Path, keras_model) -> dict[str, float]:  # noqa: ANN001
    """int8 vs fp32 (and fp32 vs Keras) on held-out real EuroSAT tiles: mask IoU or cluster agreement."""
    from export.parity import cluster_agreement, mask_iou

    tiles = parity_tiles()
    out = {}
    ref = {k: v for k, v in zip(OUTPUTS[name], ort_session(fp32).run(list(OUTPUTS[name]), {"image": tiles}))}
    got = {k: v for k, v in zip(OUTPUTS[name], ort_session(int8).run(list(OUTPUTS[name]), {"image": tiles}))}
    keras = keras_model.predict(tiles, batch_size=8, verbose=0)
    keras = keras if isinstance(keras, list) else [keras]
    keras_named = dict(zip(keras_model.output_names, keras))
    if name == "unet":
        out["mask_iou_int8_vs_fp32"] = mask_iou(ref["mask"], got["mask"])
        out["mask_iou_fp32_vs_keras"] = mask_iou(np.asarray(keras_named["mask"]), ref["mask"])
        out["max_abs_diff_int8"] = float(np.abs(ref["mask"] - got["mask"]).max())
        out["fp32_positive_fraction"] = float((ref["mask"] >= 0.5).mean())
        out["fp32_prob_std"] = float(ref["mask"].std())
    else:
        out["cluster_agreement_int8_vs_fp32"] = cluster_agreement(ref["q"], got["q"])
        out["cluster_agreement_fp32_vs_keras"] = cluster_agreement(np.asarray(keras_named["q"]), ref["q"])
        out["max_abs_diff_q_int8"] = float(np.abs(ref["q"] - got["q"]).max())
        out["fp32_distinct_clusters"] = int(len(np.unique(ref["q"].argmax(1))))
        out["fp32_mean_max_q"] = float(ref["q"].max(1).mean())
    out["n_tiles"] = len(tiles)
    return out


def bench_model(model: BenchModel, tiles: np.ndarray, peak: float, min_runs: int, min_seconds: float) -> dict:
    """All backends and batch sizes of one model, on the same tiles."""
    from training.keras_objects import load_inference_model

    flops = count_flops(model.onnx("fp32"))
    gflop = float(flops["gflop_per_tile"])
    rows: list[dict] = []
    keras_model = load_inference_model(model.keras)
    for batch in BATCHES:
        times = time_runs(keras_runner(keras_model, tiles, batch), min_runs, min_seconds)
        rows.append(_row("keras", batch, times, len(tiles), gflop, peak))
        log.info("%s keras b%d: %.1f ms/tile", model.name, batch, rows[-1]["ms_per_tile"])
    for variant in ("fp32", "int8"):
        session = ort_session(model.onnx(variant))
        for batch in BATCHES:
            times = time_runs(ort_runner(session, tiles, batch), min_runs, min_seconds)
            rows.append(_row(f"ort_{variant}", batch, times, len(tiles), gflop, peak))
            log.info("%s ort_%s b%d: %.1f ms/tile", model.name, variant, batch, rows[-1]["ms_per_tile"])
        del session
    parity = agreement(model.name, model.onnx("fp32"), model.onnx("int8"), keras_model)
    int8_gated = not (model.onnx("int8").parent / "UNGATED").exists()
    return {
        "origin": model.origin,
        "flops": flops,
        "params": params_of(model.onnx("fp32")),
        "rows": rows,
        "parity": parity,
        "int8_passed_export_gate": int8_gated,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one timed run per point instead of >= 2 and 6 s")
    parser.add_argument("--models", default="unet,dec", help="comma-separated: unet,dec")
    args = parser.parse_args(argv)
    setup_logging()
    names = tuple(args.models.split(","))
    models = prepare(names)
    tiles = sample_tiles()[0][:WORK_TILES]
    load_before = load_average()
    peak = matmul_peak(seconds=1.0 if args.quick else 3.0)
    min_runs, min_seconds = (1, 0.0) if args.quick else (2, 6.0)
    result = {
        "machine": machine_info(),
        "matmul": peak,
        "work_tiles": WORK_TILES,
        "tile": TILE,
        "batches": list(BATCHES),
        "quick": args.quick,
        "load_average_before": load_before,
        "models": {},
    }
    for name in names:
        result["models"][name] = bench_model(models[name], tiles, peak["peak_gflops"], min_runs, min_seconds)
    result["load_average_after"] = load_average()
    result["matmul_after"] = matmul_peak(seconds=1.0 if args.quick else 3.0)
    path = save_result("model_speed", result)
    log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
