"""Arable-mask training data from real labeled tiles: mosaics of EuroSAT-style class tiles, split by source tile.

No public arable-mask set is reachable offline, so masks are built honestly from real imagery: each mosaic is
cut into rectangles (one whole tile, halves, quarters or a random guillotine layout), each rectangle is filled
with a crop of a real tile of a random class, and the mask is 1 where that tile's class is cropland. Every
source tile belongs to exactly one split (train / val / test), so no test pixel was ever seen in training.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from contract.atomic import atomic_dir
from contract.errors import AgrilandError
from training.tile_io import image_files, open_image

log = logging.getLogger(__name__)

ARABLE_CLASSES: tuple[str, ...] = ("AnnualCrop", "PermanentCrop")
SPLITS: tuple[str, ...] = ("train", "val", "test")
LAYOUTS: tuple[str, ...] = ("single", "halves", "quarters", "guillotine")
PAIRS_FILE = "pairs.csv"


@dataclass(frozen=True)
class MosaicConfig:
    """How many mosaics of which size, the split shares (of source tiles), and the cropland share of cells."""

    size: int = 64
    n_mosaics: int = 3000
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    arable_share: float = 0.4  # probability that a cell is filled from a cropland class
    min_cell: int = 12  # smallest rectangle side of the guillotine layout, px
    seed: int = 0


def _class_tiles(folder: Path) -> dict[str, list[Path]]:
    if not folder.is_dir():
        raise AgrilandError(f"EuroSAT-style folder not found: {folder}")
    classes = {d.name: image_files(d) for d in sorted(folder.iterdir()) if d.is_dir()}
    classes = {name: files for name, files in classes.items() if files}
    if not classes:
        raise AgrilandError(f"{folder} has no class subfolders with images (expected e.g. AnnualCrop/*.jpg)")
    arable = [c for c in classes if c in ARABLE_CLASSES]
    if not arable or len(arable) == len(classes):
        raise AgrilandError(
            f"{folder} needs both cropland ({', '.join(ARABLE_CLASSES)}) and other class folders; "
            f"found {', '.join(classes)}"
        )
    return classes


def split_tiles(classes: dict[str, list[Path]], config: MosaicConfig) -> dict[str, dict[str, list[Path]]]:
    """split -> class -> source tiles; every tile in exactly one split (a seeded shuffle per class)."""
    rng = np.random.default_rng(config.seed)
    out: dict[str, dict[str, list[Path]]] = {s: {} for s in SPLITS}
    for name, files in classes.items():
        order = [files[i] for i in rng.permutation(len(files))]
        n_test = max(1, round(len(files) * config.test_fraction))
        n_val = max(1, round(len(files) * config.val_fraction))
        if len(files) - n_test - n_val < 1:
            raise AgrilandError(f"class {name} has only {len(files)} tile(s): too few to split train/val/test")
        out["test"][name], out["val"][name] = order[:n_test], order[n_test : n_test + n_val]
        out["train"][name] = order[n_test + n_val :]
    return out


def _cells(layout: str, size: int, rng: np.random.Generator, min_cell: int) -> list[tuple[int, int, int, int]]:
    """Rectangles (top, left, height, width) covering a size x size mosaic."""
    if layout == "single":
        return [(0, 0, size, size)]
    if layout == "halves":
        cut = int(rng.integers(size // 4, 3 * size // 4))
        if rng.random() < 0.5:
            return [(0, 0, cut, size), (cut, 0, size - cut, size)]
        return [(0, 0, size, cut), (0, cut, size, size - cut)]
    if layout == "quarters":
        r, c = int(rng.integers(size // 4, 3 * size // 4)), int(rng.integers(size // 4, 3 * size // 4))
        return [(0, 0, r, c), (0, c, r, size - c), (r, 0, size - r, c), (r, c, size - r, size - c)]
    cells, done = [(0, 0, size, size)], []
    while cells:
        top, left, h, w = cells.pop()
        can_h, can_w = h >= 2 * min_cell, w >= 2 * min_cell
        if (not can_h and not can_w) or (len(done) + len(cells) >= 5) or rng.random() < 0.25:
            done.append((top, left, h, w))
            continue
        if can_h and (not can_w or rng.random() < 0.5):
            cut = int(rng.integers(min_cell, h - min_cell + 1))
            cells += [(top, left, cut, w), (top + cut, left, h - cut, w)]
        else:
            cut = int(rng.integers(min_cell, w - min_cell + 1))
            cells += [(top, left, h, cut), (top, left + cut, h, w - cut)]
    return done


def _fill(tile: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A random h x w crop of a randomly flipped/turned tile (the tile is resized up if it is smaller)."""
    tile = np.rot90(tile, int(rng.integers(4)))
    if rng.random() < 0.5:
        tile = tile[:, ::-1]
    if tile.shape[0] < h or tile.shape[1] < w:
        side = max(h, w)
        tile = np.asarray(Image.fromarray(np.ascontiguousarray(tile)).resize((side, side), Image.BILINEAR))
    top = int(rng.integers(0, tile.shape[0] - h + 1))
    left = int(rng.integers(0, tile.shape[1] - w + 1))
    return tile[top : top + h, left : left + w]


