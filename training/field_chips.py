"""Training chips for the field model: random crops of field images at random ground resolutions (area-averaged
1-10 m, so the model sees Sentinel-2-like blur as well as aerial detail), geometric and photometric augmentation,
and mosaics of real tiles that are certainly not fields (forest, water, towns, roads) as all-background chips."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from contract.errors import AgrilandError
from training.field_polygons import FieldImage
from training.field_targets import BACKGROUND, IGNORE, at_gsd, targets_of

log = logging.getLogger(__name__)

# EuroSAT classes that are never fields (Pasture and HerbaceousVegetation can be: grazed or fallow paddocks).
NOT_FIELD_CLASSES: tuple[str, ...] = ("Forest", "River", "SeaLake", "Residential", "Industrial", "Highway")
NEGATIVE_GSD_M = 10.0


@dataclass(frozen=True)
class ChipConfig:
    """How chips are drawn: size, the ground resolutions sampled, the share of negative mosaics, augmentation."""

    tile: int = 128
    gsd_levels_m: tuple[float, ...] = (2.0, 2.5, 3.2, 4.0, 5.0, 6.4, 8.0, 10.0)
    negative_share: float = 0.15
    photometric: bool = True


def load_negative_tiles(folder: Path | str, per_class: int | None = None, seed: int = 0) -> np.ndarray:
    """uint8 [N, h, w, 3] tiles of the not-field classes of a EuroSAT-layout folder (class sub-folders)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AgrilandError(f"negative tile folder not found: {folder}")
    rng = np.random.default_rng(seed)
    tiles: list[np.ndarray] = []
    for name in NOT_FIELD_CLASSES:
        files = sorted(p for p in (folder / name).glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".tif"))
        if per_class is not None and len(files) > per_class:
            files = [files[i] for i in sorted(rng.choice(len(files), per_class, replace=False))]
        tiles += [np.asarray(Image.open(p).convert("RGB")) for p in files]
    if not tiles:
        raise AgrilandError(f"{folder} has none of the not-field classes ({', '.join(NOT_FIELD_CLASSES)})")
    sizes = {t.shape for t in tiles}
    if len(sizes) != 1:
        tiles = [np.asarray(Image.fromarray(t).resize((64, 64), Image.Resampling.BOX)) for t in tiles]
    return np.stack(tiles)


class ChipSampler:
    """Draws (image, target) chips; `pyramid` holds every image at every ground resolution of the config."""

    def __init__(
        self, images: list[FieldImage], negatives: np.ndarray | None, config: ChipConfig, seed: int = 0
    ) -> None:
        if not images:
            raise AgrilandError("no field images to train on")
        self.config = config
        self.negatives = negatives
        self.rng = np.random.default_rng(seed)
        self.pyramid: list[list[tuple[np.ndarray, np.ndarray]]] = []
        for image in images:
            levels = []
            for gsd in config.gsd_levels_m:
                if gsd < image.gsd_m * 0.999:
                    continue  # never invent detail finer than the image
                small = at_gsd(image, gsd)
                levels.append((small.rgb, targets_of(small.instances)))
            if not levels:
                small = image
                levels.append((small.rgb, targets_of(small.instances)))
            self.pyramid.append(levels)

    def _crop(self, rgb: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = self.config.tile
        h, w = target.shape
        chip = np.zeros((t, t, 3), np.uint8)
        label = np.full((t, t), IGNORE, np.uint8)
        y = int(self.rng.integers(0, h - t + 1)) if h > t else 0
        x = int(self.rng.integers(0, w - t + 1)) if w > t else 0
        ch, cw = min(t, h), min(t, w)
        oy = int(self.rng.integers(0, t - ch + 1)) if ch < t else 0
        ox = int(self.rng.integers(0, t - cw + 1)) if cw < t else 0
        chip[oy : oy + ch, ox : ox + cw] = rgb[y : y + ch, x : x + cw]
        label[oy : oy + ch, ox : ox + cw] = target[y : y + ch, x : x + cw]
        return chip, label

    def _negative(self) -> tuple[np.ndarray, np.ndarray]:
        """A mosaic of not-field tiles at their 10 m, resampled to a random chip resolution (background everywhere)."""
        t = self.config.tile
        n = self.negatives
        side = n.shape[1]
        gsd = float(self.rng.choice(self.config.gsd_levels_m))
        ground = t * gsd  # metres the chip covers
        k = max(1, int(np.ceil(ground / (side * NEGATIVE_GSD_M))))
        rows = [np.concatenate([n[self.rng.integers(len(n))] for _ in range(k)], 1) for _ in range(k)]
        mosaic = np.concatenate(rows, 0)
        px = max(1, round(ground / NEGATIVE_GSD_M))
        mosaic = mosaic[:px, :px]
        chip = np.asarray(Image.fromarray(mosaic).resize((t, t), Image.Resampling.BILINEAR))
        return chip, np.full((t, t), BACKGROUND, np.uint8)

    def _augment(self, chip: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rng = self.rng
        turns = int(rng.integers(4))
        chip, label = np.rot90(chip, turns), np.rot90(label, turns)
        if rng.random() < 0.5:
            chip, label = chip[:, ::-1], label[:, ::-1]
        if not self.config.photometric:
            return np.ascontiguousarray(chip), np.ascontiguousarray(label)
        x = chip.astype(np.float32) / 255.0
        if rng.random() < 0.3:  # a softer sensor or haze
            x = ndimage.gaussian_filter(x, (rng.uniform(0.3, 1.2),) * 2 + (0,))
        gain = rng.uniform(0.8, 1.2, size=3)  # per band
        contrast = rng.uniform(0.6, 1.5)
        brightness = rng.uniform(-0.12, 0.12)
        mean = x.mean()
        x = (x * gain - mean) * contrast + mean + brightness
        grey = x.mean(-1, keepdims=True)
        x = grey + (x - grey) * rng.uniform(0.5, 1.5)
        x = np.clip(x, 0, 1) ** np.exp(rng.uniform(-0.35, 0.35, size=3))  # per-band gamma
        if rng.random() < 0.3:
            x = x + rng.normal(0, rng.uniform(0.005, 0.03), x.shape)
        chip = np.clip(np.round(x * 255), 0, 255).astype(np.uint8)
        return chip, np.ascontiguousarray(label)

    def sample(self, n: int, augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [n, T, T, 3] chips and uint8 [n, T, T] targets (0/1/2, 255 = padding)."""
        t = self.config.tile
        x = np.empty((n, t, t, 3), np.uint8)
        y = np.empty((n, t, t), np.uint8)
        for i in range(n):
            if self.negatives is not None and len(self.negatives) and self.rng.random() < self.config.negative_share:
                chip, label = self._negative()
            else:
                levels = self.pyramid[int(self.rng.integers(len(self.pyramid)))]
                chip, label = self._crop(*levels[int(self.rng.integers(len(levels)))])
            if augment:
                chip, label = self._augment(chip, label)
            x[i], y[i] = chip, label
        return x, y
