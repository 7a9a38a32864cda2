"""Write synthetic data sets to disk (tiles, masks, pairs CSV, EuroSAT layout, scenes) and draw contact sheets."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from contract.atomic import atomic_dir, atomic_file
from training.synthetic import LANDCOVER_CLASSES, TileSet, make_scene, make_tiles

logger = logging.getLogger(__name__)


def write_dataset(
    out_dir: Path | str,
    n_tiles: int,
    tile_size: int,
    seed: int = 0,
    n_scenes: int = 2,
    scene_size: int = 1024,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic tile data set folder atomically and return its path.

    Layout: `images/tile_NNNNN.png`, `masks/tile_NNNNN.png` (0/255 arable), `pairs.csv` (image, mask, label:
    paths relative to the CSV, label = land-cover class name), `eurosat/<class>/tile_NNNNN.png`,
    `scenes/scene_NN.png` with `_mask.png` (0/255) and `_landcover.png` (class codes), `dataset.json`.
    """
    out_dir = Path(out_dir)
    tiles = make_tiles(n_tiles, tile_size, seed=seed)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        for sub in ("images", "masks", "scenes", *(f"eurosat/{name}" for name in LANDCOVER_CLASSES)):
            (tmp / sub).mkdir(parents=True)
        rows = []
        for i in tqdm(range(n_tiles), desc="writing tiles", unit="tile", disable=n_tiles < 200):
            name = f"tile_{i:05d}.png"
            label = LANDCOVER_CLASSES[int(tiles.labels[i])]
            image = Image.fromarray(tiles.images[i], mode="RGB")
            image.save(tmp / "images" / name)
            image.save(tmp / "eurosat" / label / name)
            Image.fromarray(tiles.masks[i] * 255, mode="L").save(tmp / "masks" / name)
            rows.append({"image": f"images/{name}", "mask": f"masks/{name}", "label": label})
        with open(tmp / "pairs.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["image", "mask", "label"])
            writer.writeheader()
            writer.writerows(rows)
        for s in range(n_scenes):
            scene = make_scene(scene_size, scene_size, seed=seed * 1000 + 7919 + s)
            Image.fromarray(scene.image, mode="RGB").save(tmp / "scenes" / f"scene_{s:02d}.png")
            Image.fromarray(scene.arable_mask * 255, mode="L").save(tmp / "scenes" / f"scene_{s:02d}_mask.png")
            Image.fromarray(scene.landcover, mode="L").save(tmp / "scenes" / f"scene_{s:02d}_landcover.png")
        summary = {
            "generator": "training.synthetic",
            "seed": seed,
            "tile_size": tile_size,
            "n_tiles": n_tiles,
            "classes": list(LANDCOVER_CLASSES),
            "tiles_per_class": {c: int((tiles.labels == i).sum()) for i, c in enumerate(LANDCOVER_CLASSES)},
            "arable_fraction": float(tiles.masks.mean()),
            "scenes": n_scenes,
            "scene_size": scene_size,
        }
        (tmp / "dataset.json").write_text(json.dumps(summary, indent=2) + "\n")
    logger.info("wrote %d tiles and %d scenes to %s", n_tiles, n_scenes, out_dir)
    return out_dir


def contact_sheet(tiles: TileSet, rows: int = 4, columns: int = 6, cell: int = 128) -> Image.Image:
    """A grid of tile pairs (image | arable overlay) with the dominant class under each pair."""
    count = min(rows * columns, len(tiles.labels))
    order = _stratified_order(tiles.labels, count)
    gap, caption = 6, 16
    sheet = Image.new("RGB", (columns * (2 * cell + 3 * gap), rows * (cell + caption + gap) + gap), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for slot, index in enumerate(order):
        r, c = divmod(slot, columns)
        x0, y0 = c * (2 * cell + 3 * gap) + gap, r * (cell + caption + gap) + gap
        image = Image.fromarray(tiles.images[index], mode="RGB").resize((cell, cell), Image.Resampling.NEAREST)
        mask = Image.fromarray(tiles.masks[index] * 255, mode="L").resize((cell, cell), Image.Resampling.NEAREST)
        tint = Image.new("RGB", (cell, cell), (255, 0, 200))
        overlay = Image.composite(Image.blend(image, tint, 0.45), image, mask)
        sheet.paste(image, (x0, y0))
        sheet.paste(overlay, (x0 + cell + gap, y0))
        label = LANDCOVER_CLASSES[int(tiles.labels[index])]
        share = float(tiles.masks[index].mean())
        draw.text((x0, y0 + cell + 2), f"{label}  (arable {share:.0%})", fill=(235, 235, 235))
    return sheet


def _stratified_order(labels: np.ndarray, count: int) -> list[int]:
    """Indices taking classes in turn (first tile of each class, then the second, ...)."""
    queues = [list(np.nonzero(labels == c)[0]) for c in range(len(LANDCOVER_CLASSES))]
    order: list[int] = []
    while len(order) < count and any(queues):
        for queue in queues:
            if queue and len(order) < count:
                order.append(int(queue.pop(0)))
    return order


def write_contact_sheet(path: Path | str, tile_size: int = 128, seed: int = 0) -> Path:
    """Cut a fresh stratified tile set and save its contact sheet PNG at `path` (written via a temp file)."""
    path = Path(path)
    tiles = make_tiles(30, tile_size, seed=seed)
    sheet = contact_sheet(tiles, cell=max(128, tile_size))
    with atomic_file(path) as tmp:
        sheet.save(tmp, format="PNG", optimize=True)
    return path
