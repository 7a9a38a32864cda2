"""Cross-validated field evaluation: train the field model on k-1 folds of images, export it, answer the held-out
fold through the scene path every front end shares, and score fields against the drawn polygons (never an image
the model trained on), for several training seeds; as delivered (e.g. 1 m) and area-averaged to a coarser sensor.

    .venv/bin/python -m evaluation.field_cv --fields ../shared/data/fields-naip-dev --folds 3 --seeds 0 1 2

Each (fold, seed) run is saved under `--work` as it finishes (a rerun resumes); the table (mean +- sd over seeds
of the pooled per-fold scores) goes to docs/field_evaluation.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from dataclasses import replace
from datetime import UTC
from pathlib import Path

import numpy as np
from PIL import Image

from evaluation.field_figures import overlay, overlay_sheet, write_geotiff
from training.field_metrics import FieldScores, instances_of, score_fields
from training.field_polygons import FieldImage

log = logging.getLogger("evaluation.field_cv")
DOCS = Path(__file__).resolve().parents[1] / "docs"
REPORT = DOCS / "field_evaluation.md"


def folds_of(names: list[str], k: int) -> list[list[int]]:
    """k folds of image indices (a fixed shuffle of the sorted names, so folds do not follow file order)."""
    order = np.random.default_rng(12345).permutation(sorted(range(len(names)), key=lambda i: names[i]))
    return [sorted(order[f::k].tolist()) for f in range(k)]


def coarsened(image: FieldImage, factor: int) -> FieldImage:
    if factor <= 1:
        return image
    from training.field_targets import at_gsd

    return at_gsd(image, image.gsd_m * factor)


def answer(model, image: FieldImage, work: Path, quality: str = "fast") -> np.ndarray:
    """The answered field instances of one image through `segment_file` with the served defaults."""
    import rasterio

    from inference.models.onnx_model import predictor
    from inference.scenes.segment import SceneRequest, segment_file

    scene = work / "scene.tif"
    write_geotiff(scene, image.rgb, image.gsd_m)
    request = SceneRequest(mask_mode="fields", quality=quality)  # type: ignore[arg-type]
    segment_file(scene, predictor(model), request.resolve(model.manifest, 8), outputs={"mask": work / "mask.tif"})
    with rasterio.open(work / "mask.tif") as ds:
        mask = ds.read(1)
    return instances_of(mask == 1)


def train_fold(
    images: list[FieldImage], fold: list[int], seed: int, args: argparse.Namespace, negatives, models: Path
) -> float:
    """Train on the other folds' images and export fp32 to `models` (kept, so a rescore needs no training)."""
    from export.pipeline import export_model
    from training.field_train import PROFILES, train_fields

    config = replace(PROFILES[args.profile], seed=seed)
    if args.epochs:
        config = replace(config, epochs=args.epochs)
    train = [im for i, im in enumerate(images) if i not in fold]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        run_dir = Path(tmp) / "run"
        train_fields(train, negatives, config, run_dir, {"cv": f"{len(train)} images, {len(fold)} held out"})
        export_model(run_dir, models, "fields", "fp32")
    return round(time.monotonic() - started, 1)


def score_fold(
    images: list[FieldImage], fold: list[int], seed: int, args: argparse.Namespace, models: Path, scales: list[int]
) -> dict:
    """Answer and score the held-out images at every scale with the fold's exported model."""
    from contract.artifacts import artifact_folder
    from inference.models.onnx_model import OnnxModel

    model = OnnxModel.load(artifact_folder(models, "fields", "fp32"), providers="cpu")
    held = [images[i] for i in fold]
    result: dict = {"seed": seed, "held_out": [im.name for im in held], "quality": args.quality, "scales": {}}
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        for factor in scales:
            rows, total = [], FieldScores()
            for image in held:
                view = coarsened(image, factor)
                labels = answer(model, view, Path(tmp), args.quality)
                scores = score_fields(labels, view.instances)
                total = total + scores
                rows.append({"image": image.name, **scores.as_dict()})
                if args.overlays and image is held[0]:
                    path = Path(args.work) / f"overlay_x{factor}_seed{seed}_{image.name}.png"
                    Image.fromarray(overlay(view.rgb, labels, view.instances)).save(path)
            result["scales"][str(factor)] = {
                "total": total.as_dict(),
                "tp": total.tp,
                "fp": total.fp,
                "fn": total.fn,
                "images": rows,
            }
    return result


def pooled(results: list[dict], factor: str) -> FieldScores:
    """Scores pooled over the folds of one seed."""
    total = FieldScores()
    for r in results:
        s = r["scales"][factor]
        t = s["total"]
        total = total + FieldScores(s["tp"], s["fp"], s["fn"], int(t["n_pred"]), int(t["n_true"]), int(t["n_matched"]))
    return total


