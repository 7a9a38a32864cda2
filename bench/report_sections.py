"""The sections of docs/benchmarks.md that bench/report.py renders: machine, model, service, scene and memory figures."""

from __future__ import annotations

import math

CMD = ".venv/bin/python -m bench.{}"


ROOF: dict[str, float] = {}  # model -> GFLOP per tile, and "peak" -> GFLOP/s, from model_speed's results




def roofline(name: str, tiles_per_s: float, what: str) -> str:
    """One roofline line: FLOPs per tile, the measured peak and the fraction of it that `tiles_per_s` reaches."""
    if name not in ROOF or "peak" not in ROOF:
        return f"- Roofline {name}: n/a (model_speed has not run)."
    gflop, peak = ROOF[name], ROOF["peak"]
    return (f"- **Roofline {name}** ({what}): {f(tiles_per_s, 2)} tiles/s x {f(gflop, 3)} GFLOP/tile = "
            f"{f(tiles_per_s * gflop)} GFLOP/s = **{f(100 * tiles_per_s * gflop / peak)} %** of the {f(peak)} "
            f"GFLOP/s fp32 peak (ceiling {f(peak / gflop, 0)} tiles/s).")


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
    return [f"- Machine: {machine['cpu_model']}, {machine['cores']} cores available to the process "
            f"({machine['threads_per_core']} thread(s) per core), {machine['ram_gb']} GB RAM; ISA: "
            f"{', '.join(machine['isa'])}. Shared with other jobs (load average at start: "
            f"{', '.join(map(str, machine['load_average']))}).",
            f"- Date: {machine['date']}. Python {machine['python']}, onnxruntime-gpu {v['onnxruntime-gpu']} (CPU "
            f"provider), tensorflow {v['tensorflow']} / tf-keras {v['tf-keras']}, bentoml {v['bentoml']}, "
            f"locust {v['locust']}, numpy {v['numpy']}.",
            f"- GPU: {machine['gpu']}."]


def _when(data: dict) -> str:
    m = data["machine"]
    after = data.get("load_average_after")
    return (f"; measured {m['date']}, load average {m['load_average'][0]} at the start"
            + (f", {after[0]:.2f} at the end" if after else "") + " (2.0 = this benchmark's own 2 busy cores)")


def peak_of(data: dict) -> float:
    """The fp32 peak: the better of the matmul measurements at the start and the end of the run (on a shared
    machine the lower one is the one that other jobs disturbed)."""
    return max(data["matmul"]["peak_gflops"], data.get("matmul_after", data["matmul"])["peak_gflops"])


