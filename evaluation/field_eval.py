"""Per-field evaluation on real imagery with drawn field polygons: pixel IoU / precision / recall and object F1.

    .venv/bin/python -m evaluation.field_eval --fields ../shared/data/fields-naip-dev --gsd 1.0 --models models

`--fields DIR` holds `images/` and a VGG Image Annotator export (`via_annotations.json`, one polygon per field;
everything outside the polygons is not field). Every image goes through the scene path that `agriland segment`,
`/segment_scene` and `agriland batch` share (written as a GeoTIFF at `--gsd` m/px), and the answered mask's
4-connected regions are the answered fields. Objects match one-to-one (Hungarian on IoU) at IoU > 0.5.
Each `--variants` entry is one answer mode of the served model (see inference/fields.py); `--train-folds K` adds
a variant that is trained on the other folds' images (split by image, never on a scored image) through
`agriland via-to-masks` + `agriland train-unet`, the workflow's own annotate-then-train path.
Writes the table into docs/field_evaluation.md (section per --tag) and overlays into docs/.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from contract.atomic import write_text_atomic
from contract.reports import DOCS, machine_info, replace_section
from evaluation.field_figures import overlay, write_geotiff
from inference.models.runtime import RuntimeOptions
from training.field_metrics import FieldScores, instances_of, score_fields
from training.field_polygons import FieldImage, read_via_fields

log = logging.getLogger("field_eval")
REPORT = DOCS / "field_evaluation.md"


def coarsen(image: FieldImage, factor: int) -> FieldImage:
    """The image area-averaged by `factor` (a coarser sensor over the same fields); labels by nearest pixel."""
    if factor <= 1:
        return image
    h, w = image.instances.shape
    size = (max(1, w // factor), max(1, h // factor))
    rgb = np.asarray(Image.fromarray(image.rgb).resize(size, Image.Resampling.BOX))
    fields = np.asarray(Image.fromarray(image.instances).resize(size, Image.Resampling.NEAREST))
    return FieldImage(image.name, rgb, fields.astype(np.int32), image.gsd_m * factor)


def _read(folder: Path, gsd: float) -> list[FieldImage]:
    """The images of `folder/images` with the polygons of its VIA export (`*.json`) as field instances."""
    via = next(iter(sorted(folder.glob("*.json"))), None)
    if via is None:
        raise SystemExit(f"{folder} has no VIA export (*.json)")
    return read_via_fields(via, folder / "images", gsd)


def segment_through_scene_path(
    rgb: np.ndarray,
    gsd: float,
    models: Path,
    variant: str,
    mode: str,
    work: Path,
    threshold: float | None = None,
    views: str = "",
) -> np.ndarray:
    """The answered mask (1 = field) of one image through `segment_file`, as the CLI runs it."""
    import rasterio

    from inference.models.onnx_model import predictor
    from inference.scenes.segment import SceneRequest, segment_file

    model = _model(models, variant, views)
    scene = work / "scene.tif"
    write_geotiff(scene, rgb, gsd)
    # the defaults `agriland segment`, /segment_scene and `agriland batch` answer with
    request = SceneRequest(mask_mode=mode, threshold=threshold)  # type: ignore[arg-type]
    segment_file(scene, predictor(model), request.resolve(model.manifest, 16), outputs={"mask": work / "mask.tif"})
    with rasterio.open(work / "mask.tif") as ds:
        mask = ds.read(1)
    return (mask == 1).astype(np.uint8)


_MODELS: dict[tuple[Path, str, str], object] = {}


def _model(models: Path, variant: str, views: str = ""):
    from contract.artifacts import artifact_folder
    from inference.models.onnx_model import OnnxModel

    key = (models, variant, views)
    if key not in _MODELS:  # `views`: U-Net rotations as AGRILAND_TTA_VIEWS gives them ("": the manifest's)
        runtime = RuntimeOptions.from_env({"AGRILAND_TTA_VIEWS": views})
        _MODELS[key] = OnnxModel.load(artifact_folder(models, "unet", variant), providers="cpu", runtime=runtime)
    return _MODELS[key]


def evaluate(images: list[FieldImage], answer_of, label: str) -> tuple[FieldScores, list[dict], list[np.ndarray]]:
    """Score every image's answer; returns the summed scores, per-image rows and answers."""
    total, rows, answers = FieldScores(), [], []
    for image in images:
        started = time.monotonic()
        answer = answer_of(image)
        scores = score_fields(instances_of(answer), image.instances)
        total = total + scores
        rows.append({"image": image.name, "seconds": round(time.monotonic() - started, 2), **scores.as_dict()})
        answers.append(answer)
        log.info(
            "%s %s: IoU %.3f, object F1 %.3f (%d answered / %d fields)",
            label,
            image.name,
            scores.iou,
            scores.object_f1,
            scores.n_pred,
            scores.n_true,
        )
    return total, rows, answers


