"""Where the service's time goes outside the model: py-spy on the worker under locust load, plus /metrics' batch sizes.

Reproduce: `.venv/bin/python bench/profile_service.py [--endpoint /cluster] [--users 32] [--seconds 20]
[--env AGRILAND_ORT_SPINNING=0]` with `py-spy` on PATH (or --py-spy PATH; `pip install --target DIR py-spy`
keeps it out of the project's environment). Writes out/bench/profile/<label>.txt (collapsed stacks) and
out/bench/results/profile_<label>.json: the share of the worker's samples per category (ONNX Runtime run,
decode, response building, HTTP/ASGI, event loop, idle threads) and the top leaf functions.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/profile_service.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import WORK, load_average, machine_info, save_result, setup_logging
from bench.models import MODELS_DIR, prepare
from bench.server import Server
from bench.service_load import MODEL_OF, run_point

log = logging.getLogger(__name__)

OUT = WORK / "profile"
# First matching frame (searched leaf -> root) names the category of a sample.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("onnxruntime run", ("run (onnxruntime", "onnxruntime_inference_collection")),
    ("decode + fit (inference.tiles.decoding / masks / endpoints.prepare_tiles)",
     ("decode_image", "prepare_tiles", "fit_tile", "PIL/")),
    ("response building (results, PNG/RLE, JSON)",
     ("segment_results", "cluster_results", "mask_png_base64", "rle_encode", "pydantic", "json", "render")),
    ("micro-batcher", ("inference/models/batching.py",)),
    ("request parsing (serving.http_input)", ("http_input.py",)),
    ("HTTP / ASGI (uvicorn, starlette, bentoml)", ("uvicorn", "starlette", "h11", "httptools", "_bentoml", "bentoml/")),
    ("metrics (prometheus_client)", ("prometheus_client",)),
    ("event loop / asyncio", ("asyncio/", "uvloop")),
)
# Leaf frames of threads that are parked, not working (py-spy --idle keeps them so shares can be compared).
IDLE = ("(threading.py:", "(selectors.py:", "(queue.py:", "(aiosqlite/core.py:", "_wait_for_tstate_lock",
        "_worker (concurrent/futures/thread.py:81)")


def categorize(stack: list[str]) -> str:
    """The category of one sampled stack (frames root -> leaf as py-spy writes them)."""
    leaf_first = list(reversed(stack))
    if leaf_first and any(i in leaf_first[0] for i in IDLE):
        return "idle (waiting threads)"
    for name, needles in CATEGORIES:
        if any(needle in frame for frame in leaf_first for needle in needles):
            return name
    return "other Python"


def summarize(raw: Path) -> dict:
    """Samples per category and per leaf frame from py-spy's `--format raw` (collapsed stacks) output."""
    categories: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(encoding="utf-8", errors="replace").splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack_text.split(";")
        total += count
        category = categorize(frames[1:] if frames and frames[0].startswith(("process", "thread")) else frames)
        categories[category] += count
        if category != "idle (waiting threads)":
            leaves[frames[-1][:140]] += count
    busy = total - categories["idle (waiting threads)"]
    return {"samples": total, "busy_samples": busy,
            "categories": {k: {"samples": v, "share_of_busy": v / busy if busy else 0.0}
                           for k, v in categories.most_common()},
            "top_leaves": [{"frame": k, "samples": v, "share_of_busy": v / busy if busy else 0.0}
                           for k, v in leaves.most_common(25)]}


def _driver(kind: str, endpoint: str, server: Server, body_name: str = "multipart"):  # noqa: ANN202

    """A callable (users, seconds) -> {"rps", "mean_batch", ...} for locust or wrk (posting bench.overhead's
    `body_name` request: multipart, multipart16, raw1, raw16)."""
    if kind == "locust":
        return lambda users, seconds: run_point(server, endpoint, users, seconds)
    from bench import wrk
    from bench.overhead import bodies

    body = bodies(64)[body_name]

    def drive(users: int, seconds: int) -> dict:
        before = server.batch_counters(MODEL_OF[endpoint])
        point = wrk.as_dict(wrk.run(server.url, body, users, seconds, f"profile{endpoint.replace('/', '_')}"))
        after = server.batch_counters(MODEL_OF[endpoint])
        runs = after[1] - before[1]
        return {**point, "mean_batch": (after[0] - before[0]) / runs if runs else float("nan")}

    return drive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default="/cluster", choices=sorted(MODEL_OF) + ["/segment_raw"])
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server (repeatable)")
    parser.add_argument("--label", default=None)
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"))
    parser.add_argument("--driver", choices=("locust", "wrk"), default="locust",
                        help="wrk: the C load generator (bench/setup.sh), posting one real JPEG tile as multipart")
    parser.add_argument("--body", default="multipart", help="wrk: multipart, multipart16, raw1 or raw16")
    parser.add_argument("--models", type=Path, default=None, help="artifact root to serve (default: the bench's)")
    args = parser.parse_args(argv)
    setup_logging()
    if args.models is None:
        prepare()
    extra = dict(item.split("=", 1) for item in args.env)
    label = args.label or ("profile" + args.endpoint.replace("/", "_") + "".join(f"_{k}={v}" for k, v in extra.items()))
    env = {"AGRILAND_MODELS_DIR": str((args.models or MODELS_DIR).resolve()), "AGRILAND_PROVIDERS": "cpu", **extra}
    OUT.mkdir(parents=True, exist_ok=True)
    raw = OUT / f"{label}.txt"
    with Server("serving.service:Agriland", env, label) as server:
        drive = _driver(args.driver, args.endpoint, server, args.body)
        drive(args.users, 3)  # warm-up
        workers = [p for p in server.processes() if "_bentoml_impl.worker" in " ".join(p.cmdline())]
        pid = (workers or server.processes())[-1].pid
        record = [args.py_spy, "record", "--pid", str(pid), "--rate", str(args.rate), "--duration",
                  str(args.seconds + 2), "--idle", "--threads", "--nonblocking"]
        spy_raw = subprocess.Popen([*record, "--format", "raw", "--output", str(raw)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        load_before = load_average()[0]
        point = drive(args.users, args.seconds)
        spy_raw.wait(timeout=120)
        if spy_raw.returncode != 0:
            log.error("py-spy failed: %s", spy_raw.stderr.read().decode()[-800:] if spy_raw.stderr else "")
            return 1
        histogram = [line for line in server.metrics_text().splitlines()
                     if line.startswith("agriland_batch_size_bucket") and f'model="{MODEL_OF[args.endpoint]}"' in line]
    summary = summarize(raw)
    result = {"machine": machine_info(), "label": label, "endpoint": args.endpoint, "users": args.users,
              "seconds": args.seconds, "env": extra, "point": point, "load_average_before": load_before,
              "load_average_after": load_average()[0], "batch_size_histogram": histogram, "profile": summary,
              "raw": str(raw), "note": "py-spy --nonblocking --idle --threads on the BentoML worker process"}
    save_result(f"profile_{label}", result)
    log.info("%s: %.1f req/s, mean batch %.2f; busy samples by category:", label, point["rps"], point["mean_batch"])
    for name, share in summary["categories"].items():
        log.info("  %5.1f %%  %s", 100 * share["share_of_busy"], name)
    print(json.dumps({k: v["share_of_busy"] for k, v in summary["categories"].items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