def model_section(data: dict, targets: Targets) -> list[str]:
    mm = data["matmul"]
    peak = peak_of(data)
    out = ["## 1. Model level", "", f"Command: `{CMD.format('model_speed')}`"
           + (" (--quick)" if data["quick"] else "") + _when(data), "",
           f"Every timed call runs the same {data['work_tiles']} real EuroSAT RGB sample tiles "
           f"({data.get('tile', 64)} px) in batches of b "
           "(Keras: `model.predict(tiles, batch_size=b)`; ONNX Runtime: `session.run` per batch, CPU provider, "
           "intra-op threads = cores). Median of >= 2 calls and >= 6 s per point. GFLOP/s = FLOPs per tile "
           "(Conv/ConvTranspose/Gemm/MatMul MACs x 2 from the fp32 ONNX graph's inferred shapes) x tiles/s; the "
           f"peak is the best of numpy and ONNX Runtime on a {mm['n']}x{mm['n']} fp32 matmul measured in the same "
           f"run: at the start numpy {f(mm['numpy_gflops'])}, ONNX Runtime {f(mm['ort_gflops'])} GFLOP/s; at the end "
           f"{f(data['matmul_after']['peak_gflops'])} -> peak (the better of the two) **{f(peak)} GFLOP/s**. "
           "Load average before/after: "
           f"{f(data['load_average_before'][0], 2)} / {f(data['load_average_after'][0], 2)}.", ""]
    for name, model in data["models"].items():
        fl = model["flops"]
        out += [f"### {name}: {model['origin']}", "",
                f"{f(fl['gflop_per_tile'], 2)} GFLOP per tile ("
                + ", ".join(f"{op} {f(v, 2)}" for op, v in fl["gflop_by_op"].items())
                + f"), {model['params'] / 1e6:.1f} M weights.", "",
                "| backend | batch | tiles/s | ms/tile | GFLOP/s | % of matmul peak | load avg (1 min) |",
                "|---|---|---|---|---|---|---|"]
        for r in model["rows"]:
            out.append(f"| {r['backend']} | {r['batch']} | {f(r['tiles_per_s'], 2)} | {f(r['ms_per_tile'])} | "
                       f"{f(r['gflops'])} | {f(100 * r['gflops'] / peak)} % | {f(r.get('load_average'), 2)} |")
        by = {(r["backend"], r["batch"]): r for r in model["rows"]}
        batches = data["batches"]
        fp32_vs_keras = {b: by[("ort_fp32", b)]["tiles_per_s"] / by[("keras", b)]["tiles_per_s"] for b in batches}
        int8_vs_fp32 = {b: by[("ort_int8", b)]["tiles_per_s"] / by[("ort_fp32", b)]["tiles_per_s"] for b in batches}
        out += ["", "ONNX Runtime fp32 / Keras: " + ", ".join(f"b{b} {f(v, 2)}x" for b, v in fp32_vs_keras.items())
                + "; int8 / fp32: " + ", ".join(f"b{b} {f(v, 2)}x" for b, v in int8_vs_fp32.items()) + ".", ""]
        best = max(batches, key=lambda b: by[("ort_fp32", b)]["tiles_per_s"])
        roof = {backend: max((by[(backend, b)] for b in batches), key=lambda r: r["tiles_per_s"])
                for backend in ("keras", "ort_fp32", "ort_int8")}
        out.append(f"- **Roofline {name}:** {f(fl['gflop_per_tile'], 3)} GFLOP per tile; measured fp32 peak "
                   f"{f(peak)} GFLOP/s -> compute ceiling {f(peak / fl['gflop_per_tile'], 0)} tiles/s. Reached "
                   "(best batch): " + "; ".join(
                       f"{k} b{r['batch']} {f(r['gflops'])} GFLOP/s = **{f(100 * r['gflops'] / peak)} %**"
                       for k, r in roof.items()) + " (int8 counts the same fp32-equivalent FLOPs; VNNI lets it "
                   "pass the fp32 peak).")
        out.append("- " + targets.add(f"{name}: ORT fp32 >= 1.2x Keras (batch {best}, fp32's best)",
                                      f"{f(fp32_vs_keras[best], 2)}x", fp32_vs_keras[best] >= 1.2))
        out.append("- " + targets.add(f"{name}: int8 >= 2x ORT fp32 (batch {best})", f"{f(int8_vs_fp32[best], 2)}x",
                                      int8_vs_fp32[best] >= 2.0))
        p = model["parity"]
        if name == "unet":
            iou = p["mask_iou_int8_vs_fp32"]
            out.append("- " + targets.add("unet: int8 mask IoU vs fp32 >= 0.98", f"{f(iou, 4)} on {p['n_tiles']} "
                       f"held-out real tiles (max |p_int8 - p_fp32| {f(p['max_abs_diff_int8'], 4)}; fp32 vs Keras IoU "
                       f"{f(p['mask_iou_fp32_vs_keras'], 4)}; fp32 probability std {f(p['fp32_prob_std'], 4)}, "
                       f"{f(100 * p['fp32_positive_fraction'])} % pixels >= 0.5)", iou >= 0.98))
        else:
            agree = p["cluster_agreement_int8_vs_fp32"]
            out.append("- " + targets.add("dec: int8 cluster agreement vs fp32 >= 97 %", f"{f(100 * agree)} % on "
                       f"{p['n_tiles']} held-out tiles (max |q_int8 - q_fp32| {f(p['max_abs_diff_q_int8'], 4)}; "
                       f"fp32 uses {p['fp32_distinct_clusters']} distinct clusters, mean max q "
                       f"{f(p['fp32_mean_max_q'], 3)}; fp32 vs Keras agreement "
                       f"{f(100 * p['cluster_agreement_fp32_vs_keras'])} %)", agree >= 0.97))
        if not model["int8_passed_export_gate"]:
            out.append("- The int8 file failed export.pipeline's parity gate; it was quantized the same way "
                       "(`export.variants.to_int8`) without the gate so its speed could be measured.")
        out.append("")
    out += ["fp16 (CUDA) could not be measured: no GPU was lent to this task. The GPU path (CUDA provider, "
            "fp16 variant) is covered by the CPU-fallback tests only.", ""]
    targets.rows.append(("fp16 / CUDA model and service runs recorded", "no GPU on this machine", "n/a"))
    return out


