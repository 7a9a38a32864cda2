"""Synthetic farmland scenes and tile sets with arable masks and land-cover labels (numpy + Pillow, seeded).

A scene is painted in layers: meadow background, a lattice of field parcels (crops at several growth
stages with row stripes, bare soil, harvested stubble, meadows), textured forest blobs, lakes and a river,
roads, settlements with building footprints, then haze, clouds with shadows, blur and sensor noise.

Arable pixels are the crop parcels, *including* bare-soil and harvested parcels (cropland in rotation is
arable whatever its current state); meadows, forest, water, roads and settlements are not. Clouds and haze
change the pixels but not the labels. The same seed always gives the same bytes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from training import synthetic_draw as sd

logger = logging.getLogger(__name__)

LANDCOVER_CLASSES: tuple[str, ...] = ("arable", "forest", "water", "urban", "grassland")  # index == code
ARABLE, FOREST, WATER, URBAN, GRASSLAND = range(5)


@dataclass(frozen=True)
class SceneConfig:
    """What a scene contains; lengths are in pixels. `None` fields are drawn at random per scene."""

    field_spacing: float | None = None  # parcel width (lattice pitch)
    meadow_share: float | None = None  # fraction of parcels that are meadow (grassland)
    forest_fraction: float | None = None
    lakes: int | None = None
    lake_radius: float | None = None  # largest lake radius
    rivers: int | None = None
    roads: int | None = None
    settlements: int | None = None
    haze: float | None = None  # max haze opacity, 0..1
    cloud_cover: float | None = None  # fraction of the scene under cloud
    noise_sigma: float = 3.0  # sensor noise, in uint8 levels

    def resolved(self, rng: np.random.Generator, height: int, width: int) -> SceneConfig:
        """Fill every `None` with a random draw suited to a scene of this size."""
        area = height * width / 512**2
        draws = {
            "field_spacing": rng.uniform(36, 80),
            "meadow_share": rng.uniform(0.08, 0.25),
            "forest_fraction": rng.uniform(0.06, 0.22),
            "lakes": int(rng.poisson(0.8 * area)),
            "lake_radius": rng.uniform(60, 110),
            "rivers": int(rng.random() < 0.5),
            "roads": int(rng.integers(1, 3) + rng.poisson(0.5 * area)),
            "settlements": int(rng.integers(0, 2) + rng.poisson(0.6 * area)),
            "haze": rng.uniform(0.0, 0.2),
            "cloud_cover": float(rng.choice([0.0, 0.0, rng.uniform(0.02, 0.1)])),
        }
        return replace(self, **{k: v for k, v in draws.items() if getattr(self, k) is None})


CLEAR_SKY = SceneConfig(haze=0.0, cloud_cover=0.0, noise_sigma=0.0)


@dataclass
class Scene:
    """One synthetic scene: RGB image, binary arable mask, per-pixel land-cover codes and its parcels."""

    image: np.ndarray  # (H, W, 3) uint8
    arable_mask: np.ndarray  # (H, W) uint8 in {0, 1}
    landcover: np.ndarray  # (H, W) uint8 codes into LANDCOVER_CLASSES
    parcels: list[sd.Parcel] = field(default_factory=list)  # field polygons in drawing order
    config: SceneConfig | None = None


def make_scene(height: int, width: int, seed: int = 0, config: SceneConfig | None = None) -> Scene:
    """Paint a synthetic farmland scene of any size; deterministic for a given seed and config."""
    if height < 8 or width < 8:
        raise ValueError(f"scene must be at least 8x8 pixels, got {height}x{width}")
    rng = np.random.default_rng(seed)
    cfg = (config or SceneConfig()).resolved(rng, height, width)
    h, w = height, width
    landcover = np.full((h, w), GRASSLAND, dtype=np.uint8)

    # Background meadow/verges, then field parcels.
    mottle = sd.value_noise(rng, h, w, cell=24, octaves=3)
    image = np.empty((h, w, 3), dtype=np.float32)
    image[:] = np.array([88, 120, 64], np.float32)
    image *= (0.82 + 0.36 * mottle)[..., None]
    parcels = sd.make_parcels(rng, h, w, cfg.field_spacing, cfg.meadow_share)
    ids = sd.rasterize_parcels(parcels, h, w)
    sd.paint_parcels(rng, parcels, ids, image)
    arable_lut = np.array([False] + [p.arable for p in parcels])
    landcover[arable_lut[ids]] = ARABLE
    fine = sd.value_noise(rng, h, w, cell=6, octaves=2)
    image *= (0.93 + 0.14 * fine)[..., None]  # within-field variability

    # Forest: thresholded fractal noise, crown texture from fine noise.
    if cfg.forest_fraction > 0:
        forest = sd.threshold_fraction(sd.value_noise(rng, h, w, cell=160, octaves=4), cfg.forest_fraction)
        crowns = sd.value_noise(rng, h, w, cell=3.5, octaves=2)
        shade = (0.55 + 0.9 * crowns[forest]) ** 1.5
        tint = np.array([34, 62, 30], np.float32) + rng.normal(0, 4, 3).astype(np.float32)
        image[forest] = tint * shade[:, None]
        landcover[forest] = FOREST

    # Water: wobbly lakes and meandering rivers.
    lakes = [
        sd.noisy_blob(rng, rng.uniform(0, w), rng.uniform(0, h), cfg.lake_radius * rng.uniform(0.3, 1.0))
        for _ in range(cfg.lakes)
    ]
    rivers = [(sd.meander(rng, h, w, wiggle=0.12), rng.uniform(6, 16)) for _ in range(cfg.rivers)]
    water = sd.draw_mask(h, w, polygons=lakes, lines=rivers)
    if water.any():
        depth = sd.value_noise(rng, h, w, cell=60)[water]
        image[water] = np.array([38, 62, 78], np.float32) + (depth * 24)[:, None] * np.array([0.4, 0.8, 1.0])
        landcover[water] = WATER

    # Roads: near-straight lines edge to edge.
    roads = [(sd.meander(rng, h, w, wiggle=0.03, step=20), rng.uniform(3, 6)) for _ in range(cfg.roads)]
    road_mask = sd.draw_mask(h, w, lines=roads)
    _paint_urban(rng, image, landcover, road_mask, (112, 110, 106))

    # Settlements: grey-beige ground, streets, roofs with shadows.
    for _ in range(cfg.settlements):
        radius = rng.uniform(35, 110)
        outline = sd.noisy_blob(rng, rng.uniform(0, w), rng.uniform(0, h), radius, roughness=0.35)
        area = sd.draw_mask(h, w, polygons=[outline])
        ground = (128, 124, 110) if rng.random() < 0.6 else (104, 120, 84)  # paved or gardens
        _paint_urban(rng, image, landcover, area, ground)
        roofs, shadows, streets = sd.draw_buildings(
            rng, area, h, w, spacing=rng.uniform(9, 15), density=rng.uniform(0.45, 0.9)
        )
        street_mask = sd.draw_mask(h, w, lines=streets) & area
        image[street_mask] = np.array([120, 118, 114], np.float32)
        image[shadows & area] *= 0.55
        has_roof = roofs > 0
        image[has_roof] = sd.ROOF_COLOURS[roofs[has_roof]]

    image = sd.add_atmosphere(rng, image, cfg.haze, cfg.cloud_cover)
    pixels = sd.add_sensor_noise(rng, image, cfg.noise_sigma)
    arable_mask = (landcover == ARABLE).astype(np.uint8)
    return Scene(image=pixels, arable_mask=arable_mask, landcover=landcover, parcels=parcels, config=cfg)


def _paint_urban(
    rng: np.random.Generator, image: np.ndarray, landcover: np.ndarray, mask: np.ndarray, colour: tuple
) -> None:
    if not mask.any():
        return
    image[mask] = np.asarray(colour, np.float32) * rng.uniform(0.92, 1.08, (int(mask.sum()), 1)).astype(np.float32)
    landcover[mask] = URBAN


@dataclass
class TileSet:
    """Tiles cut from synthetic scenes, stratified by dominant land-cover class."""

    images: np.ndarray  # (N, T, T, 3) uint8
    masks: np.ndarray  # (N, T, T) uint8 {0,1} arable
    labels: np.ndarray  # (N,) int64 dominant land-cover code


# Per-class scene themes used in turn so every class is common in some scenes.
_THEMES: dict[int, dict] = {
    ARABLE: {"meadow_share": 0.05, "forest_fraction": 0.05},
    FOREST: {"forest_fraction": 0.45},
    WATER: {"lakes": 5, "lake_radius": 150.0, "rivers": 2},
    URBAN: {"settlements": 5, "roads": 4},
    GRASSLAND: {"meadow_share": 0.7},
}


def make_tiles(n: int, tile_size: int, seed: int = 0, min_dominance: float = 0.5, max_scenes: int = 400) -> TileSet:
    """Cut `n` tiles from seeded scenes, about n/5 per dominant class (share >= `min_dominance`), shuffled."""
    if n < 1 or tile_size < 8:
        raise ValueError(f"need n >= 1 and tile_size >= 8, got n={n}, tile_size={tile_size}")
    rng = np.random.default_rng(seed)
    n_classes = len(LANDCOVER_CLASSES)
    quota = np.full(n_classes, n // n_classes) + (np.arange(n_classes) < n % n_classes)
    scene_size = max(512, 8 * tile_size)
    per_scene_cap = max(1, int(math.ceil(quota.max() / 3)))
    picked: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {c: [] for c in range(n_classes)}
    for index in range(max_scenes):
        missing = [c for c in range(n_classes) if len(picked[c]) < quota[c]]
        if not missing:
            break
        theme = missing[index % len(missing)]
        scene = make_scene(scene_size, scene_size, seed=int(rng.integers(2**31)), config=SceneConfig(**_THEMES[theme]))
        for c, y, x in _candidate_tiles(rng, scene.landcover, tile_size, min_dominance, per_scene_cap):
            if len(picked[c]) < quota[c]:
                picked[c].append(
                    (
                        scene.image[y : y + tile_size, x : x + tile_size],
                        scene.arable_mask[y : y + tile_size, x : x + tile_size],
                    )
                )
    else:
        short = {LANDCOVER_CLASSES[c]: int(quota[c] - len(picked[c])) for c in picked if len(picked[c]) < quota[c]}
        if short:
            raise RuntimeError(f"could not find enough tiles after {max_scenes} scenes: missing {short}")
    labels = np.concatenate([np.full(len(picked[c]), c, dtype=np.int64) for c in range(n_classes)])
    images = np.stack([img for c in range(n_classes) for img, _ in picked[c]])
    masks = np.stack([m for c in range(n_classes) for _, m in picked[c]])
    order = rng.permutation(len(labels))
    logger.info(
        "cut %d tiles of %d px: %s", n, tile_size, {LANDCOVER_CLASSES[c]: int(quota[c]) for c in range(n_classes)}
    )
    return TileSet(images=images[order], masks=masks[order], labels=labels[order])


def _candidate_tiles(
    rng: np.random.Generator, landcover: np.ndarray, tile: int, min_dominance: float, cap: int
) -> list[tuple[int, int, int]]:
    """Random tile positions (class, y, x), at most `cap` per dominant class, overlapping at most half a tile."""
    h, w = landcover.shape
    one_hot = landcover[None] == np.arange(len(LANDCOVER_CLASSES), dtype=np.uint8)[:, None, None]
    integral = np.zeros((one_hot.shape[0], h + 1, w + 1), dtype=np.int32)
    integral[:, 1:, 1:] = one_hot.cumsum(1, dtype=np.int32).cumsum(2, dtype=np.int32)
    k = 6 * (h // tile) * (w // tile)
    ys = rng.integers(0, h - tile + 1, k)
    xs = rng.integers(0, w - tile + 1, k)
    counts = (
        integral[:, ys + tile, xs + tile]
        - integral[:, ys, xs + tile]
        - integral[:, ys + tile, xs]
        + integral[:, ys, xs]
    )
    dominant = counts.argmax(0)
    share = counts.max(0) / (tile * tile)
    taken: list[tuple[int, int, int]] = []
    taken_yx = np.empty((len(LANDCOVER_CLASSES) * cap, 2), dtype=np.int64)
    per_class = np.zeros(len(LANDCOVER_CLASSES), dtype=int)
    for i in np.nonzero(share >= min_dominance)[0]:
        c = int(dominant[i])
        if per_class[c] >= cap:
            if per_class.min() >= cap:
                break
            continue
        y, x = int(ys[i]), int(xs[i])
        near = np.abs(taken_yx[: len(taken)] - (y, x)) < tile // 2
        if near.all(axis=1).any():
            continue
        taken_yx[len(taken)] = (y, x)
        taken.append((c, y, x))
        per_class[c] += 1
    return taken


def write_dataset(out_dir: Path | str, n_tiles: int, tile_size: int, seed: int = 0, **kwargs) -> Path:
    """Write a synthetic data set folder atomically (see `training.synthetic_io.write_dataset`)."""
    from training.synthetic_io import write_dataset as _write  # late import: synthetic_io imports this module

    return _write(out_dir, n_tiles, tile_size, seed=seed, **kwargs)
