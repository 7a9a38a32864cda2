"""The "Tile path overhead" section of docs/benchmarks.md from bench/overhead.py's results: table, ratios, targets."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from bench.common import replace_section

BEGIN, END = "<!-- overhead:begin -->", "<!-- overhead:end -->"
LABELS = {
    ("bentoml_constant", "multipart"): "plain BentoML `@bentoml.api` (`file: Path`), constant answer, default config",
    ("bentoml_decode_encode", "multipart"): "plain BentoML, decode JPEG + encode PNG mask, no model, default config",
    ("bentoml_constant_lean", "multipart"): "plain BentoML, constant answer, agriland's config (no access log/tracing)",
    ("bentoml_decode_encode_lean", "multipart"): "plain BentoML, decode + encode, agriland's config",
    ("agriland", "multipart_threshold"): "agriland `/segment`, `mask_mode=threshold` (multipart JPEG, JSON with PNG + "
                                         "RLE mask)",
    ("agriland", "multipart"): "agriland `/segment`, default `mask_mode=fields` (field delineation, issue 20)",
    ("agriland_2_workers", "multipart_threshold"): "agriland `/segment` `mask_mode=threshold`, `AGRILAND_WORKERS=2`",
    ("agriland", "multipart16"): "agriland `/segment`, 16 tiles per request (default `mask_mode=fields`)",
    ("agriland", "raw1"): "agriland `/segment_raw`, 1 raw uint8 tile per request",
    ("agriland", "raw16"): "agriland `/segment_raw`, 16 tiles per request",
    ("agriland_2_workers", "multipart"): "agriland `/segment`, `AGRILAND_WORKERS=2` (1 ORT thread each)",
    ("agriland_2_workers", "raw1"): "agriland `/segment_raw` 1 tile, `AGRILAND_WORKERS=2`",
    ("agriland_2_workers", "raw16"): "agriland `/segment_raw` 16 tiles, `AGRILAND_WORKERS=2`",
    ("agriland_1_view", "multipart_threshold"): "agriland `/segment` `mask_mode=threshold`, `AGRILAND_TTA_VIEWS=1` "
                                                "(one rotation; of the one-rotation model)",
    ("agriland_1_view", "raw1"): "agriland `/segment_raw` 1 tile, `AGRILAND_TTA_VIEWS=1` (of the one-rotation model)",
}
ONE_VIEW = "agriland_1_view"  # the server held to the one-rotation model (model_only's "one_view")


def _f(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _point(points: list[dict], server: str, body: str, connections: int) -> dict | None:
    """The median over rounds of one (server, body, connections) point: req/s, tiles/s, p50 latency, batch."""
    chosen = [p for p in points if p["server"] == server and p["body"] == body and p["connections"] == connections]
    if not chosen:
        return None
    batches = [p["mean_batch"] for p in chosen if p.get("mean_batch") is not None]
    return {"rps": statistics.median(p["rps"] for p in chosen),
            "tiles_per_s": statistics.median(p["tiles_per_s"] for p in chosen),
            "latency_ms": {"p50": statistics.median(p["latency_ms"].get("p50", math.nan) for p in chosen)},
            "mean_batch": statistics.median(batches) if batches else None,
            "non_2xx": sum(p["non_2xx"] for p in chosen), "rounds": len(chosen),
            "spread_rps": (min(p["rps"] for p in chosen), max(p["rps"] for p in chosen))}


def model_rates(result: dict, one_view: bool = False) -> tuple[float, float]:
    """Medians over the model-alone measurements between rounds: (batch 8 tiles/s, batch 1 ms), at the manifest's
    rotations or (`one_view`) at one; NaN where this result has no one-rotation figures."""
    runs = [r.get("one_view") if one_view else r for r in result["model_only"]]
    runs = [r for r in runs if r]
    if not runs:
        return math.nan, math.nan
    return (statistics.median(r["batch8"]["tiles_per_s"] for r in runs),
            statistics.median(r["batch1"]["median_ms"] for r in runs))


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def render(result: dict) -> str:
    """The whole delimited section as Markdown."""
    points, m = result["points"], result["machine"]
    model_b8, model_b1 = model_rates(result)
    b8s = [r["batch8"]["tiles_per_s"] for r in result["model_only"]]
    conns = result["connections"]
    rounds = max(p["round"] for p in points) + 1
    lines = [BEGIN, "## Tile path overhead (issue 22)", "",
             f"`{result['command']}` (after `bash bench/setup.sh`, which installs `wrk` from the Debian archive). "
             f"Machine: {m['cpu_model']}, {m['cores']} cores shared with other engineers' jobs (training, test "
             f"suites), load average {', '.join(map(str, m['load_average']))} at the start and "
             f"{', '.join(f'{x:.2f}' for x in result['load_average_after'])} at the end; {m['date']}. "
             f"All servers ran at once in this one run and were measured in turn, {rounds} interleaved rounds of "
             f"`wrk -t1 -c{conns}` (throughput) and `wrk -t1 -c1` (lone latency, median) of {result['seconds']} s "
             f"each, posting the same real 64 px EuroSAT tile (`{result['tile']}`); every figure below is the "
             f"median over the rounds. Models: `{result['models']}` (fp32, CPU provider). Model alone: ONNX Runtime "
             f"in the bench process (spinning off as in the service; the better of 1 and 2 intra-op threads), "
             f"between rounds: batch 8 {_f(min(b8s))}-{_f(max(b8s))} tiles/s, median {_f(model_b8)}; batch 1 "
             f"median {_f(model_b1, 2)} ms.",
             "", f"| path | req/s at {conns} conns | tiles/s | of model-only | lone latency ms (p50) | "
             "x model batch 1 | mean batch | non-2xx |", "|---|---|---|---|---|---|---|---|",
             f"| model alone (ORT, batch 8 / batch 1) | | {_f(model_b8)} | 1.00 | {_f(model_b1, 2)} | 1.0 | | |"]
    one_b8, one_b1 = model_rates(result, one_view=True)
    if not math.isnan(one_b8):
        lines.append(f"| model alone, one rotation (`AGRILAND_TTA_VIEWS=1`) | | {_f(one_b8)} | 1.00 | {_f(one_b1, 2)} | "
                     "1.0 | | |")
    reference = {ONE_VIEW: (one_b8, one_b1)}
    seen: list[tuple[str, str]] = []
    for p in points:
        key = (p["server"], p["body"])
        if key in seen:
            continue
        seen.append(key)
        load, lone = _point(points, *key, conns), _point(points, *key, 1)
        label = LABELS.get(key) or (f"agriland `/segment` `{key[1]}` (its default mask), the code of "
                                    f"`{key[0].removeprefix('agriland_')}` (before this issue)")
        rps = load["rps"] if load else None
        spread = f" ({_f(load['spread_rps'][0], 0)}-{_f(load['spread_rps'][1], 0)})" if load else ""
        tiles = load["tiles_per_s"] if load else None
        lone_ms = lone["latency_ms"].get("p50") if lone else None
        batch = load.get("mean_batch") if load else None
        errors = sum(x["non_2xx"] for x in (load, lone) if x)
        ref_b8, ref_b1 = reference.get(key[0], (model_b8, model_b1))
        lines.append(f"| {label} | {_f(rps)}{spread} | {_f(tiles)} | {_f(tiles / ref_b8 if tiles else None, 2)} | "
                     f"{_f(lone_ms, 2)} | {_f(lone_ms / ref_b1 if lone_ms else None, 1)} | {_f(batch, 2)} | {errors} |")
    lines += ["", "Targets (issue 22), from the rows above:", ""]
    lines += [f"- {t}" for t in targets(points, conns, {"": (model_b8, model_b1), **reference})]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def shared_cores_ceiling(decode_encode_rps: float, model_tiles_per_s: float) -> float:
    """Tiles/s when a tile's decode + encode (the plain-BentoML ceiling) and its model run cost their CPU one after
    the other on the same cores: 1 / (1 / ceiling + 1 / model). The ceiling a service that adds nothing reaches."""
    return 1.0 / (1.0 / decode_encode_rps + 1.0 / model_tiles_per_s)


def targets(points: list[dict], conns: int, models: dict[str, tuple[float, float]]) -> list[str]:
    """One line per 'done when' figure of the issue that this benchmark measures; `models` maps a server to the
    model-alone (batch 8 tiles/s, batch 1 ms) it is held to ("" for the manifest's rotations, the default)."""
    out = []
    dec_lone = _point(points, "bentoml_decode_encode", "multipart", 1)
    dec_load = _point(points, "bentoml_decode_encode", "multipart", conns)
    # this tree's code: the default (1 worker), AGRILAND_WORKERS=2 and one rotation (AGRILAND_TTA_VIEWS=1)
    ours = [s for s in ("agriland", "agriland_2_workers", ONE_VIEW) if any(p["server"] == s for p in points)]
    plain = "multipart_threshold"  # the path: decode + model + encode (fields mode adds delineation)

    def model(server: str) -> tuple[float, float]:
        return models.get(server, models[""])

    for server in ours:
        seg_lone = _point(points, server, plain, 1)
        if dec_lone and seg_lone and not math.isnan(model(server)[1]):
            bound = dec_lone["latency_ms"]["p50"] + model(server)[1] + 1.0
            got = seg_lone["latency_ms"]["p50"]
            out.append(f"lone `/segment` `mask_mode=threshold` ({server}) <= plain-BentoML decode+encode lone + model + 1 ms: {_f(got, 2)} ms "
                       f"vs {_f(dec_lone['latency_ms']['p50'], 2)} + {_f(model(server)[1], 2)} + 1 = {_f(bound, 2)} ms -> "
                       f"{_verdict(got <= bound)}")
    for server in ours:
        seg_load = _point(points, server, plain, conns)
        if dec_load and seg_load:
            ratio = seg_load["rps"] / dec_load["rps"]
            out.append(f"`/segment` `mask_mode=threshold` ({server}) at {conns} connections >= 0.95 of the plain-BentoML decode+encode "
                       f"ceiling (1 worker, default config): {_f(seg_load['rps'])} / {_f(dec_load['rps'])} = "
                       f"{_f(ratio, 2)} -> {_verdict(ratio >= 0.95)}")
    for server in ours:
        raw = _point(points, server, "raw1", conns)
        if raw and not math.isnan(model(server)[0]):
            ratio = raw["tiles_per_s"] / model(server)[0]
            out.append(f"raw fast path ({server}) >= 0.80 of model-only at one tile per request: "
                       f"{_f(raw['tiles_per_s'])} tiles/s / {_f(model(server)[0])} = {_f(ratio, 2)} -> "
                       f"{_verdict(ratio >= 0.80)}")
    if dec_load:
        shares = []
        for server in ours:
            seg_load = _point(points, server, plain, conns)
            if seg_load and not math.isnan(model(server)[0]):
                ceiling = shared_cores_ceiling(dec_load["rps"], model(server)[0])
                shares.append(f"{server} {_f(seg_load['tiles_per_s'])} / {_f(ceiling)} = "
                              f"{_f(seg_load['tiles_per_s'] / ceiling, 2)}")
        if shares:
            out.append(f"for reading, not an issue target: `/segment` `mask_mode=threshold` at {conns} connections "
                       "against the same-cores ceiling 1 / (1 / decode+encode + 1 / model), the rate if the "
                       f"plain-BentoML work and the model's simply added up on these cores: {'; '.join(shares)}")
    return out


def write_section(result: dict, page: Path) -> None:
    replace_section(page, BEGIN, END, render(result))
