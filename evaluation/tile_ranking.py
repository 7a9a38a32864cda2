"""How well the /segment tile answers rank cropland above everything else on real EuroSAT tiles (ROC AUC), for the
U-Net's mean probability, the field model's answered field share (`arable_fraction` of the served default), and
the field share under a per-field veto by the U-Net.

    .venv/bin/python -m evaluation.tile_ranking --eurosat ../shared/data/eurosat-rgb --models models --per-class 150

Tiles are drawn per class with a fixed seed; the shipped sample's tiles (samples/eurosat-rgb, the models' training
tiles) are left out, so every scored tile is held out from the U-Net's training.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from sklearn.metrics import roc_auc_score

log = logging.getLogger("evaluation.tile_ranking")
CROPLAND = ("AnnualCrop", "PermanentCrop")
SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "eurosat-rgb"


def held_out_tiles(eurosat: Path, per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """uint8 [N, 64, 64, 3] tiles, 1 for cropland, and class names; none of the shipped sample's files."""
    rng = np.random.default_rng(seed)
    tiles, labels, classes = [], [], []
    for folder in sorted(p for p in eurosat.iterdir() if p.is_dir()):
        shipped = {p.name for p in (SAMPLE / folder.name).glob("*")}
        files = sorted(p for p in folder.glob("*.jpg") if p.name not in shipped)
        for path in (files[i] for i in sorted(rng.choice(len(files), min(per_class, len(files)), replace=False))):
            tiles.append(np.asarray(Image.open(path).convert("RGB")))
            labels.append(int(folder.name in CROPLAND))
            classes.append(folder.name)
    return np.stack(tiles), np.asarray(labels), classes


def main(argv: list[str] | None = None) -> int:
    from contract.artifacts import artifact_folder
    from inference.field_tiles import field_tiles, fields_of_tiles
    from inference.models.onnx_model import OnnxModel

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eurosat", type=Path, required=True)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--per-class", type=int, default=150)
    parser.add_argument(
        "--cuts",
        type=float,
        nargs="+",
        default=[0.05, 0.1, 0.2, 0.35],
        help="per-field veto cuts on the U-Net's mean probability to compare",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    tiles, truth, classes = held_out_tiles(args.eurosat, args.per_class)
    has_unet = (artifact_folder(args.models, "unet", "fp32") / "manifest.json").is_file()
    fields = OnnxModel.load(artifact_folder(args.models, "fields", "fp32"), providers="cpu")
    spec = fields.manifest.field_model
    probability = None
    if has_unet:
        unet = OnnxModel.load(artifact_folder(args.models, "unet", "fp32"), providers="cpu")
        probability = np.concatenate([unet.run(tiles[i : i + 64])["mask"][..., 0] for i in range(0, len(tiles), 64)])
    batch = field_tiles(list(tiles), 10.0, spec, fields.tile_size)
    planes = np.concatenate([fields.run(batch.batch[i : i + 32])["fields"] for i in range(0, len(batch.batch), 32)])
    from inference.field_model import field_planes

    answered = fields_of_tiles(
        field_planes(planes, spec.classes), batch, spec, [np.ones(t.shape[:2], bool) for t in tiles]
    )
    share = np.array([f.mask.mean() for f, _ in answered])
    extent = np.array([e.mean() for _, e in answered])
    rows = {
        "field model: answered field share (the served arable_fraction)": share,
        "field model: mean extent probability": extent,
    }
    if probability is not None:
        rows["U-Net mean probability"] = probability.reshape(len(tiles), -1).mean(1)
        for cut in args.cuts:
            vetoed = []
            for (found, _), p in zip(answered, probability):
                n = len(found.confidence)
                keep = np.asarray(ndimage.mean(p, found.labels, np.arange(1, n + 1))) >= cut if n else np.zeros(0, bool)
                vetoed.append(np.isin(found.labels, np.flatnonzero(keep) + 1).mean() if n else 0.0)
            rows[f"field share, fields with U-Net mean probability >= {cut:g}"] = np.asarray(vetoed)
    print(f"{len(tiles)} held-out EuroSAT tiles ({int(truth.sum())} cropland)")
    print("| score | ROC AUC cropland vs rest |\n|---|---|")
    for name, score in rows.items():
        print(f"| {name} | {roc_auc_score(truth, score):.3f} |")
    print("\n| class | field share answered (mean) |\n|---|---|")
    for name in sorted(set(classes)):
        pick = np.array([c == name for c in classes])
        print(f"| {name} | {share[pick].mean():.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
