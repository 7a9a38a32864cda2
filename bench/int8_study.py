"""Where the U-Net's int8 error comes from: quantization settings side by side against the fp32 export.

    .venv/bin/python -m bench.int8_study [--models models] [--fields ../shared/data/fields-naip-dev]

Each setting quantizes the exported fp32 U-Net with `export.variants.to_int8` (the export's own code), calibrated
on real tiles (`--tiles`, default the shipped EuroSAT sample), and is compared with fp32 on held-out tiles of the
same folder and, with `--fields DIR` (images/ of real field imagery), on 64 px crops of those images: mask IoU at
the manifest's threshold (the export gate asks >= 0.98), mean and max |p_int8 - p_fp32|, and tiles/s against fp32
measured in the same run (batch 8, one pass: rotations are the caller's). `--write-artifact DIR` also writes the
default setting's int8 as DIR/unet/int8 (manifest marked NOT gated, for `bench/field_eval.py --models DIR
--variant int8` only; never serve it). Writes out/bench/results/int8_study.json and the "int8 study" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from PIL import Image

if __package__ in (None, ""):  # run as `python bench/int8_study.py`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    DOCS,
    ROOT,
    machine_info,
    replace_section,
    save_result,
    setup_logging,
)
from export.variants import to_int8

log = logging.getLogger("int8_study")
BEGIN, END = "<!-- int8-study:begin -->", "<!-- int8-study:end -->"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff"}


def _first_conv(model: onnx.ModelProto) -> str:
    return next(node.name for node in model.graph.node if node.op_type == "Conv")


def _named(name: str) -> Callable[[onnx.NodeProto], bool]:
    return lambda node: node.name == name


def _is_depthwise(node: onnx.NodeProto) -> bool:
    return node.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in node.attribute)


@dataclass(frozen=True)
class Setting:
    """One way of quantizing: what it changes against the export's default, and the to_int8 options it uses."""

    name: str
    change: str
    options: dict = field(default_factory=dict)
    keep_float: Callable[[onnx.ModelProto], Callable[[onnx.NodeProto], bool]] | None = None


SETTINGS = (
    Setting("default", "the export's: MinMax calibration, per-channel s8 weights, u8 activations"),
    Setting("percentile", "activation ranges at the 0.001/99.999 percentiles instead of min/max",
            {"calibration_method": "percentile"}),
    Setting("uint16-activations", "16-bit activations (int8 weights only): what the activations cost",
            {"activations": "uint16"}),
    Setting("float-first-conv", "the first convolution (full resolution, feeds the finest skip) kept float",
            keep_float=lambda model: _named(_first_conv(model))),
    Setting("float-depthwise", "every depthwise convolution kept float", keep_float=lambda model: _is_depthwise),
)


def image_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SystemExit(f"int8_study: no images under {folder}")
    return files


def load_rgb(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8)


def field_crops(folder: Path, size: int, limit: int, stride: int) -> np.ndarray:
    """Up to `limit` size x size crops on a `stride` grid of every image in folder/images (native resolution)."""
    crops: list[np.ndarray] = []
    for path in image_files(folder / "images"):
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        for y in range(0, rgb.shape[0] - size + 1, stride):
            for x in range(0, rgb.shape[1] - size + 1, stride):
                crops.append(rgb[y:y + size, x:x + size])
    if not crops:
        raise SystemExit(f"int8_study: no {size} px crop fits in the images of {folder}")
    order = np.random.default_rng(0).permutation(len(crops))[:limit]
    return np.stack([crops[i] for i in sorted(order)])


