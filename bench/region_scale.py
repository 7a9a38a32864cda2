"""Region scale: a large 4-band uint16 GeoTIFF through `agriland segment` and `agriland batch` (Ray), peak RSS.

Writes the scene by windows (never whole in memory), runs the single-process CLI and the Ray batch on it
(and on N copies for scene-level parallelism), samples the summed RSS and PSS of each command's process tree
(`bench/measured_run.py`), and writes the "Region scale" section of docs/benchmarks.md.
Reproduce: `nice .venv/bin/python bench/region_scale.py --side 20000 --models MODELS_DIR`.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DOCS, ROOT, WORK, machine_info, scene_cli_options, setup_logging  # noqa: E402
from bench.measured_run import run_measured  # noqa: E402

log = logging.getLogger(__name__)
AGRILAND = ROOT / ".venv" / "bin" / "agriland"
SECTION = "## Region scale (issue 16)"


def write_scene(path: Path, side: int, seed: int = 0) -> Path:
    """A side x side, 4-band uint16 tiled GeoTIFF with square 'fields', written 1024 rows at a time."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    if path.is_file():
        return path
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".part.tif")
    profile = {"driver": "GTiff", "width": side, "height": side, "count": 4, "dtype": "uint16", "crs": "EPSG:32633",
               "transform": from_origin(500_000, 5_000_000, 10, 10), "tiled": True, "blockxsize": 512,
               "blockysize": 512, "compress": "deflate", "zlevel": 1, "BIGTIFF": "YES"}
    with rasterio.open(tmp, "w", **profile) as dst:
        for y in range(0, side, 1024):
            h = min(1024, side - y)
            rows = (np.arange(y, y + h)[:, None] // 300) + (np.arange(side)[None, :] // 300)
            field = (rows % 3 == 0)
            base = rng.integers(0, 200, (4, h, side), dtype=np.uint16)
            base += np.array([1000, 1500, 2000, 2700], dtype=np.uint16)[:, None, None]
            base[1][field] += 1500
            base[2][field] -= 800
            dst.write(base, window=Window(0, y, side, h))
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--side", type=int, default=20000)
    parser.add_argument("--copies", type=int, default=4, help="small scenes for the scene-parallel comparison")
    parser.add_argument("--copy-side", type=int, default=1500)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--variant", default="fp32")
    parser.add_argument("--overlap", type=int, default=8)
    args = parser.parse_args(argv)
    setup_logging()
    work = WORK / "region"
    work.mkdir(parents=True, exist_ok=True)
    big = write_scene(work / f"scene_{args.side}.tif", args.side)
    common = scene_cli_options(args.models, args.variant, args.overlap)
    results: dict = {"machine": machine_info(), "side": args.side, "overlap": args.overlap, "variant": args.variant,
                     "copies": args.copies, "copy_side": args.copy_side}
    cli = run_measured([str(AGRILAND), "segment", str(big), "--out", str(work / "cli"), *common])
    summary = json.loads((work / "cli" / "summary.json").read_text())
    cli.update(tiles=summary["tiles"], seconds_in_engine=summary["seconds"])
    cli["tiles_per_s"] = round(summary["tiles"] / cli["wall_s"], 1)
    results["cli_big"] = cli
    ray_big = run_measured([str(AGRILAND), "batch", str(big), "--out", str(work / "ray_big"), "--num-cpus", "2",
                            "--threads-per-actor", "2", *common])
    run = json.loads((work / "ray_big" / "run.json").read_text())
    ray_big.update(tiles=run["timings"]["tiles"], tiles_per_s=round(run["timings"]["tiles"] / ray_big["wall_s"], 1))
    results["ray_big"] = ray_big
    copies = work / "copies"
    copies.mkdir(exist_ok=True)
    for k in range(args.copies):
        write_scene(copies / f"s{k}.tif", args.copy_side, seed=k)
    single_tiles, single_wall = 0, 0.0
    for k in range(args.copies):
        one = run_measured([str(AGRILAND), "segment", str(copies / f"s{k}.tif"), "--out", str(work / f"cli_{k}"),
                            *common])
        single_tiles += json.loads((work / f"cli_{k}" / "summary.json").read_text())["tiles"]
        single_wall += one["wall_s"]
    results["cli_copies"] = {"tiles": single_tiles, "wall_s": round(single_wall, 2),
                             "tiles_per_s": round(single_tiles / single_wall, 1)}
    for actors, threads in ((2, 1), (1, 2)):
        out = work / f"ray_copies_{actors}x{threads}"
        ray_copies = run_measured([str(AGRILAND), "batch", str(copies), "--out", str(out), "--num-cpus", "2",
                                   "--actors", str(actors), "--threads-per-actor", str(threads), *common])
        tiles = json.loads((out / "run.json").read_text())["timings"]["tiles"]
        ray_copies.update(tiles=tiles, tiles_per_s=round(tiles / ray_copies["wall_s"], 1))
        results[f"ray_copies_{actors}x{threads}"] = ray_copies
    (work / "results.json").write_text(json.dumps(results, indent=1))
    write_section(results, " ".join(["bench/region_scale.py", *(argv or sys.argv[1:])]))
    return 0


def write_section(r: dict, command: str) -> None:
    """Replace (or append) the Region scale section of docs/benchmarks.md."""
    m = r["machine"]
    side = r["side"]
    lines = [
        SECTION, "",
        f"Machine: {m['cpu_model']}, {m['cores']} cores, {m['ram_gb']} GB RAM, load average {m['load_average']} "
        f"(shared with other work), {m['date']}. Command: `nice -n 10 .venv/bin/python {command}`. Model: the "
        f"suite's tiny trained U-Net ({r['variant']}, 64 px tiles), overlap {r['overlap']} px, block 1024 px. "
        "Peak RSS is the summed RSS of the command's whole process tree (Ray: driver, raylet, GCS, workers), "
        "sampled every 0.2 s. Wall time includes start-up (Ray: cluster start, actor start).", "",
        "| run | scene(s) | tiles | wall s | tiles/s | peak RSS MB |", "|---|---|---|---|---|---|",
        f"| `agriland segment` (1 process, 2 threads) | {side} x {side} x 4 uint16 | {r['cli_big']['tiles']} | "
        f"{r['cli_big']['wall_s']} | {r['cli_big']['tiles_per_s']} | {r['cli_big']['peak_rss_mb']} |",
        f"| `agriland batch` (local Ray, 1 actor x 2 threads) | same | {r['ray_big']['tiles']} | "
        f"{r['ray_big']['wall_s']} | {r['ray_big']['tiles_per_s']} | {r['ray_big']['peak_rss_mb']} |",
        f"| `agriland segment`, one scene after another | {r['copies']} x {r['copy_side']}² "
        f"| {r['cli_copies']['tiles']} | {r['cli_copies']['wall_s']} | {r['cli_copies']['tiles_per_s']} | |",
    ]
    for key in ("ray_copies_2x1", "ray_copies_1x2"):
        v = r[key]
        label = key.removeprefix("ray_copies_").replace("x", " actor(s) x ") + " thread(s)"
        lines.append(f"| `agriland batch` (local Ray, {label}) | same {r['copies']} | {v['tiles']} | {v['wall_s']} | "
                     f"{v['tiles_per_s']} | {v['peak_rss_mb']} |")
    ratio = r["ray_big"]["tiles_per_s"] / r["cli_big"]["tiles_per_s"]
    lines += ["", f"Ray / single-process tiles/s on the large scene: {ratio:.2f}x.", ""]
    text = (DOCS / "benchmarks.md").read_text()
    block = "\n".join(lines) + "\n"
    if SECTION in text:
        start = text.index(SECTION)
        nxt = re.search(r"^## ", text[start + len(SECTION):], flags=re.M)
        end = start + len(SECTION) + nxt.start() if nxt else len(text)
        text = text[:start] + block + ("\n" if nxt else "") + text[end:]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    (DOCS / "benchmarks.md").write_text(text)


if __name__ == "__main__":
    sys.exit(main())
