"""The tile path against its ceilings, side by side in one run: model alone, plain BentoML, agriland, with wrk.

One real 64 px EuroSAT tile (a shipped JPEG) is posted to every server: BentoML services that answer a constant or
decode + encode without a model (bench/ceiling_services.py, BentoML's default configuration and agriland's lean
one), agriland's `/segment` (1 and 16 tiles per request), the raw fast path `/segment_raw` (1 and 16 tiles per
request), agriland with `AGRILAND_WORKERS=2`, and the code of another git ref (`--baseline main`: what was there
before). Each server gets `wrk -c32` (throughput) and `wrk -c1` (lone latency, median). Model alone: ONNX Runtime
in this process (spinning off, as the service), batch 8 tiles/s and batch 1 median latency, the better of 1 and
all cores' threads. All servers
run at once (idle between their points) and every point is measured in each of `--rounds` interleaved rounds,
model alone between rounds: on shared cores the medians over rounds are what the ratios use. Writes out/bench/results/overhead.json and the "Tile path overhead" section of
docs/benchmarks.md.

Reproduce: `bash bench/setup.sh && .venv/bin/python -m bench.overhead [--models models] [--seconds 10]`.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as `python bench/overhead.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import wrk
from bench.common import (
    DOCS,
    ROOT,
    WORK,
    baseline_tree,
    load_average,
    machine_info,
    save_result,
    setup_logging,
)
from bench.server import Server, log_tail
from inference.models.tta import TTA_ENV, effective_views

log = logging.getLogger(__name__)

TILE_JPEG = ROOT / "samples" / "eurosat-rgb" / "AnnualCrop" / "AnnualCrop_1.jpg"
CONNECTIONS = 32


@contextmanager
def tta_views(views: int) -> Iterator[None]:
    """$AGRILAND_TTA_VIEWS set to `views` inside, as the AGRILAND_TTA_VIEWS server's environment sets it."""
    saved = os.environ.get(TTA_ENV)
    os.environ[TTA_ENV] = str(views)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(TTA_ENV, None)
        else:
            os.environ[TTA_ENV] = saved


def model_only(models: Path, seconds: float) -> dict:
    """ONNX Runtime alone on the tile at the manifest's rotations, and in one rotation under "one_view" (the
    ceiling of the AGRILAND_TTA_VIEWS=1 server)."""
    out = model_rates(models, seconds)
    with tta_views(1):
        out["one_view"] = model_rates(models, seconds)
    return out


def model_rates(models: Path, seconds: float) -> dict:
    """ONNX Runtime alone on the tile: batch 8 tiles/s and batch 1 median ms, at 1 and at all cores' threads
    (spinning off, as the service); the better of the two is the ceiling the service is held to."""
    from PIL import Image

    from contract.artifacts import artifact_folder
    from inference.models.cpus import available_cpus
    from inference.models.onnx_model import OnnxModel

    tile = np.asarray(Image.open(TILE_JPEG).convert("RGB"))
    out: dict = {"threads": {}}
    for threads in sorted({1, available_cpus()}):
        model = OnnxModel.load(artifact_folder(models, "unet", "fp32"), "cpu", threads)
        size = model.tile_size
        tiled = np.ascontiguousarray(np.resize(tile, (size, size, 3)))
        rates: dict = {}
        for batch in (1, 8):
            tiles = np.repeat(tiled[None], batch, axis=0)
            for _ in range(5):
                model.run(tiles)
            times: list[float] = []
            start = time.perf_counter()
            while time.perf_counter() - start < seconds:
                t0 = time.perf_counter()
                model.run(tiles)
                times.append(time.perf_counter() - t0)
            rates[f"batch{batch}"] = {"median_ms": 1000 * statistics.median(times),
                                      "tiles_per_s": batch * len(times) / sum(times), "runs": len(times)}
        out["threads"][str(threads)] = rates
        out["tile_size"] = size
        out["views"] = effective_views(model.manifest.tta_views)
    out["batch8"] = max((r["batch8"] for r in out["threads"].values()), key=lambda r: r["tiles_per_s"])
    out["batch1"] = min((r["batch1"] for r in out["threads"].values()), key=lambda r: r["median_ms"])
    log.info("model alone (best of %s threads, <= %d rotations): batch 1 %.2f ms, batch 8 %.1f tiles/s",
             list(out["threads"]), out["views"], out["batch1"]["median_ms"], out["batch8"]["tiles_per_s"])
    return out


def bodies(tile_size: int) -> dict[str, wrk.Body]:
    """The request of every point: the same real JPEG tile as multipart, 16 of them, raw uint8 NHWC."""
    from PIL import Image

    jpeg = TILE_JPEG.read_bytes()
    one, one_type = wrk.multipart("file", TILE_JPEG.name, jpeg, "image/jpeg")
    many, many_type = wrk.multipart_many("file", [(f"t{i}.jpg", jpeg) for i in range(16)], "image/jpeg")
    rgb = np.asarray(Image.open(TILE_JPEG).convert("RGB"))
    rgb = np.ascontiguousarray(np.resize(rgb, (tile_size, tile_size, 3)))
    shape = f"{tile_size},{tile_size},3"
    plain, plain_type = wrk.multipart("file", TILE_JPEG.name, jpeg, "image/jpeg", fields={"mask_mode": "threshold"})
    return {
        "multipart": wrk.Body(one, one_type, "/segment"),
        "multipart_threshold": wrk.Body(plain, plain_type, "/segment"),
        "multipart16": wrk.Body(many, many_type, "/segment", tiles=16),
        "raw1": wrk.Body(rgb.tobytes(), "application/octet-stream", f"/segment_raw?shape=1,{shape}"),
        "raw16": wrk.Body(np.repeat(rgb[None], 16, 0).tobytes(), "application/octet-stream",
                          f"/segment_raw?shape=16,{shape}", tiles=16),
    }


