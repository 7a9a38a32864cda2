"""Serving memory and cold start: `bentoml serve` with both models, spawn -> /readyz 200, RSS of the process tree.

RSS is summed over the server's process tree (psutil) when ready, after one tile per endpoint, and after one
16-tile request per endpoint (ONNX Runtime grows its arenas on the first large batch). fp32 is the default;
the int8 variants are measured once for comparison. Reproduce: `.venv/bin/python -m bench.memory_coldstart`.
"""

from __future__ import annotations

import argparse
import logging

import httpx

from bench.common import load_average, machine_info, save_result, setup_logging
from bench.models import MODELS_DIR, TILES_DIR, prepare
from bench.server import Server

log = logging.getLogger(__name__)


def measure(variant: str, label: str, extra_env: dict[str, str] | None = None) -> dict:
    env = {
        "AGRILAND_MODELS_DIR": str(MODELS_DIR),
        "AGRILAND_PROVIDERS": "cpu",
        "AGRILAND_DEC_VARIANT": variant,
        "AGRILAND_UNET_VARIANT": variant,
        **(extra_env or {}),
    }
    tiles = [p.read_bytes() for p in sorted(TILES_DIR.glob("*.png"))[:16]]
    with Server("serving.service:Agriland", env, label) as server:
        out = {
            "variant": variant,
            "env": extra_env or {},
            "cold_start_s": server.cold_start_s,
            "rss_ready_mb": server.rss_mb(),
        }
        with httpx.Client(timeout=300.0) as client:
            for endpoint in ("/segment", "/cluster"):
                response = client.post(server.url + endpoint, content=tiles[0], headers={"Content-Type": "image/png"})
                response.raise_for_status()
            out["rss_after_one_tile_mb"] = server.rss_mb()
            for endpoint in ("/segment", "/cluster"):
                files = [("file", (f"t{i}.png", t, "image/png")) for i, t in enumerate(tiles)]
                client.post(server.url + endpoint, files=files).raise_for_status()
            out["rss_after_batch16_mb"] = server.rss_mb()
        out["n_processes"] = len(server.processes())
    log.info(
        "%s: cold start %.1f s, RSS ready %.0f MB, after batch 16 %.0f MB",
        label,
        out["cold_start_s"],
        out["rss_ready_mb"]["total"],
        out["rss_after_batch16_mb"]["total"],
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one fp32 start instead of two, no int8 start")
    args = parser.parse_args(argv)
    setup_logging()
    prepare()
    result: dict = {"machine": machine_info(), "quick": args.quick, "runs": []}
    for i in range(1 if args.quick else 2):
        result["runs"].append(measure("fp32", f"coldstart-fp32-{i}"))
    from inference.models.runtime import CPU_ARENA_ENV, RuntimeOptions

    arena = "0" if RuntimeOptions().cpu_arena else "1"  # the CPU arena flipped, side by side
    result["runs"].append(measure("fp32", f"coldstart-fp32-arena{arena}", {CPU_ARENA_ENV: arena}))
    unservable = [
        str(p.parent)
        for p in sorted(MODELS_DIR.glob("*/int8/model.onnx"))
        if not (p.parent / "manifest.json").is_file()
    ]
    if unservable:  # an int8 file that failed export's parity gate has no manifest, so serving refuses it
        result["int8_skipped"] = f"no manifest (failed the export parity gate): {', '.join(unservable)}"
        log.warning("int8 start skipped: %s", result["int8_skipped"])
    elif not args.quick:
        result["runs"].append(measure("int8", "coldstart-int8"))
    result["model_files_mb"] = {
        str(p.relative_to(MODELS_DIR)): p.stat().st_size / 2**20 for p in sorted(MODELS_DIR.glob("*/*/model.onnx"))
    }
    result["load_average_after"] = load_average()
    log.info("wrote %s", save_result("memory_coldstart", result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