def make_mosaic(
    tiles: dict[str, list[Path]], config: MosaicConfig, rng: np.random.Generator, cache: dict[Path, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, str]:
    """One (image uint8 [S,S,3], mask uint8 [S,S] {0,1}, layout) from the given split's tiles."""
    arable = [c for c in tiles if c in ARABLE_CLASSES]
    other = [c for c in tiles if c not in ARABLE_CLASSES]
    layout = LAYOUTS[int(rng.choice(len(LAYOUTS), p=[0.3, 0.2, 0.2, 0.3]))]
    image = np.zeros((config.size, config.size, 3), np.uint8)
    mask = np.zeros((config.size, config.size), np.uint8)
    for top, left, h, w in _cells(layout, config.size, rng, config.min_cell):
        is_arable = rng.random() < config.arable_share
        name = str(rng.choice(arable if is_arable else other))
        path = tiles[name][int(rng.integers(len(tiles[name])))]
        if path not in cache:
            cache[path] = np.asarray(open_image(path).convert("RGB"), np.uint8)  # native size
        image[top : top + h, left : left + w] = _fill(cache[path], h, w, rng)
        mask[top : top + h, left : left + w] = 1 if is_arable else 0
    return image, mask, layout


def build_mosaics(
    source: Path | str, out_dir: Path | str, config: MosaicConfig = MosaicConfig(), overwrite: bool = False
) -> Path:
    """Write `out_dir/{images,masks}/*.png` and `pairs.csv` (image, mask, split, layout); returns the CSV."""
    if (
        not 0 < config.test_fraction < 1
        or not 0 < config.val_fraction < 1
        or config.test_fraction + config.val_fraction >= 1
    ):
        raise AgrilandError(
            f"val ({config.val_fraction}) and test ({config.test_fraction}) fractions must be in "
            f"(0, 1) with a sum below 1"
        )
    classes = _class_tiles(Path(source))
    splits = split_tiles(classes, config)
    shares = {
        "train": 1.0 - config.val_fraction - config.test_fraction,
        "val": config.val_fraction,
        "test": config.test_fraction,
    }
    rng = np.random.default_rng(config.seed + 1)
    cache: dict[Path, np.ndarray] = {}
    rows: list[dict[str, str]] = []
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        (tmp / "images").mkdir()
        (tmp / "masks").mkdir()
        for split in SPLITS:
            count = max(1, round(config.n_mosaics * shares[split]))
            for i in tqdm(range(count), desc=f"mosaics ({split})", unit="mosaic", leave=False):
                image, mask, layout = make_mosaic(splits[split], config, rng, cache)
                name = f"{split}_{i:05d}.png"
                Image.fromarray(image).save(tmp / "images" / name)
                Image.fromarray(mask * 255).save(tmp / "masks" / name)
                rows.append({"image": f"images/{name}", "mask": f"masks/{name}", "split": split, "layout": layout})
        with open(tmp / PAIRS_FILE, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["image", "mask", "split", "layout"])
            writer.writeheader()
            writer.writerows(rows)
        sources = {s: sorted(str(p) for files in splits[s].values() for p in files) for s in SPLITS}
        (tmp / "splits.csv").write_text(
            "split,tile\n" + "".join(f"{s},{p}\n" for s in SPLITS for p in sources[s]), encoding="utf-8"
        )
    log.info(
        "mosaics: %d train / %d val / %d test (%d px) from %d source tiles -> %s",
        *(sum(r["split"] == s for r in rows) for s in SPLITS),
        config.size,
        sum(map(len, classes.values())),
        out_dir,
    )
    return Path(out_dir) / PAIRS_FILE