def table(results: dict[str, FieldScores], per_image: dict[str, list[dict]]) -> str:
    lines = [
        "| variant | pixel IoU | precision | recall | object F1 | object P / R | answered / drawn fields "
        "| mean per-image IoU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in results.items():
        mean_iou = float(np.mean([r["pixel_iou"] for r in per_image[name]])) if per_image[name] else 0.0
        lines.append(
            f"| {name} | {s.iou:.3f} | {s.precision:.3f} | {s.recall:.3f} | **{s.object_f1:.3f}** | "
            f"{s.object_precision:.2f} / {s.object_recall:.2f} | {s.n_pred} / {s.n_true} | {mean_iou:.3f} |"
        )
    return "\n".join(lines)


def save_overlays(images: list[FieldImage], answers: list[np.ndarray], path: Path, n: int = 4) -> None:
    picks = np.linspace(0, len(images) - 1, min(n, len(images))).astype(int)
    side = 384
    sheet = Image.new("RGB", (side * len(picks), side), "white")
    for k, i in enumerate(picks):
        tile = Image.fromarray(overlay(images[i].rgb, instances_of(answers[i]), images[i].instances)).resize(
            (side, side)
        )
        sheet.paste(tile, (k * side, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", type=Path, required=True, help="folder with images/ and a VIA export")
    parser.add_argument("--gsd", type=float, default=1.0, help="metres per pixel of the images (NAIP: 1.0)")
    parser.add_argument("--models", type=Path, default=Path("models"), help="exported models (unet/<variant>)")
    parser.add_argument("--variant", default="fp32", help="model variant (fp32, fp16, int8)")
    parser.add_argument(
        "--modes",
        default="threshold,fields",
        help="answer modes to score, comma-separated (threshold: the plain probability cut; "
        "fields: field delineation, the default answer)",
    )
    parser.add_argument(
        "--coarsen",
        type=int,
        default=1,
        help="area-average the images by this factor first (e.g. 10: 1 m aerial as a 10 m sensor)",
    )
    parser.add_argument(
        "--tta", default="", help="comma-separated U-Net rotation counts to compare (e.g. 4,1; default: the manifest's)"
    )
    parser.add_argument("--threshold", type=float, default=None, help="arable cut (default: the manifest's)")
    parser.add_argument("--limit", type=int, default=None, help="score only the first N images")
    parser.add_argument("--tag", default="naip", help="report section name (one per data set)")
    parser.add_argument("--no-report", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    images = [coarsen(image, args.coarsen) for image in _read(args.fields, args.gsd)[: args.limit]]
    gsd = args.gsd * max(1, args.coarsen)
    log.info("%d images, %d drawn fields", len(images), sum(int(im.instances.max()) for im in images))
    results: dict[str, FieldScores] = {}
    per_image: dict[str, list[dict]] = {}
    answers_of: dict[str, list[np.ndarray]] = {}
    views = [v.strip() for v in args.tta.split(",") if v.strip()] or [""]
    with tempfile.TemporaryDirectory() as tmp:
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            for view in views:
                name = f"{args.models.name}/{args.variant} {mode}" + (f" @{args.threshold:g}" if args.threshold else "")
                name += f", {view} rotations" if view else ""

                def answer_of(image: FieldImage, mode: str = mode, view: str = view) -> np.ndarray:
                    return segment_through_scene_path(
                        image.rgb, gsd, args.models, args.variant, mode, Path(tmp), args.threshold, view
                    )

                results[name], per_image[name], answers_of[name] = evaluate(images, answer_of, name)
    text = table(results, per_image)
    print(text)
    if args.no_report:
        return 0
    best = max(results, key=lambda k: results[k].object_f1 + results[k].iou)
    figure = DOCS / f"field_overlays_{args.tag}.png"
    save_overlays(images, answers_of[best], figure)
    info = machine_info()
    begin, end = f"<!-- field-eval:{args.tag}:begin -->", f"<!-- field-eval:{args.tag}:end -->"
    section = "\n".join(
        [
            begin,
            f"## {args.tag}: {args.fields.name} ({len(images)} images, {sum(r['n_true'] for r in per_image[best])} "
            f"drawn fields, {gsd:g} m/px{f', coarsened {args.coarsen}x' if args.coarsen > 1 else ''})",
            "",
            f"Command: `.venv/bin/python -m evaluation.field_eval --fields {args.fields} --gsd {args.gsd} "
            f"--models {args.models} --coarsen {args.coarsen} --modes {args.modes}"
            + (f" --tta {args.tta}" if args.tta else "")
            + f" --tag {args.tag}`; machine: {info['cpu_model']}, {info['cores']} cores, "
            f"{info['date']}. Every image goes through the scene path (`segment_file`) as a GeoTIFF; answered fields are "
            "the 4-connected regions of the answered mask; objects match one-to-one at IoU > 0.5.",
            "",
            text,
            "",
            f"![overlays: hits green, false field red, missed field blue, answered outlines white]"
            f"({figure.name}) — `{best}`",
            "",
            "<details><summary>per image</summary>\n",
            "| variant | image | pixel IoU | object F1 | answered / drawn |",
            "|---|---|---|---|---|",
            *[
                f"| {name} | {r['image']} | {r['pixel_iou']:.3f} | {r['object_f1']:.3f} | {r['n_pred']} / {r['n_true']} |"
                for name, rows in per_image.items()
                for r in rows
            ],
            "\n</details>",
            end,
        ]
    )
    replace_section(REPORT, begin, end, section)
    write_text_atomic(
        DOCS / f"field_eval_{args.tag}.json",
        json.dumps({name: {"total": results[name].as_dict(), "images": per_image[name]} for name in results}, indent=1),
    )
    log.info("wrote %s and %s", REPORT, figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
