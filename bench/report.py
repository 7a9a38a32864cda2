"""Render out/bench/results/*.json as docs/benchmarks.md (tables, target verdicts) and docs/benchmarks.png.

The hand-written analysis between the `analysis:begin` / `analysis:end` markers of an existing
docs/benchmarks.md is kept across re-renders, and so is every section this script does not write (other
benchmarks' sections: batching comparison, region scale, GPU), verbatim and in their order.
Reproduce: `.venv/bin/python -m bench.report`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from bench.common import DOCS, load_result, setup_logging
from bench.report_sections import (
    ROOF,
    Targets,
    machine_block,
    model_section,
    peak_of,
)
from bench.report_service import memory_section, service_section
from contract.atomic import write_text_atomic

log = logging.getLogger(__name__)

MD = DOCS / "benchmarks.md"
BEGIN, END = "<!-- analysis:begin -->", "<!-- analysis:end -->"


def _kept_analysis() -> str:
    if MD.is_file():
        match = re.search(re.escape(BEGIN) + r"(.*?)" + re.escape(END), MD.read_text(encoding="utf-8"), re.S)
        if match:
            return match[1].strip("\n")
    return "_(no analysis written yet: add it between these markers; re-rendering keeps it)_"


RETIRED = (
    "bench/ holds speed benchmarks only (`python -m bench.<name>`); model quality is in evaluation/. One-off "
    "experiments whose decisions this page records were retired in issue 33: overhead (+ ceiling_services, wrk, "
    "setup.sh), profile_service, batching_compare (+ batchable_service), int8_study, scene_ab, region_scale, "
    "keras_service, unet_compare, scene_speed (section 3), field_scene (field_evaluation.md) and plot; their "
    "sections stay as the record, their code is in git history (`git log --diff-filter=D -- bench/<name>.py`)."
)
# section 3 (scene level, `bench.scene_speed`, retired) is kept as the record of its last run
GENERATED = ("## Targets", "## Analysis", "## 1. ", "## 2. ", "## 4. ")
_BLOCK_BEGIN = re.compile(r"^<!-- ([\w-]+):begin -->$")


def _kept_sections() -> list[str]:
    """Every section of the existing report that this script does not write, verbatim, in order.

    A section starts at a `## ` heading, or at a `<!-- name:begin -->` marker (other scripts' delimited blocks,
    e.g. gpu) and then runs through its `<!-- name:end -->`; the analysis block is kept separately."""
    if not MD.is_file():
        return []
    chunks: list[list[str]] = []
    inside: str | None = None
    for line in MD.read_text(encoding="utf-8").splitlines():
        begin = _BLOCK_BEGIN.match(line)
        if inside is None and (line.startswith("## ") or (begin and begin[1] != "analysis")):
            chunks.append([line])
            inside = begin[1] if begin else None
        elif chunks:
            chunks[-1].append(line)
            if inside and line == f"<!-- {inside}:end -->":
                inside = None
        # lines before the first section (title, machine block) are regenerated
    kept = []
    for chunk in chunks:
        heading = next((x for x in chunk if x.startswith("## ")), "")
        if chunk[0].startswith("## ") and heading.startswith(GENERATED):
            continue
        kept.append("\n".join(chunk).strip("\n"))
    return kept


def render() -> Path:
    results = {name: load_result(name) for name in ("model_speed", "service_load", "memory_coldstart")}
    machine = next((r["machine"] for r in results.values() if r), None)
    if machine is None:
        raise SystemExit("no results in out/bench/results: run bench/run_all.py first")
    targets = Targets()
    if results["model_speed"]:
        ROOF.update({n: m["flops"]["gflop_per_tile"] for n, m in results["model_speed"]["models"].items()})
        ROOF["peak"] = peak_of(results["model_speed"])
    body: list[str] = []
    sections = (("model_speed", model_section), ("service_load", service_section), ("memory_coldstart", memory_section))
    for name, section in sections:
        body += section(results[name], targets) if results[name] else [f"## {name}", "", "_not run_", ""]
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m bench.report` from `out/bench/results/*.json`; everything: "
        "`make bench` (= `.venv/bin/python -m bench.run_all`, add `--quick` for short points). Models: "
        "the quickstart defaults (`make run`, profile `quick`, 64 px tiles): the DEC on frozen ImageNet "
        "EfficientNet-Lite0 features (4 flip views averaged in the graph, K=50) and the U-Net with the Lite0 "
        "encoder, exported with `export.pipeline` to fp32 and static QDQ int8 ONNX (`bench/models.py`: "
        "trained quickstart runs when given, else the same architectures built with ImageNet encoders). "
        "Tiles: the shipped real EuroSAT RGB sample (`samples/eurosat-rgb`).",
        "",
        RETIRED,
        "",
        *machine_block(machine),
        "",
        "![throughput and latency](benchmarks.png) (drawn by the retired `bench/plot.py`)",
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
    ]
    # the summary table needs the targets, which the sections collect while rendering
    lines += [f"| {t} | {m} | {v} |" for t, m, v in targets.rows]
    lines += ["", "## Analysis: causes of the misses", "", BEGIN, _kept_analysis(), END, "", *body]
    for section in _kept_sections():
        lines += [section, ""]
    write_text_atomic(MD, "\n".join(lines).rstrip() + "\n")
    log.info("wrote %s", MD)
    return MD


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    render()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
