"""The release DEC and U-Net on tiles of another sensor: USDA NAIP aerial images with hand-drawn field polygons.

Each 1 m image is area-averaged to a ground resolution (10 m, as the models were trained; or finer), cut into
64 px windows, and each window is labelled by the share of it that lies in drawn fields: `field` at >= 80 %,
`other` at <= 5 % (the set's README: what is not drawn is forest, roads, farmsteads, water), the rest left out.
Reported: the share of field windows `/cluster` answers cropland (recall) and of other windows (false rate), and
the U-Net's ROC AUC of its mean probability, field against other. No model trained on these images.

    .venv/bin/python -m evaluation.aerial_tiles --naip ../shared/data/fields-naip-dev --models models --gsd 10 4
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score

from contract.errors import AgrilandError
from contract.manifest import read_manifest
from inference.models.onnx_model import OnnxModel
from training.field_polygons import read_via_fields
from training.field_targets import at_gsd

log = logging.getLogger(__name__)

TILE = 64
FIELD_MIN, OTHER_MAX = 0.8, 0.05


def windows(naip: Path, gsd_m: float) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, 64, 64, 3] windows at `gsd_m` and 1 for field / 0 for other (mixed windows left out)."""
    tiles, labels = [], []
    for image in read_via_fields(naip / "via_annotations.json", naip / "images", gsd_m=1.0):
        coarse = at_gsd(image, gsd_m).rgb
        field = Image.fromarray((image.instances > 0).astype(np.float32))
        share = np.asarray(field.resize((coarse.shape[1], coarse.shape[0]), Image.Resampling.BOX))
        for top in range(0, coarse.shape[0] - TILE + 1, TILE):
            for left in range(0, coarse.shape[1] - TILE + 1, TILE):
                covered = float(share[top : top + TILE, left : left + TILE].mean())
                if covered >= FIELD_MIN or covered <= OTHER_MAX:
                    tiles.append(coarse[top : top + TILE, left : left + TILE])
                    labels.append(int(covered >= FIELD_MIN))
    if not tiles:
        raise AgrilandError(f"no 64 px window of {naip} at {gsd_m} m is mostly field or mostly not")
    return np.stack(tiles), np.asarray(labels)


def scores(models: Path, tiles: np.ndarray, labels: np.ndarray) -> dict[str, float | int | None]:
    """DEC cropland recall / false rate and U-Net AUC on labelled windows."""
    dec = OnnxModel.load(models / "dec" / "fp32", providers="cpu")
    manifest = read_manifest(models / "dec" / "fp32")
    clusters = dec.session.run(["q"], {"image": tiles})[0].argmax(1)
    cropland = np.array([manifest.is_cropland_cluster(int(c)) for c in clusters])
    unet = OnnxModel.load(models / "unet" / "fp32", providers="cpu")
    probability = unet.session.run(["mask"], {"image": tiles})[0].reshape(len(tiles), -1).mean(1)
    both = len(set(labels)) == 2
    return {
        "field_windows": int(labels.sum()),
        "other_windows": int((labels == 0).sum()),
        "dec_cropland_recall": float(cropland[labels == 1].mean()) if labels.any() else None,
        "dec_false_cropland": float(cropland[labels == 0].mean()) if (labels == 0).any() else None,
        "unet_auc": float(roc_auc_score(labels, probability)) if both else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.aerial_tiles",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--naip", type=Path, required=True, help="folder with images/ and via_annotations.json")
    parser.add_argument("--models", type=Path, required=True, help="models folder (dec/fp32, unet/fp32)")
    parser.add_argument("--gsd", type=float, nargs="+", default=[10.0], help="ground resolutions in m (10)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        report = {f"{gsd:g} m": scores(args.models, *windows(args.naip, gsd)) for gsd in args.gsd}
    except AgrilandError as err:
        parser.exit(2, f"error: {err}\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
