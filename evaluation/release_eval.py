"""Held-out quality of exported clustering and segmentation models on class-folder tiles (EuroSAT layout).

What the release model cards report and what `agriland release build` compares before it replaces a shipped model:
- clustering (/cluster): cropland recall (AnnualCrop + PermanentCrop tiles in clusters named cropland), the false
  cropland rate on the classes that are not vegetation, FAO arable recall (AnnualCrop in arable-named clusters), NMI;
- segmentation (/segment): ROC AUC of the mean arable probability, cropland against the rest, and the mean arable
  fraction per class.
Pasture and HerbaceousVegetation are vegetation but not cropland: left out of the false rates and of the AUC, as
the development tools do. ONNX Runtime on the exported artifacts; no TensorFlow.

    .venv/bin/python -m evaluation.release_eval --models models --tiles runs/release/eurosat/heldout
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.metrics import normalized_mutual_info_score, roc_auc_score
from tqdm import tqdm

from contract.errors import AgrilandError
from inference.models.onnx_model import OnnxModel

log = logging.getLogger(__name__)

CROPLAND = ("AnnualCrop", "PermanentCrop")
VEGETATION = ("Pasture", "HerbaceousVegetation")  # not cropland, yet not scored as a false answer either
BATCH = 64


def load_class_tiles(folder: Path, tile_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, T, T, 3] tiles of every `<folder>/<Class>/*` image and their class names."""
    if not folder.is_dir():
        raise AgrilandError(f"tile folder not found: {folder}")
    tiles, classes = [], []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for path in sorted(class_dir.iterdir()):
            with Image.open(path) as image:
                rgb = image.convert("RGB")
                if rgb.size != (tile_size, tile_size):
                    rgb = rgb.resize((tile_size, tile_size), Image.BILINEAR)
                tiles.append(np.asarray(rgb))
            classes.append(class_dir.name)
    if not tiles:
        raise AgrilandError(f"no tiles in the class folders of {folder}")
    return np.stack(tiles), np.asarray(classes)


def _run(model: OnnxModel, tiles: np.ndarray, output: str) -> np.ndarray:
    name = model.session.get_inputs()[0].name
    parts = [
        model.session.run([output], {name: tiles[i : i + BATCH]})[0]
        for i in tqdm(range(0, len(tiles), BATCH), desc=f"{model.manifest.name} on held-out tiles", leave=False)
    ]
    return np.concatenate(parts)


def _share(hits: np.ndarray) -> float | None:
    """The share of True in `hits`, or None where no tile of that kind was scored."""
    return float(hits.mean()) if hits.size else None


def clustering_scores(folder: Path, tiles: np.ndarray, classes: np.ndarray) -> dict[str, float | int | None]:
    """Cropland recall / false-cropland rate / FAO arable recall / false-arable rate / NMI of a DEC artifact."""
    model = OnnxModel.load(folder, providers="cpu")
    clusters = _run(model, tiles, "q").argmax(axis=1)
    manifest = model.manifest
    cropland = np.array([manifest.is_cropland_cluster(int(c)) for c in clusters])
    arable = np.array([manifest.is_arable_cluster(int(c)) for c in clusters])
    is_crop = np.isin(classes, CROPLAND)
    scored_other = ~is_crop & ~np.isin(classes, VEGETATION)
    return {
        "tiles": int(len(tiles)),
        "clusters": int(manifest.n_clusters or 0),
        "cropland_recall": _share(cropland[is_crop]),
        "false_cropland": _share(cropland[scored_other]),
        "arable_recall_annual_crop": _share(arable[classes == "AnnualCrop"]),
        "false_arable": _share(arable[scored_other]),
        "nmi": float(normalized_mutual_info_score(classes, clusters)),
    }


def segmentation_scores(folder: Path, tiles: np.ndarray, classes: np.ndarray) -> dict[str, object]:
    """ROC AUC of the mean arable probability (cropland vs the rest, vegetation left out), fraction per class."""
    model = OnnxModel.load(folder, providers="cpu")
    probability = _run(model, tiles, "mask").reshape(len(tiles), -1)
    scored = ~np.isin(classes, VEGETATION)
    if len(set(np.isin(classes, CROPLAND)[scored])) < 2:
        raise AgrilandError(
            f"the AUC needs cropland ({', '.join(CROPLAND)}) and other tiles; got {sorted(set(classes))}"
        )
    fraction = (probability > model.manifest.threshold).mean(axis=1)
    return {
        "tiles": int(len(tiles)),
        "auc": float(roc_auc_score(np.isin(classes, CROPLAND)[scored], probability.mean(axis=1)[scored])),
        "arable_fraction": {str(c): round(float(fraction[classes == c].mean()), 3) for c in sorted(set(classes))},
    }


def score_models(models: Path, tiles_dir: Path, names: list[str] | None = None) -> dict[str, dict]:
    """Scores of `models/dec/fp32` and `models/unet/fp32` (those present, of `names` if given) on the tiles of
    `tiles_dir`."""
    tiles, classes = load_class_tiles(tiles_dir)
    scores: dict[str, dict] = {}
    for name, score in (("dec", clustering_scores), ("unet", segmentation_scores)):
        folder = models / name / "fp32"
        if (names is None or name in names) and (folder / "manifest.json").is_file():
            scores[name] = score(folder, tiles, classes)
            log.info("%s (%s): %s", name, folder, scores[name])
    return scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.release_eval",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--models", type=Path, required=True, help="models folder (dec/fp32, unet/fp32)")
    parser.add_argument("--tiles", type=Path, required=True, help="class folders of held-out RGB tiles")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        print(json.dumps(score_models(args.models, args.tiles), indent=2))
    except AgrilandError as err:
        parser.exit(2, f"error: {err}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
