"""Would a per-field veto by the EuroSAT U-Net help? Held-out field scores (cross-validation fold models of
evaluation.field_cv) when fields whose mean U-Net arable probability is under a cut are dropped, beside the EuroSAT
tile ranking (ROC AUC of the answered field share) under the same cuts.

    .venv/bin/python -m evaluation.field_veto --fields ../shared/data/fields-naip-dev --eurosat ../shared/data/eurosat-rgb \\
        --models models --work runs/field_cv --cuts 0 0.05 0.1 0.2 0.35
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path

import numpy as np
from scipy import ndimage

from evaluation.field_cv import answer, coarsened, folds_of
from evaluation.field_figures import write_geotiff
from training.field_metrics import FieldScores, score_fields

log = logging.getLogger("evaluation.field_veto")


def unet_probability(unet, image, work: Path) -> np.ndarray:
    """The U-Net's blended arable probability of one image through the scene path (its own radiometry and GSD)."""
    import rasterio

    from inference.models.onnx_model import predictor
    from inference.scenes.segment import SceneRequest, segment_file

    scene = work / "scene.tif"
    write_geotiff(scene, image.rgb, image.gsd_m)
    # the probability only: no sieve, threshold mode (the cut does not change the probability raster)
    request = SceneRequest(mask_mode="threshold", threshold=0.5, sieve_px=0)
    segment_file(
        scene,
        predictor(unet),
        request.resolve(unet.manifest, 8),
        outputs={"probability": work / "p.tif"},
        vectorise=False,
    )
    with rasterio.open(work / "p.tif") as ds:
        return np.nan_to_num(ds.read(1), nan=0.0)


def vetoed(labels: np.ndarray, probability: np.ndarray, cut: float) -> np.ndarray:
    """Field labels with the fields whose mean probability is under `cut` removed."""
    n = int(labels.max())
    if n == 0 or cut <= 0:
        return labels
    means = np.asarray(ndimage.mean(probability, labels, np.arange(1, n + 1)))
    keep = np.concatenate([[False], means >= cut])
    return np.where(keep[labels], labels, 0)


def main(argv: list[str] | None = None) -> int:
    from contract.artifacts import artifact_folder
    from inference.models.onnx_model import OnnxModel
    from training.field_polygons import read_fields

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fields", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=Path("models"), help="holds unet/fp32 (the EuroSAT U-Net)")
    parser.add_argument("--work", type=Path, default=Path("runs/field_cv"), help="evaluation.field_cv's work folder")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--coarsen", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--cuts", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2, 0.35])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    via = next(iter(sorted(args.fields.glob("*.json"))))
    images = read_fields(via, args.fields / "images", 1.0)
    unet = OnnxModel.load(artifact_folder(args.models, "unet", "fp32"), providers="cpu")
    totals = {(f, c): FieldScores() for f in args.coarsen for c in args.cuts}
    with tempfile.TemporaryDirectory() as tmp:
        for k, fold in enumerate(folds_of([im.name for im in images], args.folds)):
            folder = artifact_folder(args.work / f"models-fold{k}-seed{args.seed}", "fields", "fp32")
            if not (folder / "manifest.json").is_file():
                log.warning("%s missing: fold %d left out", folder, k)
                continue
            model = OnnxModel.load(folder, providers="cpu")
            for i in fold:
                for factor in args.coarsen:
                    view = coarsened(images[i], factor)
                    labels = answer(model, view, Path(tmp))
                    probability = unet_probability(unet, view, Path(tmp))
                    for cut in args.cuts:
                        totals[(factor, cut)] = totals[(factor, cut)] + score_fields(
                            vetoed(labels, probability, cut), view.instances
                        )
    print("| images as | veto: U-Net mean probability >= | pixel IoU | recall | object F1 |\n|---|---|---|---|---|")
    for (factor, cut), s in totals.items():
        print(f"| {factor:g} m | {cut:g} | {s.iou:.3f} | {s.recall:.3f} | {s.object_f1:.3f} |")
    print(json.dumps({f"{f}x@{c}": s.as_dict() for (f, c), s in totals.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