def service_section(data: dict, targets: Targets) -> list[str]:
    out = ["## 2. Service level", "", f"Command: `{CMD.format('service_load')}`"
           + (" (--quick)" if data["quick"] else "") + f" ({data['duration_s']} s per point)" + _when(data), "",
           "locust headless (`bench/locustfile.py`, FastHttpUser, no think time, `Content-Type: image/png` body "
           "of one 64 px real EuroSAT PNG tile per request) against `bentoml serve` on 127.0.0.1; the load generator "
           "runs on the same 2 cores as the server (its CPU seconds are in the table). Servers, one after another: "
           "`onnx_batched` = `serving.service:Agriland`, micro-batcher up to 16 tiles; `onnx_unbatched` = the "
           "same with `AGRILAND_MAX_BATCH_SIZE=1`. Mean batch = delta of "
           "`agriland_batch_size_sum / _count` from `/metrics` over the point.", "",
           "| server | endpoint | users | req/s | p50 ms | p95 ms | p99 ms | failures / requests | mean batch | "
           "client CPU s | server CPU s | load avg |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for p in data["points"]:
        errors = "; ".join(f"{k} x{v}" for k, v in p["errors"].items())
        out.append(f"| {p['server']} | {p['endpoint']} | {p['users']} | {f(p['rps'], 2)} | {f(p['p50_ms'], 0)} | "
                   f"{f(p['p95_ms'], 0)} | {f(p['p99_ms'], 0)} | {p['failures']} / {p['requests']}"
                   f"{' (' + errors + ')' if errors else ''} | {f(p['mean_batch'], 2)} | {f(p['client_cpu_s'])} | "
                   f"{f(p['server_cpu_s'])} | {f(p['load_average'], 2)} |")
    out += ["", "Model-only ONNX Runtime fp32 (same session settings as the service, measured after the servers "
            "stopped, same run):", "", "| model | batch | ms per call | tiles/s |", "|---|---|---|---|"]
    for name, sizes in data["model_only"].items():
        for b, m in sizes.items():
            out.append(f"| {name} | {b} | {f(m['ms_per_call'])} | {f(m['tiles_per_s'], 2)} |")
    out.append("")
    again = data.get("model_only_remeasured")
    if again:
        out += [f"The model-only figures above were re-timed on {again['date']} (load average {f(again['load_before'], 2)}"
                f" before, {f(again['load_after'], 2)} after) with `{CMD.format('service_load')} "
                "--remeasure-model-only`, because the in-run timing overlapped another job's test suite (load "
                f"average {f(data['load_average_in_run'][0], 2)}); the in-run figures were:", ""]
        for name, sizes in data["model_only_in_run"].items():
            out.append(f"- {name}: " + ", ".join(f"batch {b} {f(m['ms_per_call'])} ms per call, "
                                                  f"{f(m['tiles_per_s'], 2)} tiles/s" for b, m in sizes.items()))
        out.append("")
    for label, s in data["servers"].items():
        out.append(f"- `{label}` ({s['env']}): ready after {f(s['cold_start_s'])} s, RSS after warm-up "
                   f"{f(s['rss_after_warmup_mb'], 0)} MB, peak RSS under load {s['peak_rss_mb']} MB.")
    for rerun in data.get("rerun", []):
        out.append(f"- Re-run on {rerun['date']} with `{CMD.format('service_load')} --merge --servers "
                   f"{','.join(rerun['servers'])}` (its first run overlapped another job's test suite; the load "
                   "column shows each point's 1-minute load average).")
    out.append("")
    by = {(p["server"], p["endpoint"], p["users"]): p for p in data["points"]}
    for endpoint, name in (("/segment", "unet"), ("/cluster", "dec")):
        only = data["model_only"].get(name, {})
        p32 = by.get(("onnx_batched", endpoint, 32))
        if p32 and only:
            b = str(max(1, round(p32["mean_batch"]))) if p32["mean_batch"] == p32["mean_batch"] else "16"
            ref = only.get(b, only.get("16"))
            ratio = p32["rps"] / ref["tiles_per_s"]
            out.append("- " + targets.add(f"{endpoint} at 32 users >= 95 % of model-only ORT at the same batch ({b})",
                                          f"{f(p32['rps'], 2)} vs {f(ref['tiles_per_s'], 2)} tiles/s = "
                                          f"{f(100 * ratio)} %", ratio >= 0.95))
            nan = p32["mean_batch"] != p32["mean_batch"]
            out.append("- " + targets.add(f"{endpoint} mean batch > 4 at 32 users",
                                          "not recorded (no /metrics delta)" if nan else f(p32["mean_batch"], 2),
                                          None if nan else p32["mean_batch"] > 4))
        p64 = by.get(("onnx_batched", endpoint, 64))
        if p64:
            out.append("- " + targets.add(f"{endpoint} zero errors at 64 users", f"{p64['failures']} of "
                                          f"{p64['requests']}", p64["failures"] == 0))
        p1 = by.get(("onnx_batched", endpoint, 1))
        if p1 and "1" in only:
            ratio = p1["p50_ms"] / only["1"]["ms_per_call"]
            out.append("- " + targets.add(f"{endpoint} lone client p50 <= 1.15x model-only batch-1 latency",
                                          f"{f(p1['p50_ms'], 0)} ms vs {f(only['1']['ms_per_call'])} ms = "
                                          f"{f(ratio, 2)}x", ratio <= 1.15))
    for endpoint, name in (("/segment", "unet"), ("/cluster", "dec")):
        p32 = by.get(("onnx_batched", endpoint, 32))
        if p32:
            out.append(roofline(name, p32["rps"], f"{endpoint} at 32 users, fp32"))
    spin = next((s for s in ("onnx_batched_nospin", "onnx_batched_spin") if s in data["servers"]), None)
    if spin:
        for endpoint in ("/segment", "/cluster"):
            for users in data["users"]:
                a, b = by.get(("onnx_batched", endpoint, users)), by.get((spin, endpoint, users))
                if a and b:
                    out.append(f"- {endpoint} at {users} user(s): `onnx_batched` {f(a['rps'], 2)} req/s, p50 "
                               f"{f(a['p50_ms'], 0)} ms (load {f(a['load_average'], 2)}) vs `{spin}` "
                               f"({data['servers'][spin]['env']}) {f(b['rps'], 2)} req/s, p50 {f(b['p50_ms'], 0)} ms "
                               f"(load {f(b['load_average'], 2)}): the default serves {f(a['rps'] / b['rps'], 2)}x the requests/s.")
    for users in (32, 64):
        a, b = (by.get((s, "/segment", users)) for s in ("onnx_batched", "onnx_unbatched"))
        if a and b:
            out.append(f"- /segment at {users} users: batched ONNX {f(a['rps'], 2)} req/s vs unbatched ONNX "
                       f"{f(b['rps'], 2)} ({f(a['rps'] / b['rps'], 2)}x).")
    out.append("")
    return out


def scene_section(data: dict, targets: Targets) -> list[str]:
    http, local = data["http"], data["in_process"]
    only = data["model_only_tiles_per_s"]
    out = ["## 3. Scene level", "", f"Command: `{CMD.format('scene_speed')}`" + (" (--quick)" if data["quick"] else "") + _when(data),
           "", f"A seeded synthetic {data['side']}x{data['side']} RGB GeoTIFF (UTM, 10 m) cut into "
           f"{data['grid_tiles']} tiles of {data['tile']} px with {data['overlap']} px overlap: "
           f"{f(data['tile_equivalents'])} tiles' worth of pixels, so overlap costs "
           f"{f(100 * (data['grid_tiles'] / data['tile_equivalents'] - 1))} % extra model work. Model-only ONNX "
           "Runtime fp32: " + ", ".join(f"batch {b} {f(v, 2)} tiles/s" for b, v in only.items()) + ".", ""]
    ref = max(only.values())
    if http.get("available"):
        rate = http["n_tiles"] / http["seconds_median"]
        out.append(f"- POST /segment_scene (multipart `file`): {f(http['seconds_median'], 2)} s per scene "
                   f"(runs: {', '.join(f(s, 2) for s in http['seconds'])}), {http['n_tiles']} tiles -> "
                   f"{f(rate, 2)} tiles/s; useful (overlap-free) {f(data['tile_equivalents'] / http['seconds_median'], 2)}"
                   " tile-equivalents/s.")
        out.append("- " + targets.add("scene throughput >= 90 % of model-only tile throughput (computed tiles)",
                                      f"{f(rate, 2)} vs {f(ref, 2)} tiles/s = {f(100 * rate / ref)} %", rate / ref >= 0.9))
    else:
        out.append(f"- POST /segment_scene was not available on the server (HTTP {http.get('status')}): the "
                   "endpoint had not landed when this ran; only the in-process figure below was measured.")
        targets.rows.append(("scene throughput >= 90 % of model-only", "endpoint not available", "n/a"))
    local_rate = local["n_tiles"] / local["segment_s"]
    if http.get("available"):
        out.append(roofline("unet", http["n_tiles"] / http["seconds_median"], "POST /segment_scene, computed tiles"))
    out += [f"- In-process `inference.scenes.segment.segment_file` (no HTTP, batch {local['batch']}): windowed "
            f"read + tile/run/blend {f(local['segment_s'], 2)} s for {local['n_tiles']} tiles "
            f"= {f(local_rate, 2)} tiles/s ({f(100 * local_rate / ref)} % of model-only).", ""]
    return out


def _largest(rss: dict[str, float]) -> float:
    return max(v for k, v in rss.items() if k != "total")


def memory_section(data: dict, targets: Targets) -> list[str]:
    out = ["## 4. Serving memory and cold start", "", f"Command: `{CMD.format('memory_coldstart')}`" + _when(data), "",
           "Spawn of `bentoml serve serving.service:Agriland` to the first `/readyz` 200 (both models loaded, "
           "sha256-verified, ONNX Runtime sessions created); RSS summed over the server's process tree "
           "(psutil).", "", "| variant | cold start s | RSS ready MB | after 1 tile/endpoint MB | after a 16-tile "
           "request/endpoint MB | largest process MB | processes |", "|---|---|---|---|---|---|---|"]
    for r in data["runs"]:
        variant = r["variant"] + "".join(f", {k}={v}" for k, v in r.get("env", {}).items())
        out.append(f"| {variant} | {f(r['cold_start_s'])} | {f(r['rss_ready_mb']['total'], 0)} | "
                   f"{f(r['rss_after_one_tile_mb']['total'], 0)} | {f(r['rss_after_batch16_mb']['total'], 0)} | "
                   f"{f(_largest(r['rss_after_batch16_mb']), 0)} | {r['n_processes']} |")
    if data.get("int8_skipped"):
        out += ["", f"The int8 variants were not started: {data['int8_skipped']}."]
    out += ["", "Model files: " + ", ".join(f"{k} {f(v, 0)} MB" for k, v in data["model_files_mb"].items()) + ".", ""]
    fp32 = [r for r in data["runs"] if r["variant"] == "fp32" and not r.get("env")]
    worst_rss = max(r["rss_after_batch16_mb"]["total"] for r in fp32)
    worst_start = max(r["cold_start_s"] for r in fp32)
    out.append("- " + targets.add("serving RSS with both models < 1 GB (fp32, after 16-tile batches)",
                                  f"{f(worst_rss, 0)} MB", worst_rss < 1024))
    out.append("- " + targets.add("cold start < 10 s (fp32, worst of the starts)", f"{f(worst_start)} s",
                                  worst_start < 10))
    out.append("")
    return out