def table(done: dict[str, dict], seeds: list[int], folds: int, scales: list[int], base_gsd: float) -> str:
    lines = [
        "| images as | seeds | pixel IoU | precision | recall | object F1 | object P / R |",
        "|---|---|---|---|---|---|---|",
    ]
    for factor in map(str, scales):
        per_seed = []
        for seed in seeds:
            runs = [done[f"fold{f}-seed{seed}"] for f in range(folds) if f"fold{f}-seed{seed}" in done]
            if len(runs) == folds:
                per_seed.append(pooled(runs, factor))
        if not per_seed:
            continue

        def stat(get) -> str:
            values = np.array([get(s) for s in per_seed])
            return f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.3f}"

        lines.append(
            f"| {base_gsd * int(factor):g} m | {len(per_seed)} | {stat(lambda s: s.iou)} | "
            f"{stat(lambda s: s.precision)} | {stat(lambda s: s.recall)} | **{stat(lambda s: s.object_f1)}** | "
            f"{stat(lambda s: s.object_precision)} / {stat(lambda s: s.object_recall)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from training.field_chips import load_negative_tiles
    from training.field_cli import SHIPPED_NEGATIVES
    from training.field_polygons import read_fields

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", type=Path, required=True, help="folder with images/ and a VIA export")
    parser.add_argument("--gsd", type=float, default=1.0, help="metres per pixel of the images (NAIP: 1.0)")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--coarsen",
        type=int,
        nargs="+",
        default=[1, 10],
        help="score the images as delivered (1) and area-averaged by these factors (10: 1 m as 10 m)",
    )
    parser.add_argument("--profile", default="quick", help="field training profile (tiny for a smoke run)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--quality", choices=("fast", "best"), default="fast")
    parser.add_argument("--negatives", type=Path, default=SHIPPED_NEGATIVES)
    parser.add_argument("--work", type=Path, default=Path("runs/field_cv"))
    parser.add_argument("--overlays", action="store_true", help="save an overlay of each fold's first image")
    parser.add_argument("--rescore", action="store_true", help="score the kept fold models again (no training)")
    parser.add_argument("--score-only", action="store_true", help="never train: score the fold models there are")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args.work.mkdir(parents=True, exist_ok=True)
    via = next(iter(sorted(args.fields.glob("*.json"))), None)
    if via is None:
        raise SystemExit(f"{args.fields} has no VIA export (*.json)")
    images = read_fields(via, args.fields / "images", args.gsd)
    negatives = load_negative_tiles(args.negatives, 400, 0) if args.negatives.is_dir() else None
    folds = folds_of([im.name for im in images], args.folds)
    results_path = args.work / ("results.json" if args.quality == "fast" else f"results-{args.quality}.json")
    done: dict[str, dict] = json.loads(results_path.read_text()) if results_path.is_file() else {}
    for seed in args.seeds:
        for f, fold in enumerate(folds):
            key = f"fold{f}-seed{seed}"
            models = args.work / f"models-{key}"
            if key in done and not args.rescore:
                continue
            if not (models / "fields" / "fp32" / "manifest.json").is_file():
                if args.score_only:
                    continue
                log.info("%s: training on %d images, scoring %d", key, len(images) - len(fold), len(fold))
                seconds = train_fold(images, fold, seed, args, negatives, models)
            else:
                seconds = (done.get(key) or {}).get("train_seconds", 0.0)
            done[key] = {**score_fold(images, fold, seed, args, models, args.coarsen), "train_seconds": seconds}
            results_path.write_text(json.dumps(done, indent=1))
            for factor, s in done[key]["scales"].items():
                log.info(
                    "%s x%s: IoU %.3f, object F1 %.3f", key, factor, s["total"]["pixel_iou"], s["total"]["object_f1"]
                )
    text = table(done, args.seeds, args.folds, args.coarsen, args.gsd)
    print(text)
    if not args.no_report:
        write_report(args, done, text, len(images), sum(im.n_fields for im in images))
    return 0


def write_report(args: argparse.Namespace, done: dict, text: str, n_images: int, n_fields: int) -> None:
    """The cross-validation section of docs/field_evaluation.md (between its markers)."""
    import platform
    from datetime import datetime

    from contract.reports import replace_section  # run from the repository root (python -m evaluation.field_cv)

    figure = overlay_sheet(args.work, DOCS / "field_overlays_cv.png")
    seconds = [r.get("train_seconds", 0) for r in done.values() if r.get("train_seconds")]
    begin, end = "<!-- field-cv:begin -->", "<!-- field-cv:end -->"
    rows = [
        f"| {key} | {len(r['held_out'])} | "
        + " | ".join(
            f"{r['scales'][f]['total']['pixel_iou']:.3f} / {r['scales'][f]['total']['object_f1']:.3f}"
            for f in map(str, args.coarsen)
        )
        + " |"
        for key, r in sorted(done.items())
    ]
    section = "\n".join(
        [
            begin,
            f"## The field model, cross-validated by image ({args.fields.name}: {n_images} images, {n_fields} fields)",
            "",
            f"Command: `.venv/bin/python -m evaluation.field_cv --fields {args.fields} --folds {args.folds} --seeds "
            f"{' '.join(map(str, args.seeds))} --profile {args.profile}"
            + (f" --epochs {args.epochs}" if args.epochs else "")
            + f" --quality {args.quality}` ({platform.node() or 'this machine'}, 2 CPU cores, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; training {np.mean(seconds) / 60:.0f} min per fold on "
            "average, on cores shared with other jobs). Each fold's model is trained on the other folds' images only "
            "(with the shipped EuroSAT not-field tiles), exported to ONNX and run through `segment_file` — the "
            "scene path of the service, `agriland segment` and `agriland batch` — on the held-out images as "
            "GeoTIFFs, as delivered and area-averaged to 10 m; scores are pooled over the folds of a seed, then "
            "mean ± sd over seeds.",
            "",
            text,
            "",
            *(
                [
                    f"![held-out overlays, seed 0: hits green, false field red, missed field blue, answered outlines "
                    f"white]({figure.name})",
                    "",
                ]
                if figure
                else []
            ),
            "<details><summary>per fold and seed (pixel IoU / object F1)</summary>\n",
            "| run | held-out images | " + " | ".join(f"x{f}" for f in args.coarsen) + " |",
            "|---|---|" + "---|" * len(args.coarsen),
            *rows,
            "\n</details>",
            end,
        ]
    )
    replace_section(REPORT, begin, end, section, append=False)
    log.info("wrote %s", REPORT)


if __name__ == "__main__":
    raise SystemExit(main())
