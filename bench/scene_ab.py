"""A scene through `agriland segment` with this tree's code and another git ref's, side by side in one run.

The same Sentinel-2-like mosaic (bench/sentinel2_tile.py's, at `--side` px) goes through both codes in every answer
mode asked for, in `--rounds` interleaved rounds (A, B, A, B, ...), so both see the same load on shared cores; the
ratio per round and their median are what to read, not the absolute seconds. Writes out/bench/results/scene_ab.json
and the "Scene engine before/after" section of docs/benchmarks.md.

Reproduce: `.venv/bin/python -m bench.scene_ab --baseline <ref> [--side 2048] [--rounds 2] [--modes fields,threshold]`.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    DOCS,
    ROOT,
    WORK,
    baseline_tree,
    machine_info,
    replace_section,
    save_result,
    scene_cli_options,
    setup_logging,
)
from bench.sentinel2_tile import run_measured, write_scene  # noqa: E402

log = logging.getLogger(__name__)

BEGIN, END = "<!-- scene-ab:begin -->", "<!-- scene-ab:end -->"


def segment_once(code: Path, scene: Path, out: Path, options: list[str], mode: str) -> dict:
    """One `agriland segment` run of `code`'s package (PYTHONPATH), wall and peak RSS."""
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(code)}
    cmd = [sys.executable, "-m", "agriland.cli", "segment", str(scene), "--out", str(out), *options,
           "--mask-mode", mode]
    return run_measured(cmd, env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="git ref whose code is the 'before' (e.g. a commit)")
    parser.add_argument("--side", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", default="fields,threshold")
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    setup_logging()
    work = WORK / "scene_ab"
    work.mkdir(parents=True, exist_ok=True)
    scene = write_scene(WORK / "sentinel2" / f"s2_mosaic_{args.side}.tif", args.side)
    options = scene_cli_options(args.models, "fp32", 8)
    codes = {"before": baseline_tree(args.baseline), "after": ROOT}
    result: dict = {"machine": machine_info(), "baseline": args.baseline, "side": args.side,
                    "command": "python -m bench.scene_ab " + " ".join(argv if argv is not None else sys.argv[1:]),
                    "runs": {}}
    for mode in args.modes.split(","):
        runs = result["runs"].setdefault(mode, {"before": [], "after": []})
        for _ in range(args.rounds):
            for label, code in codes.items():
                runs[label].append(segment_once(code, scene, work / label, options, mode))
    save_result("scene_ab", result)
    if not args.no_report:
        replace_section(DOCS / "benchmarks.md", BEGIN, END, render(result))
    return 0


def render(r: dict) -> str:
    m = r["machine"]
    lines = [BEGIN, "## Scene engine before/after (issue 22)", "",
             f"`{r['command']}`. Machine: {m['cpu_model']}, {m['cores']} cores shared with other engineers' jobs, "
             f"load average {', '.join(map(str, m['load_average']))} at the start; {m['date']}. The same "
             f"{r['side']} x {r['side']} px Sentinel-2-like mosaic (`bench/sentinel2_tile.py`) through "
             f"`agriland segment --overlap 8` (fp32, the manifest's 4 rotations) with the code of `{r['baseline']}` "
             "(before) and of this tree (after), interleaved round by round. Wall seconds include the process "
             "start.", "",
             "| answer | before, wall s per round | after, wall s per round | after / before per round | median | "
             "peak RSS MB before / after |", "|---|---|---|---|---|---|"]
    for mode, runs in r["runs"].items():
        before = [x["wall_s"] for x in runs["before"]]
        after = [x["wall_s"] for x in runs["after"]]
        ratios = [a / b for a, b in zip(after, before)]
        rss = (max(x["peak_rss_mb"] for x in runs["before"]), max(x["peak_rss_mb"] for x in runs["after"]))
        lines.append(f"| `--mask-mode {mode}` | {', '.join(map(str, before))} | {', '.join(map(str, after))} | "
                     f"{', '.join(f'{x:.2f}' for x in ratios)} | **{statistics.median(ratios):.2f}** | "
                     f"{rss[0]} / {rss[1]} |")
    return "\n".join([*lines, "", END]) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
