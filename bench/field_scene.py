"""The field model's scene answer, fast vs best, on a Sentinel-2-sized crop: wall time and peak memory of
`agriland segment --mask-mode fields`, side by side in one run, extrapolated to the full 10,980 px tile.

The scene is bench.sentinel2_tile's (a uint16 B2,B3,B4,B8 mosaic of the shipped real EuroSAT tiles at 10 m); only
the field model is in the models folder it is given, so `fields` answers with it.
Reproduce: `.venv/bin/python -m bench.field_scene --models models --side 4096`.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

from bench.common import DOCS, ROOT, WORK, machine_info, replace_section, setup_logging
from bench.measured_run import run_measured
from bench.sentinel2_tile import S2_SIDE, write_scene

log = logging.getLogger(__name__)
AGRILAND = ROOT / ".venv" / "bin" / "agriland"
BEGIN, END = "<!-- field-scene:begin -->", "<!-- field-scene:end -->"
REPORT = DOCS / "field_evaluation.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=4096)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--qualities", nargs="+", default=["fast", "best"])
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    setup_logging()
    WORK.mkdir(parents=True, exist_ok=True)
    scene = write_scene(WORK / f"s2_mosaic_{args.side}.tif", args.side)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        only_fields = Path(tmp) / "models"
        only_fields.mkdir()
        (only_fields / "fields").symlink_to((args.models / "fields").resolve())
        for quality in args.qualities:
            out = Path(tmp) / quality
            run = run_measured([str(AGRILAND), "segment", str(scene), "--out", str(out), "--models", str(only_fields),
                                "--bands", "sentinel2-10m", "--quality", quality, "--no-progress"])
            summary = json.loads((out / "summary.json").read_text())
            scale = (S2_SIDE / args.side) ** 2
            rows.append({"quality": quality, "wall_s": run["wall_s"], "full_tile_s": round(run["wall_s"] * scale),
                         "peak_rss_mb": run["peak_rss_mb"], "model_gsd_m": summary["model_gsd_m"],
                         "tiles": summary["tiles"], "n_polygons": summary["n_polygons"]})
            log.info("%s", rows[-1])
    info = machine_info()
    table = ["| quality | works at | model tiles | wall (crop) | full tile, extrapolated | peak RSS | polygons |",
             "|---|---|---|---|---|---|---|"]
    table += [f"| {r['quality']} | {r['model_gsd_m']:g} m | {r['tiles']:,} | {r['wall_s']:.0f} s | "
              f"{r['full_tile_s'] / 60:.1f} min | {r['peak_rss_mb']:,} MB | {r['n_polygons']:,} |" for r in rows]
    text = "\n".join([
        BEGIN, "## Cost of the field answer on a Sentinel-2 tile", "",
        f"`.venv/bin/python -m bench.field_scene --side {args.side}` on {info['cpu_model']}, {info['cores']} cores, "
        f"{info['date']} (load average {info.get('load_average', '?')}): a {args.side:,} px uint16 crop of the "
        "bench's EuroSAT mosaic scene at 10 m through `agriland segment --mask-mode fields` (the field model "
        f"only); the full 10,980 px tile is extrapolated by pixel count (x{(S2_SIDE / args.side) ** 2:.2f}).", "",
        *table, "", END])
    print("\n".join(table))
    if not args.no_report:
        replace_section(REPORT, BEGIN, END, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
