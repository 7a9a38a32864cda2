"""Service level: locust (headless, loopback) at 1/8/32/64 users on /segment and /cluster, three servers.

Servers, one after another in the same run: the ONNX service with its micro-batcher (AGRILAND_MAX_BATCH_SIZE=16),
and the same without batching (AGRILAND_MAX_BATCH_SIZE=1). Then
model-only ONNX Runtime throughput at the batch size the service reached, for the ratio.
Reproduce: `.venv/bin/python -m bench.service_load [--quick] [--duration 20]`.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import resource
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np

from bench.common import ROOT, WORK, load_average, load_result, machine_info, save_result, setup_logging, time_runs
from bench.models import MODELS_DIR, TILES_DIR, prepare
from bench.server import Server, log_tail

log = logging.getLogger(__name__)

USERS = (1, 8, 32, 64)
LOCUST = ROOT / ".venv" / "bin" / "locust"
MODEL_OF = {"/segment": "unet", "/cluster": "dec", "/segment_raw": "unet"}


def server_configs() -> dict[str, dict]:
    base = {"AGRILAND_MODELS_DIR": str(MODELS_DIR), "AGRILAND_PROVIDERS": "cpu"}
    return {
        "onnx_batched": {
            "target": "serving.service:Agriland",
            "endpoints": ("/segment", "/cluster"),
            "env": {**base, "AGRILAND_MAX_BATCH_SIZE": "16"},
        },
        "onnx_unbatched": {
            "target": "serving.service:Agriland",
            "endpoints": ("/segment", "/cluster"),
            "env": {**base, "AGRILAND_MAX_BATCH_SIZE": "1"},
        },
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _read_stats(prefix: Path) -> dict:
    with open(f"{prefix}_stats.csv", encoding="utf-8") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    errors: dict[str, int] = {}
    failures = Path(f"{prefix}_failures.csv")
    if failures.is_file():
        with failures.open(encoding="utf-8") as handle:
            for r in csv.DictReader(handle):
                errors[r["Error"][:160]] = int(r["Occurrences"])
    number = lambda key: float(row[key]) if row[key] not in ("", "N/A") else float("nan")  # noqa: E731
    return {
        "requests": int(row["Request Count"]),
        "failures": int(row["Failure Count"]),
        "rps": number("Requests/s"),
        "p50_ms": number("50%"),
        "p95_ms": number("95%"),
        "p99_ms": number("99%"),
        "mean_ms": number("Average Response Time"),
        "errors": errors,
    }


def run_point(server: Server, endpoint: str, users: int, duration_s: int) -> dict:
    """One locust run; mean batch size from the /metrics histogram delta; client and server CPU seconds."""
    model = MODEL_OF[endpoint]
    sum0, count0 = server.batch_counters(model)
    server_cpu0, client_cpu0 = server.cpu_seconds(), _children_cpu()
    prefix = WORK / "locust" / f"{server.label}{endpoint.replace('/', '_')}_u{users}"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "BENCH_ENDPOINT": endpoint, "BENCH_TILES_DIR": str(TILES_DIR)}
    command = [
        str(LOCUST),
        "-f",
        str(ROOT / "bench" / "locustfile.py"),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{duration_s}s",
        "--stop-timeout",
        "120",
        "--host",
        server.url,
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if not Path(f"{prefix}_stats.csv").is_file():
        raise RuntimeError(f"locust wrote no stats (exit {done.returncode}): {done.stderr[-2000:]}")
    stats = _read_stats(prefix)
    sum1, count1 = server.batch_counters(model)
    batches = count1 - count0
    stats.update(
        {
            "server": server.label,
            "endpoint": endpoint,
            "users": users,
            "duration_s": duration_s,
            "wall_s": wall,
            "mean_batch": (sum1 - sum0) / batches if batches else float("nan"),
            "model_runs": batches,
            "server_cpu_s": server.cpu_seconds() - server_cpu0,
            "client_cpu_s": _children_cpu() - client_cpu0,
            "load_average": load_average()[0],
        }
    )
    log.info(
        "%s %s u%d: %.2f req/s, p50 %.0f ms, p99 %.0f ms, %d failures, mean batch %.2f",
        server.label,
        endpoint,
        users,
        stats["rps"],
        stats["p50_ms"],
        stats["p99_ms"],
        stats["failures"],
        stats["mean_batch"],
    )
    return stats


def warm_up(server: Server, endpoints: tuple[str, ...]) -> None:
    tile = next(TILES_DIR.glob("*.png")).read_bytes()
    with httpx.Client(timeout=120.0) as client:
        for endpoint in endpoints:
            for _ in range(2):
                response = client.post(server.url + endpoint, content=tile, headers={"Content-Type": "image/png"})
                if response.status_code != 200:
                    raise RuntimeError(
                        f"{server.label} {endpoint} warm-up answered {response.status_code}: {response.text[:300]}"
                    )


def model_only(batches: dict[str, list[int]], seconds: float) -> dict[str, dict]:
    """ONNX Runtime fp32 alone (the service's session settings): ms per call and tiles/s at each batch size."""
    from bench.models import sample_tiles
    from inference.models.onnx_model import OnnxModel
    from inference.models.sessions import default_cpu_threads

    tiles = sample_tiles()[0][:32]
    out: dict[str, dict] = {}
    for name, sizes in batches.items():
        model = OnnxModel.load(MODELS_DIR / name / "fp32", "cpu", default_cpu_threads(1))
        out[name] = {}
        for b in sorted(set(sizes)):
            times = time_runs(lambda: model.run(tiles[:b]), 3, seconds)
            median = float(np.median(times))
            out[name][str(b)] = {
                "ms_per_call": 1000 * median,
                "tiles_per_s": b / median,
                "p50_ms": 1000 * float(np.percentile(times, 50)),
            }
            log.info("model-only %s b%d: %.1f ms per call, %.2f tiles/s", name, b, 1000 * median, b / median)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s per point instead of 20 s")
    parser.add_argument("--duration", type=int, default=None, help="seconds per locust point")
    parser.add_argument("--servers", default=None, help="comma-separated; default: onnx_batched,onnx_unbatched")
    parser.add_argument("--users", default=",".join(map(str, USERS)))
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only these servers' points in the saved results (keeps the model-only reference)",
    )
    args = parser.parse_args(argv)
    setup_logging()
    duration = args.duration or (5 if args.quick else 20)
    users = tuple(int(u) for u in args.users.split(","))
    prepare()
    configs = server_configs()
    result: dict = {
        "machine": machine_info(),
        "duration_s": duration,
        "users": list(users),
        "points": [],
        "servers": {},
        "quick": args.quick,
    }
    servers = args.servers or "onnx_batched,onnx_unbatched"
    for label in servers.split(","):
        config = configs[label]
        server = Server(config["target"], config["env"], label)
        try:
            server.start()
            warm_up(server, config["endpoints"])
            rss_ready = server.rss_mb()["total"]
            for endpoint in config["endpoints"]:
                for n in users:
                    result["points"].append(run_point(server, endpoint, n, duration))
            result["servers"][label] = {
                "cold_start_s": server.cold_start_s,
                "rss_after_warmup_mb": rss_ready,
                "peak_rss_mb": server.peak_rss_mb,
                "env": {k: v for k, v in config["env"].items() if k.startswith(("AGRILAND_MAX", "AGRILAND_ORT"))},
            }
        except Exception:
            log.error("%s failed; server log tail:\n%s", label, log_tail(server.log_path))
            raise
        finally:
            server.stop()
    if args.merge and (saved := load_result("service_load")) is not None:
        ran = set(result["servers"])
        saved["points"] = [p for p in saved["points"] if p["server"] not in ran] + result["points"]
        saved["servers"].update(result["servers"])
        saved.setdefault("rerun", []).append(
            {"servers": sorted(ran), "date": result["machine"]["date"], "load_average_after": load_average()[0]}
        )
        log.info("wrote %s", save_result("service_load", saved))
        return 0
    at_32 = [
        p for p in result["points"] if p["server"] == "onnx_batched" and p["users"] == max(u for u in users if u <= 32)
    ]
    sizes: dict[str, list[int]] = {"unet": [1, 16], "dec": [1, 16]}
    for point in at_32:
        if point["mean_batch"] == point["mean_batch"]:  # not NaN
            sizes[MODEL_OF[point["endpoint"]]].append(max(1, round(point["mean_batch"])))
    result["model_only"] = model_only(sizes, 2.0 if args.quick else 6.0)
    result["load_average_after"] = load_average()
    log.info("wrote %s", save_result("service_load", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
