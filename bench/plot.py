"""docs/benchmarks.png: model throughput vs batch size, service throughput and latency vs concurrent users."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

log = logging.getLogger(__name__)

STYLES = {"keras": "o--", "ort_fp32": "s-", "ort_int8": "^-"}
SERVER_STYLES = {"onnx_batched": "s-", "onnx_batched_nospin": "d-.", "onnx_batched_spin": "d-.",
                 "onnx_unbatched": "x--", "keras_batched": "o:"}


def plot(model_speed: dict | None, service: dict | None, path: Path) -> Path:
    """Three panels; panels whose results are missing are left with a note."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    ax = axes[0]
    if model_speed:
        for name, data in model_speed["models"].items():
            for backend, style in STYLES.items():
                rows = [r for r in data["rows"] if r["backend"] == backend]
                ax.plot([r["batch"] for r in rows], [r["tiles_per_s"] for r in rows], style,
                        label=f"{name} {backend}", color="tab:green" if name == "unet" else "tab:purple",
                        alpha=0.55 if backend == "keras" else 1.0)
        ax.set_xscale("log", base=2)
        ax.set_xticks(model_speed["batches"], [str(b) for b in model_speed["batches"]])
    tile = (model_speed or {}).get("tile", 64)
    ax.set(title=f"Model level (CPU, {tile} px): tiles/s vs batch", xlabel="batch size", ylabel="tiles / s")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    for ax, key, title, ylabel in ((axes[1], "rps", "Service throughput vs users", "requests (tiles) / s"),
                                   (axes[2], "p50_ms", "Service latency vs users (p50 solid-ish, p99 faint)",
                                    "latency (ms)")):
        if service:
            for server, style in SERVER_STYLES.items():
                for endpoint, color in (("/segment", "tab:green"), ("/cluster", "tab:purple")):
                    pts = [p for p in service["points"] if p["server"] == server and p["endpoint"] == endpoint]
                    if not pts:
                        continue
                    users = [p["users"] for p in pts]
                    ax.plot(users, [p[key] for p in pts], style, color=color, label=f"{server} {endpoint}")
                    if key == "p50_ms":
                        ax.plot(users, [p["p99_ms"] for p in pts], style, color=color, alpha=0.3)
            ax.set_xscale("log", base=2)
            ax.set_xticks(service["users"], [str(u) for u in service["users"]])
            if key == "p50_ms":
                ax.set_yscale("log")
        ax.set(title=title, xlabel="concurrent users (locust)", ylabel=ylabel)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
    log.info("wrote %s", path)
    return path