def servers(models: Path, baseline: str | None) -> list[dict]:
    """(label, target, env, cwd, bodies to post) of every server, in the order they run."""
    # 32 connections x 16 tiles = 512 tiles in flight: a queue of 1024 keeps the multi-tile points from 503s
    base = {"AGRILAND_MODELS_DIR": str(models.resolve()), "AGRILAND_PROVIDERS": "cpu", "BENTOML_DO_NOT_TRACK": "true",
            "AGRILAND_MAX_QUEUE_TILES": "1024"}
    plan = [
        {"label": "bentoml_constant", "target": "bench.ceiling_services:Constant", "env": {}, "bodies": ["multipart"]},
        {"label": "bentoml_decode_encode", "target": "bench.ceiling_services:DecodeEncode", "env": {},
         "bodies": ["multipart"]},
        {"label": "bentoml_constant_lean", "target": "bench.ceiling_services:Constant", "env": {"BENCH_LEAN": "1"},
         "bodies": ["multipart"]},
        {"label": "bentoml_decode_encode_lean", "target": "bench.ceiling_services:DecodeEncode",
         "env": {"BENCH_LEAN": "1"}, "bodies": ["multipart"]},
        {"label": "agriland", "target": "serving.service:Agriland", "env": base,
         "bodies": ["multipart_threshold", "multipart", "multipart16", "raw1", "raw16"]},
        {"label": "agriland_2_workers", "target": "serving.service:Agriland",
         "env": {**base, "AGRILAND_WORKERS": "2"}, "bodies": ["multipart_threshold", "raw1", "raw16"]},
        # one rotation: the model costs a quarter, so the service's own overhead shows (held to model_only's one_view)
        {"label": "agriland_1_view", "target": "serving.service:Agriland", "env": {**base, TTA_ENV: "1"},
         "bodies": ["multipart_threshold", "raw1"]},
    ]
    if baseline:
        tree = baseline_tree(baseline)
        plan.append({"label": f"agriland_{baseline}", "target": "serving.service:Agriland",
                     "env": {**base, "PYTHONPATH": str(tree)}, "cwd": tree, "bodies": ["multipart", "multipart16"]})
    return plan


def start_all(plans: list[dict], requests: dict[str, wrk.Body]) -> list[tuple[dict, Server]]:
    """Every server started and answering before any is measured (idle ones cost nothing but memory)."""
    started: list[tuple[dict, Server]] = []
    try:
        for plan in plans:
            # each its own BENTOML_HOME: a starting `bentoml serve` empties the shared Prometheus folder otherwise
            env = {**plan["env"], "BENTOML_HOME": str(WORK / "bentoml-home" / plan["label"])}
            server = Server(plan["target"], env, plan["label"], cwd=plan.get("cwd"))
            started.append((plan, server))
            server.start()
            for name in plan["bodies"]:
                wrk.check_answer(server.url, requests[name])
                wrk.run(server.url, requests[name], 4, 2, f"{plan['label']}-{name}-warm")
    except Exception:
        for plan, server in started:
            log.error("%s: server log tail:\n%s", plan["label"], log_tail(server.log_path))
            server.stop()
        raise
    return started


def measure_round(started: list[tuple[dict, Server]], requests: dict[str, wrk.Body], seconds: int,
                  round_no: int) -> list[dict]:
    """One wrk -c32 and one wrk -c1 point of every (server, body), in the same order each round."""
    points = []
    for plan, server in started:
        agriland = plan["label"].startswith("agriland")
        for name in plan["bodies"]:
            for connections in (CONNECTIONS, 1):
                before = server.batch_counters("unet") if agriland else (0.0, 0.0)
                server.wait_idle()  # wrk stops sending, not the server working: the last point's queue drains first
                result = wrk.run(server.url, requests[name], connections, seconds, f"{plan['label']}-{name}")
                after = server.batch_counters("unet") if agriland else (0.0, 0.0)
                runs = after[1] - before[1]
                points.append({"server": plan["label"], "body": name, "round": round_no, **wrk.as_dict(result),
                               "mean_batch": (after[0] - before[0]) / runs if runs else None,
                               "load_average": load_average()[0]})
    return points


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="artifact root served (dec/, unet/)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per wrk point")
    parser.add_argument("--rounds", type=int, default=3, help="every point this many times, interleaved; medians")
    parser.add_argument("--baseline", default=None, help="also serve this git ref's code (e.g. main) for before/after")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    setup_logging()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from bench.overhead_report import write_section

    result: dict = {"machine": machine_info(), "seconds": args.seconds, "connections": CONNECTIONS,
                    "models": str(args.models), "tile": str(TILE_JPEG.relative_to(ROOT)),
                    "command": "python -m bench.overhead " + " ".join(argv if argv is not None else sys.argv[1:])}
    result["model_only"] = [model_only(args.models, 2.0)]
    requests = bodies(result["model_only"][0]["tile_size"])
    started = start_all(servers(args.models, args.baseline), requests)
    result["points"] = []
    try:
        for round_no in range(args.rounds):
            log.info("== round %d of %d (load average %.2f)", round_no + 1, args.rounds, load_average()[0])
            result["points"] += measure_round(started, requests, args.seconds, round_no)
            result["model_only"].append(model_only(args.models, 2.0))
        result["rss_mb"] = {plan["label"]: server.peak_rss_mb for plan, server in started}
    finally:
        for _, server in started:
            server.stop()
    result["load_average_after"] = list(load_average())
    log.info("wrote %s", save_result("overhead", result))
    if not args.no_report:
        write_section(result, DOCS / "benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