class Runner:
    """One ONNX Runtime CPU session: masks of a tile set (batch 8) and its batch-8 rate."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def masks(self, tiles: np.ndarray) -> np.ndarray:
        return np.concatenate([self.session.run(None, {self.input: tiles[i:i + 8]})[0]
                               for i in range(0, len(tiles), 8)])

    def rate(self, tiles: np.ndarray, seconds: float) -> float:
        batch = np.ascontiguousarray(tiles[:8])
        self.session.run(None, {self.input: batch})
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            self.session.run(None, {self.input: batch})
            runs += 1
        return 8 * runs / (time.perf_counter() - start)


def agreement(reference: np.ndarray, other: np.ndarray, threshold: float) -> dict[str, float]:
    """Mask IoU at `threshold` (1.0 when neither has a positive pixel) and mean / max |difference|."""
    a, b = reference >= threshold, other >= threshold
    union = int((a | b).sum())
    diff = np.abs(reference.astype(np.float64) - other)
    return {"mask_iou": float((a & b).sum() / union) if union else 1.0, "mean_abs_diff": float(diff.mean()),
            "max_abs_diff": float(diff.max())}


def write_artifact(fp32_folder: Path, int8_model: Path, out: Path, parity: dict) -> Path:
    """out/unet/int8: the study's default int8 with the fp32 manifest, marked as not gated (evaluation only)."""
    folder = out / "unet" / "int8"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(int8_model, folder / "model.onnx")
    manifest = json.loads((fp32_folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["variant"] = "int8"
    manifest["onnx_sha256"] = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    manifest["parity"] = {"reference": "onnx-fp32", "passed": False,
                          "gate": "NOT GATED: bench/int8_study.py artifact for evaluation only; never serve it",
                          **parity}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    log.info("wrote the ungated evaluation artifact %s", folder)
    return folder


def study(args: argparse.Namespace) -> dict:
    """Every setting quantized, compared with fp32 and timed against it in this one run."""
    fp32_folder = args.models / "unet" / "fp32"
    fp32_path = fp32_folder / "model.onnx"
    if not fp32_path.is_file():
        raise SystemExit(f"int8_study: no fp32 U-Net at {fp32_path} (run `make run` or `agriland export` first)")
    manifest = json.loads((fp32_folder / "manifest.json").read_text(encoding="utf-8"))
    size, threshold = int(manifest["tile_size"]), float(manifest["threshold"])
    files = image_files(args.tiles)
    random.Random(0).shuffle(files)
    if len(files) < args.calibration + 16:
        raise SystemExit(f"int8_study: {args.tiles} has {len(files)} images; need {args.calibration} + 16 or more")
    calibration = np.stack([load_rgb(p, size) for p in files[:args.calibration]])
    held_out = np.stack([load_rgb(p, size) for p in files[args.calibration:args.calibration + args.eval]])
    sets = {"held-out tiles": held_out}
    if args.fields:
        sets["field-image crops"] = field_crops(args.fields, size, args.eval, stride=size + size // 2)
    fp32 = Runner(fp32_path)
    reference = {name: fp32.masks(tiles) for name, tiles in sets.items()}
    fp32_rates = [fp32.rate(held_out, args.seconds)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="agriland-int8-study-") as tmp:
        for setting in SETTINGS:
            path = Path(tmp) / f"{setting.name}.onnx"
            keep = setting.keep_float(onnx.load(str(fp32_path))) if setting.keep_float else None
            to_int8(fp32_path, path, calibration, keep_float=keep, **setting.options)
            runner = Runner(path)
            row = {"setting": setting.name, "change": setting.change,
                   "sets": {name: agreement(reference[name], runner.masks(tiles), threshold)
                            for name, tiles in sets.items()},
                   "tiles_per_s": runner.rate(held_out, args.seconds)}
            fp32_rates.append(fp32.rate(held_out, args.seconds))  # fp32 between settings: the rate drifts
            row["speedup"] = row["tiles_per_s"] / statistics.mean(fp32_rates[-2:])
            log.info("%s: %s, %.2fx fp32", setting.name,
                     ", ".join(f"{k} IoU {v['mask_iou']:.4f}" for k, v in row["sets"].items()), row["speedup"])
            rows.append(row)
            if setting.name == "default" and args.write_artifact:
                write_artifact(fp32_folder, path, args.write_artifact, row["sets"]["held-out tiles"])
    return {"machine": machine_info(), "command": "python -m bench.int8_study " + " ".join(sys.argv[1:]),
            "models": str(args.models), "tiles": str(args.tiles), "fields": str(args.fields) if args.fields else None,
            "n": {name: len(tiles) for name, tiles in sets.items()}, "n_calibration": len(calibration),
            "threshold": threshold, "fp32_tiles_per_s": fp32_rates, "rows": rows}


def render(result: dict) -> str:
    """The delimited docs section: one row per setting, IoU / |diff| per tile set, speed."""
    names = list(result["n"])
    m = result["machine"]
    lines = [BEGIN, "## int8 study (issue 22)", "",
             f"`{result['command']}`; machine: {m['cpu_model']}, {m['cores']} cores, {m['date']}. The fp32 U-Net "
             f"of `{result['models']}` quantized by `export.variants.to_int8` in each setting, calibrated on "
             f"{result['n_calibration']} real tiles of `{result['tiles']}`, compared with fp32 at the manifest's "
             f"threshold {result['threshold']} on " + " and ".join(f"{result['n'][n]} {n}" for n in names) +
             (f" (64 px crops at native resolution of `{result['fields']}`)" if result["fields"] else "") +
             "; one pass, no rotations. Speed: batch 8 on this machine's cores against fp32 timed before and "
             "after each setting. The export's gate asks mask IoU >= 0.98.", "",
             "| setting | what it changes | " + " | ".join(f"IoU vs fp32, {n}" for n in names) +
             " | mean / max abs diff (held-out) | x fp32 speed |",
             "|---|---|" + "---|" * len(names) + "---|---|"]
    for row in result["rows"]:
        first = row["sets"][names[0]]
        lines.append(f"| {row['setting']} | {row['change']} | " +
                     " | ".join(f"{row['sets'][n]['mask_iou']:.4f}" for n in names) +
                     f" | {first['mean_abs_diff']:.4f} / {first['max_abs_diff']:.3f} | {row['speedup']:.2f}x |")
    lines += ["", END]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models", help="artifact root (unet/fp32)")
    parser.add_argument("--tiles", type=Path, default=ROOT / "samples" / "eurosat-rgb",
                        help="folder of real tiles: calibration and held-out comparison (default the shipped sample)")
    parser.add_argument("--fields", type=Path, default=None, help="also compare on crops of DIR/images")
    parser.add_argument("--calibration", type=int, default=128, help="calibration tiles (default 128)")
    parser.add_argument("--eval", type=int, default=400, help="tiles per comparison set (default 400)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per speed point")
    parser.add_argument("--write-artifact", type=Path, default=None,
                        help="write the default setting's int8 as DIR/unet/int8 (not gated; for field_eval only)")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    setup_logging()
    result = study(args)
    log.info("wrote %s", save_result("int8_study", result))
    section = render(result)
    if args.no_report:
        print(section)
    else:
        replace_section(DOCS / "benchmarks.md", BEGIN, END, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
