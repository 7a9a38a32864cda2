"""A check by construction on real imagery: a uint16 scene assembled from held-out EuroSAT tiles, one land-cover
class per block, through the scene CLI path; reports the arable share of every class's blocks and draws it.

    .venv/bin/python -m evaluation.scene_check --eurosat ../shared/data/eurosat-rgb --models models

Tiles are taken from the end of each class folder's sorted list (the quickstart sample is a random draw, so a few
may overlap; the shipped sample's own file names are excluded). Writes docs/scene_check.md and docs/scene_check.png.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from agriland.profiles import SAMPLE_DIR
from contract.radiometry import DEFAULT_RADIOMETRY

ROOT = Path(__file__).resolve().parents[1]
CLASSES = (
    "AnnualCrop",
    "PermanentCrop",
    "Pasture",
    "HerbaceousVegetation",
    "Forest",
    "SeaLake",
    "River",
    "Residential",
    "Industrial",
    "Highway",
)
CROPLAND = {"AnnualCrop", "PermanentCrop"}


def held_out_tiles(eurosat: Path, per_class: int) -> dict[str, list[np.ndarray]]:
    tiles = {}
    for name in CLASSES:
        shipped = {p.name for p in (SAMPLE_DIR / name).glob("*")}
        files = [p for p in sorted((eurosat / name).glob("*")) if p.name not in shipped][-per_class:]
        tiles[name] = [np.asarray(Image.open(p).convert("RGB")) for p in files]
    return tiles


def assemble(tiles: dict[str, list[np.ndarray]], block_tiles: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two blocks of every class in a shuffled 5 x 4 grid; returns the RGB scene and the class index per pixel."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.repeat(np.arange(len(CLASSES)), 2))
    side = 64 * block_tiles
    image = np.zeros((4 * side, 5 * side, 3), np.uint8)
    label = np.zeros(image.shape[:2], np.int16)
    for k, cls in enumerate(order):
        r, c = divmod(k, 5)
        pool = tiles[CLASSES[cls]]
        for i in range(block_tiles):
            for j in range(block_tiles):
                y, x = r * side + 64 * i, c * side + 64 * j
                image[y : y + 64, x : x + 64] = pool[int(rng.integers(len(pool)))]
        label[r * side : (r + 1) * side, c * side : (c + 1) * side] = cls
    return image, label


def write_l2a_like(path: Path, image: np.ndarray) -> None:
    import rasterio
    from rasterio.transform import from_origin

    reflectance = image / 255.0 * DEFAULT_RADIOMETRY.reflectance_white * DEFAULT_RADIOMETRY.reflectance_scale
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=image.shape[1],
        height=image.shape[0],
        count=3,
        dtype="uint16",
        crs="EPSG:32632",
        transform=from_origin(600_000, 5_300_000, 10, 10),
    ) as dst:
        dst.write(np.moveaxis(np.rint(reflectance).astype(np.uint16), -1, 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eurosat", type=Path, required=True, help="EuroSAT-style class folders (held-out tiles)")
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--block-tiles", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import rasterio

    from agriland.cli import main as agriland

    image, label = assemble(held_out_tiles(args.eurosat, args.per_class), args.block_tiles, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        scene, out = Path(tmp) / "scene.tif", Path(tmp) / "out"
        write_l2a_like(scene, image)
        command = ["segment", str(scene), "--out", str(out), "--models", str(args.models), "--no-progress"]
        if agriland(command) != 0:
            return 1
        with rasterio.open(out / "mask.tif") as ds:
            mask = ds.read(1) == 1
        summary = json.loads((out / "summary.json").read_text())
    rows = [(name, float(mask[label == i].mean())) for i, name in enumerate(CLASSES)]
    crop = mask[np.isin(label, [CLASSES.index(c) for c in CROPLAND])].mean()
    other = mask[~np.isin(label, [CLASSES.index(c) for c in CROPLAND | {"Pasture", "HerbaceousVegetation"}])].mean()
    tinted = image.astype(np.float32)
    tinted[mask] = 0.45 * tinted[mask] + 0.55 * np.array([255, 0, 200])
    fig, axes = plt.subplots(1, 2, figsize=(14, 6), dpi=100)
    axes[0].imshow(image)
    axes[1].imshow(tinted.astype(np.uint8))
    side = 64 * args.block_tiles
    for k in range(20):
        r, c = divmod(k, 5)
        axes[0].text(c * side + 4, r * side + 14, CLASSES[label[r * side, c * side]], color="white", fontsize=7)
    for axis in axes:
        axis.axis("off")
    axes[1].set_title(f"arable (magenta): cropland blocks {crop:.0%}, non-vegetation blocks {other:.1%}")
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "scene_check.png")
    lines = [
        "# Scene check on real imagery (by construction)",
        "",
        "A uint16 Sentinel-2 L2A-like GeoTIFF (reflectance x 10000, 10 m, EPSG:32632) assembled from held-out "
        f"EuroSAT tiles: {len(CLASSES)} classes x 2 blocks of {args.block_tiles}x{args.block_tiles} tiles, run "
        "through `agriland segment` (windowed scene path, the manifest's radiometry contract). Truth is the block's "
        "class. Command:",
        "",
        f"    .venv/bin/python -m evaluation.scene_check --eurosat PATH --models {args.models.name}",
        "",
        f"Scene {image.shape[1]}x{image.shape[0]} px, {summary['n_polygons']} arable polygons, "
        f"{summary['arable_ha']:.0f} ha arable of {summary['valid_ha']:.0f} ha.",
        "",
        "| class | share of its blocks called arable |",
        "|---|---|",
        *[f"| {name}{' (cropland)' if name in CROPLAND else ''} | {share:.1%} |" for name, share in rows],
        "",
        f"Cropland blocks called arable: **{crop:.1%}**; forest, water, urban and road blocks: **{other:.1%}** "
        "(pasture and herbaceous vegetation are left out of both).",
        "",
        "![scene check](scene_check.png)",
        "",
    ]
    (args.out / "scene_check.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
