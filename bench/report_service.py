"""The service and memory sections of docs/benchmarks.md (bench/report.py renders them from the saved results)."""

from __future__ import annotations

from bench.report_sections import CMD, Targets, _when, f, roofline


def service_section(data: dict, targets: Targets) -> list[str]:
    out = [
        "## 2. Service level",
        "",
        f"Command: `{CMD.format('service_load')}`"
        + (" (--quick)" if data["quick"] else "")
        + f" ({data['duration_s']} s per point)"
        + _when(data),
        "",
        "locust headless (`bench/locustfile.py`, FastHttpUser, no think time, `Content-Type: image/png` body "
        "of one 64 px real EuroSAT PNG tile per request) against `bentoml serve` on 127.0.0.1; the load generator "
        "runs on the same 2 cores as the server (its CPU seconds are in the table). Servers, one after another: "
        "`onnx_batched` = `serving.service:Agriland`, micro-batcher up to 16 tiles; `onnx_unbatched` = the "
        "same with `AGRILAND_MAX_BATCH_SIZE=1`. Mean batch = delta of "
        "`agriland_batch_size_sum / _count` from `/metrics` over the point.",
        "",
        "| server | endpoint | users | req/s | p50 ms | p95 ms | p99 ms | failures / requests | mean batch | "
        "client CPU s | server CPU s | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in data["points"]:
        errors = "; ".join(f"{k} x{v}" for k, v in p["errors"].items())
        out.append(
            f"| {p['server']} | {p['endpoint']} | {p['users']} | {f(p['rps'], 2)} | {f(p['p50_ms'], 0)} | "
            f"{f(p['p95_ms'], 0)} | {f(p['p99_ms'], 0)} | {p['failures']} / {p['requests']}"
            f"{' (' + errors + ')' if errors else ''} | {f(p['mean_batch'], 2)} | {f(p['client_cpu_s'])} | "
            f"{f(p['server_cpu_s'])} | {f(p['load_average'], 2)} |"
        )
    out += [
        "",
        "Model-only ONNX Runtime fp32 (same session settings as the service, measured after the servers "
        "stopped, same run):",
        "",
        "| model | batch | ms per call | tiles/s |",
        "|---|---|---|---|",
    ]
    for name, sizes in data["model_only"].items():
        for b, m in sizes.items():
            out.append(f"| {name} | {b} | {f(m['ms_per_call'])} | {f(m['tiles_per_s'], 2)} |")
    out.append("")
    again = data.get("model_only_remeasured")
    if again:
        out += [
            f"The model-only figures above were re-timed on {again['date']} (load average {f(again['load_before'], 2)}"
            f" before, {f(again['load_after'], 2)} after) with `{CMD.format('service_load')} "
            "--remeasure-model-only`, because the in-run timing overlapped another job's test suite (load "
            f"average {f(data['load_average_in_run'][0], 2)}); the in-run figures were:",
            "",
        ]
        for name, sizes in data["model_only_in_run"].items():
            out.append(
                f"- {name}: "
                + ", ".join(
                    f"batch {b} {f(m['ms_per_call'])} ms per call, {f(m['tiles_per_s'], 2)} tiles/s"
                    for b, m in sizes.items()
                )
            )
        out.append("")
    for label, s in data["servers"].items():
        out.append(
            f"- `{label}` ({s['env']}): ready after {f(s['cold_start_s'])} s, RSS after warm-up "
            f"{f(s['rss_after_warmup_mb'], 0)} MB, peak RSS under load {s['peak_rss_mb']} MB."
        )
    for rerun in data.get("rerun", []):
        out.append(
            f"- Re-run on {rerun['date']} with `{CMD.format('service_load')} --merge --servers "
            f"{','.join(rerun['servers'])}` (its first run overlapped another job's test suite; the load "
            "column shows each point's 1-minute load average)."
        )
    out.append("")
    by = {(p["server"], p["endpoint"], p["users"]): p for p in data["points"]}
    for endpoint, name in (("/segment", "unet"), ("/cluster", "dec")):
        only = data["model_only"].get(name, {})
        p32 = by.get(("onnx_batched", endpoint, 32))
        if p32 and only:
            b = str(max(1, round(p32["mean_batch"]))) if p32["mean_batch"] == p32["mean_batch"] else "16"
            ref = only.get(b, only.get("16"))
            ratio = p32["rps"] / ref["tiles_per_s"]
            out.append(
                "- "
                + targets.add(
                    f"{endpoint} at 32 users >= 95 % of model-only ORT at the same batch ({b})",
                    f"{f(p32['rps'], 2)} vs {f(ref['tiles_per_s'], 2)} tiles/s = {f(100 * ratio)} %",
                    ratio >= 0.95,
                )
            )
            nan = p32["mean_batch"] != p32["mean_batch"]
            out.append(
                "- "
                + targets.add(
                    f"{endpoint} mean batch > 4 at 32 users",
                    "not recorded (no /metrics delta)" if nan else f(p32["mean_batch"], 2),
                    None if nan else p32["mean_batch"] > 4,
                )
            )
        p64 = by.get(("onnx_batched", endpoint, 64))
        if p64:
            out.append(
                "- "
                + targets.add(
                    f"{endpoint} zero errors at 64 users",
                    f"{p64['failures']} of {p64['requests']}",
                    p64["failures"] == 0,
                )
            )
        p1 = by.get(("onnx_batched", endpoint, 1))
        if p1 and "1" in only:
            ratio = p1["p50_ms"] / only["1"]["ms_per_call"]
            out.append(
                "- "
                + targets.add(
                    f"{endpoint} lone client p50 <= 1.15x model-only batch-1 latency",
                    f"{f(p1['p50_ms'], 0)} ms vs {f(only['1']['ms_per_call'])} ms = {f(ratio, 2)}x",
                    ratio <= 1.15,
                )
            )
    for endpoint, name in (("/segment", "unet"), ("/cluster", "dec")):
        p32 = by.get(("onnx_batched", endpoint, 32))
        if p32:
            out.append(roofline(name, p32["rps"], f"{endpoint} at 32 users, fp32"))
    for users in (32, 64):
        a, b = (by.get((s, "/segment", users)) for s in ("onnx_batched", "onnx_unbatched"))
        if a and b:
            out.append(
                f"- /segment at {users} users: batched ONNX {f(a['rps'], 2)} req/s vs unbatched ONNX "
                f"{f(b['rps'], 2)} ({f(a['rps'] / b['rps'], 2)}x)."
            )
    out.append("")
    return out


def _largest(rss: dict[str, float]) -> float:
    return max(v for k, v in rss.items() if k != "total")


def memory_section(data: dict, targets: Targets) -> list[str]:
    out = [
        "## 4. Serving memory and cold start",
        "",
        f"Command: `{CMD.format('memory_coldstart')}`" + _when(data),
        "",
        "Spawn of `bentoml serve serving.service:Agriland` to the first `/readyz` 200 (both models loaded, "
        "sha256-verified, ONNX Runtime sessions created); RSS summed over the server's process tree "
        "(psutil).",
        "",
        "| variant | cold start s | RSS ready MB | after 1 tile/endpoint MB | after a 16-tile "
        "request/endpoint MB | largest process MB | processes |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in data["runs"]:
        variant = r["variant"] + "".join(f", {k}={v}" for k, v in r.get("env", {}).items())
        out.append(
            f"| {variant} | {f(r['cold_start_s'])} | {f(r['rss_ready_mb']['total'], 0)} | "
            f"{f(r['rss_after_one_tile_mb']['total'], 0)} | {f(r['rss_after_batch16_mb']['total'], 0)} | "
            f"{f(_largest(r['rss_after_batch16_mb']), 0)} | {r['n_processes']} |"
        )
    if data.get("int8_skipped"):
        out += ["", f"The int8 variants were not started: {data['int8_skipped']}."]
    out += ["", "Model files: " + ", ".join(f"{k} {f(v, 0)} MB" for k, v in data["model_files_mb"].items()) + ".", ""]
    fp32 = [r for r in data["runs"] if r["variant"] == "fp32" and not r.get("env")]
    worst_rss = max(r["rss_after_batch16_mb"]["total"] for r in fp32)
    worst_start = max(r["cold_start_s"] for r in fp32)
    out.append(
        "- "
        + targets.add(
            "serving RSS with both models < 1 GB (fp32, after 16-tile batches)",
            f"{f(worst_rss, 0)} MB",
            worst_rss < 1024,
        )
    )
    out.append(
        "- " + targets.add("cold start < 10 s (fp32, worst of the starts)", f"{f(worst_start)} s", worst_start < 10)
    )
    out.append("")
    return out
