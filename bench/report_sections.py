"""The sections of docs/benchmarks.md that bench/report.py renders: shared helpers, the machine and the model level."""

from __future__ import annotations

import math

CMD = ".venv/bin/python -m bench.{}"


ROOF: dict[str, float] = {}  # model -> GFLOP per tile, and "peak" -> GFLOP/s, from model_speed's results


def roofline(name: str, tiles_per_s: float, what: str) -> str:
    """One roofline line: FLOPs per tile, the measured peak and the fraction of it that `tiles_per_s` reaches."""
    if name not in ROOF or "peak" not in ROOF:
        return f"- Roofline {name}: n/a (model_speed has not run)."
    gflop, peak = ROOF[name], ROOF["peak"]
    return (
        f"- **Roofline {name}** ({what}): {f(tiles_per_s, 2)} tiles/s x {f(gflop, 3)} GFLOP/tile = "
        f"{f(tiles_per_s * gflop)} GFLOP/s = **{f(100 * tiles_per_s * gflop / peak)} %** of the {f(peak)} "
        f"GFLOP/s fp32 peak (ceiling {f(peak / gflop, 0)} tiles/s)."
    )


def f(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


class Targets:
    """Collects (target, measured, verdict) rows for the summary table."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add(self, target: str, measured: str, ok: bool | None) -> str:
        self.rows.append((target, measured, verdict(ok)))
        return f"Target {target}: {measured} -> {verdict(ok)}."


def machine_block(machine: dict) -> list[str]:
    v = machine["versions"]
    return [
        f"- Machine: {machine['cpu_model']}, {machine['cores']} cores available to the process "
        f"({machine['threads_per_core']} thread(s) per core), {machine['ram_gb']} GB RAM; ISA: "
        f"{', '.join(machine['isa'])}. Shared with other jobs (load average at start: "
        f"{', '.join(map(str, machine['load_average']))}).",
        f"- Date: {machine['date']}. Python {machine['python']}, onnxruntime-gpu {v['onnxruntime-gpu']} (CPU "
        f"provider), tensorflow {v['tensorflow']} / tf-keras {v['tf-keras']}, bentoml {v['bentoml']}, "
        f"locust {v['locust']}, numpy {v['numpy']}.",
        f"- GPU: {machine['gpu']}.",
    ]


def _when(data: dict) -> str:
    m = data["machine"]
    after = data.get("load_average_after")
    return (
        f"; measured {m['date']}, load average {m['load_average'][0]} at the start"
        + (f", {after[0]:.2f} at the end" if after else "")
        + " (2.0 = this benchmark's own 2 busy cores)"
    )


def peak_of(data: dict) -> float:
    """The fp32 peak: the better of the matmul measurements at the start and the end of the run (on a shared
    machine the lower one is the one that other jobs disturbed)."""
    return max(data["matmul"]["peak_gflops"], data.get("matmul_after", data["matmul"])["peak_gflops"])


def model_section(data: dict, targets: Targets) -> list[str]:
    mm = data["matmul"]
    peak = peak_of(data)
    out = [
        "## 1. Model level",
        "",
        f"Command: `{CMD.format('model_speed')}`" + (" (--quick)" if data["quick"] else "") + _when(data),
        "",
        f"Every timed call runs the same {data['work_tiles']} real EuroSAT RGB sample tiles "
        f"({data.get('tile', 64)} px) in batches of b "
        "(Keras: `model.predict(tiles, batch_size=b)`; ONNX Runtime: `session.run` per batch, CPU provider, "
        "intra-op threads = cores). Median of >= 2 calls and >= 6 s per point. GFLOP/s = FLOPs per tile "
        "(Conv/ConvTranspose/Gemm/MatMul MACs x 2 from the fp32 ONNX graph's inferred shapes) x tiles/s; the "
        f"peak is the best of numpy and ONNX Runtime on a {mm['n']}x{mm['n']} fp32 matmul measured in the same "
        f"run: at the start numpy {f(mm['numpy_gflops'])}, ONNX Runtime {f(mm['ort_gflops'])} GFLOP/s; at the end "
        f"{f(data['matmul_after']['peak_gflops'])} -> peak (the better of the two) **{f(peak)} GFLOP/s**. "
        "Load average before/after: "
        f"{f(data['load_average_before'][0], 2)} / {f(data['load_average_after'][0], 2)}.",
        "",
    ]
    for name, model in data["models"].items():
        fl = model["flops"]
        out += [
            f"### {name}: {model['origin']}",
            "",
            f"{f(fl['gflop_per_tile'], 2)} GFLOP per tile ("
            + ", ".join(f"{op} {f(v, 2)}" for op, v in fl["gflop_by_op"].items())
            + f"), {model['params'] / 1e6:.1f} M weights.",
            "",
            "| backend | batch | tiles/s | ms/tile | GFLOP/s | % of matmul peak | load avg (1 min) |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in model["rows"]:
            out.append(
                f"| {r['backend']} | {r['batch']} | {f(r['tiles_per_s'], 2)} | {f(r['ms_per_tile'])} | "
                f"{f(r['gflops'])} | {f(100 * r['gflops'] / peak)} % | {f(r.get('load_average'), 2)} |"
            )
        by = {(r["backend"], r["batch"]): r for r in model["rows"]}
        batches = data["batches"]
        fp32_vs_keras = {b: by[("ort_fp32", b)]["tiles_per_s"] / by[("keras", b)]["tiles_per_s"] for b in batches}
        int8_vs_fp32 = {b: by[("ort_int8", b)]["tiles_per_s"] / by[("ort_fp32", b)]["tiles_per_s"] for b in batches}
        out += [
            "",
            "ONNX Runtime fp32 / Keras: "
            + ", ".join(f"b{b} {f(v, 2)}x" for b, v in fp32_vs_keras.items())
            + "; int8 / fp32: "
            + ", ".join(f"b{b} {f(v, 2)}x" for b, v in int8_vs_fp32.items())
            + ".",
            "",
        ]
        best = max(batches, key=lambda b: by[("ort_fp32", b)]["tiles_per_s"])
        roof = {
            backend: max((by[(backend, b)] for b in batches), key=lambda r: r["tiles_per_s"])
            for backend in ("keras", "ort_fp32", "ort_int8")
        }
        out.append(
            f"- **Roofline {name}:** {f(fl['gflop_per_tile'], 3)} GFLOP per tile; measured fp32 peak "
            f"{f(peak)} GFLOP/s -> compute ceiling {f(peak / fl['gflop_per_tile'], 0)} tiles/s. Reached "
            "(best batch): "
            + "; ".join(
                f"{k} b{r['batch']} {f(r['gflops'])} GFLOP/s = **{f(100 * r['gflops'] / peak)} %**"
                for k, r in roof.items()
            )
            + " (int8 counts the same fp32-equivalent FLOPs; VNNI lets it "
            "pass the fp32 peak)."
        )
        out.append(
            "- "
            + targets.add(
                f"{name}: ORT fp32 >= 1.2x Keras (batch {best}, fp32's best)",
                f"{f(fp32_vs_keras[best], 2)}x",
                fp32_vs_keras[best] >= 1.2,
            )
        )
        out.append(
            "- "
            + targets.add(
                f"{name}: int8 >= 2x ORT fp32 (batch {best})", f"{f(int8_vs_fp32[best], 2)}x", int8_vs_fp32[best] >= 2.0
            )
        )
        p = model["parity"]
        if name == "unet":
            iou = p["mask_iou_int8_vs_fp32"]
            out.append(
                "- "
                + targets.add(
                    "unet: int8 mask IoU vs fp32 >= 0.98",
                    f"{f(iou, 4)} on {p['n_tiles']} "
                    f"held-out real tiles (max |p_int8 - p_fp32| {f(p['max_abs_diff_int8'], 4)}; fp32 vs Keras IoU "
                    f"{f(p['mask_iou_fp32_vs_keras'], 4)}; fp32 probability std {f(p['fp32_prob_std'], 4)}, "
                    f"{f(100 * p['fp32_positive_fraction'])} % pixels >= 0.5)",
                    iou >= 0.98,
                )
            )
        else:
            agree = p["cluster_agreement_int8_vs_fp32"]
            out.append(
                "- "
                + targets.add(
                    "dec: int8 cluster agreement vs fp32 >= 97 %",
                    f"{f(100 * agree)} % on "
                    f"{p['n_tiles']} held-out tiles (max |q_int8 - q_fp32| {f(p['max_abs_diff_q_int8'], 4)}; "
                    f"fp32 uses {p['fp32_distinct_clusters']} distinct clusters, mean max q "
                    f"{f(p['fp32_mean_max_q'], 3)}; fp32 vs Keras agreement "
                    f"{f(100 * p['cluster_agreement_fp32_vs_keras'])} %)",
                    agree >= 0.97,
                )
            )
        if not model["int8_passed_export_gate"]:
            out.append(
                "- The int8 file failed export.pipeline's parity gate; it was quantized the same way "
                "(`export.variants.to_int8`) without the gate so its speed could be measured."
            )
        out.append("")
    out += [
        "fp16 (CUDA) could not be measured: no GPU was lent to this task. The GPU path (CUDA provider, "
        "fp16 variant) is covered by the CPU-fallback tests only.",
        "",
    ]
    targets.rows.append(("fp16 / CUDA model and service runs recorded", "no GPU on this machine", "n/a"))
    return out
