"""Drawing primitives for synthetic scenes: value noise, parcels, blobs, rivers, roads, buildings, atmosphere."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# Field kinds drawn inside parcels. Every kind but "meadow" is arable (cropland in rotation).
FIELD_KINDS: tuple[str, ...] = ("young", "growing", "mature", "ripe", "bare", "harvested", "meadow")
ARABLE_KINDS: frozenset[str] = frozenset(FIELD_KINDS) - {"meadow"}

# Mean colour (RGB 0-255), colour jitter, stripe amplitude (fraction of brightness) per field kind.
_FIELD_STYLE: dict[str, tuple[tuple[float, float, float], float, float]] = {
    "young": ((128, 128, 78), 14.0, 0.22),
    "growing": ((92, 132, 58), 14.0, 0.12),
    "mature": ((56, 104, 40), 12.0, 0.06),
    "ripe": ((196, 172, 96), 16.0, 0.08),
    "bare": ((136, 104, 76), 16.0, 0.10),
    "harvested": ((204, 188, 132), 14.0, 0.18),
    "meadow": ((98, 136, 66), 12.0, 0.0),
}


@dataclass(frozen=True)
class Parcel:
    """One field parcel: its polygon (x, y vertices in pixels) and its kind (see FIELD_KINDS)."""

    polygon: tuple[tuple[float, float], ...]
    kind: str

    @property
    def arable(self) -> bool:
        return self.kind in ARABLE_KINDS


def value_noise(rng: np.random.Generator, height: int, width: int, cell: float, octaves: int = 1) -> np.ndarray:
    """Smooth noise in [0, 1] (float32, HxW): bicubic-upsampled random grids, `octaves` halving the cell."""
    total = np.zeros((height, width), dtype=np.float32)
    weight_sum = 0.0
    for octave in range(octaves):
        size = max(cell / (2**octave), 1.0)
        grid_h, grid_w = int(math.ceil(height / size)) + 3, int(math.ceil(width / size)) + 3
        grid = rng.random((grid_h, grid_w), dtype=np.float32)
        up = Image.fromarray(grid, mode="F").resize(
            (int(round(grid_w * size)), int(round(grid_h * size))), Image.Resampling.BICUBIC
        )
        off_y, off_x = int(size), int(size)
        layer = np.asarray(up, dtype=np.float32)[off_y : off_y + height, off_x : off_x + width]
        weight = 0.5**octave
        total += weight * layer
        weight_sum += weight
    total /= weight_sum
    low, high = float(total.min()), float(total.max())
    return (total - low) / max(high - low, 1e-6)


def threshold_fraction(field: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the `fraction` of pixels where `field` is highest."""
    if fraction <= 0:
        return np.zeros(field.shape, dtype=bool)
    return field >= np.quantile(field, 1.0 - min(fraction, 1.0))


def make_parcels(
    rng: np.random.Generator, height: int, width: int, spacing: float, meadow_share: float
) -> list[Parcel]:
    """A jittered, rotated lattice of quadrilateral parcels (some split in two) covering the scene."""
    angle = rng.uniform(-0.6, 0.6)
    cos_a, sin_a = math.cos(angle), math.sin(angle)
    half_diag = 0.5 * math.hypot(height, width) + 2 * spacing
    n = int(math.ceil(2 * half_diag / spacing)) + 1
    aspect = rng.uniform(1.0, 2.2)  # parcels are longer than wide along the lattice's u axis
    us = (np.arange(n) - n / 2) * spacing * aspect
    vs = (np.arange(n) - n / 2) * spacing
    jitter = rng.uniform(-0.22, 0.22, size=(n, n, 2)) * np.array([spacing * aspect, spacing])
    uu, vv = np.meshgrid(us, vs, indexing="ij")
    pu, pv = uu + jitter[..., 0], vv + jitter[..., 1]
    px = width / 2 + pu * cos_a - pv * sin_a
    py = height / 2 + pu * sin_a + pv * cos_a
    kinds = [k for k in FIELD_KINDS if k != "meadow"]
    crop_probs = np.array([0.16, 0.2, 0.2, 0.16, 0.14, 0.14])
    parcels: list[Parcel] = []
    for i in range(n - 1):
        for j in range(n - 1):
            quad = [
                (px[i, j], py[i, j]),
                (px[i + 1, j], py[i + 1, j]),
                (px[i + 1, j + 1], py[i + 1, j + 1]),
                (px[i, j + 1], py[i, j + 1]),
            ]
            xs = [p[0] for p in quad]
            ys = [p[1] for p in quad]
            if max(xs) < 0 or min(xs) > width or max(ys) < 0 or min(ys) > height:
                continue
            pieces = [quad]
            if rng.random() < 0.3:  # split along the long side into two strips
                t = rng.uniform(0.35, 0.65)
                a = _lerp(quad[0], quad[1], t)
                b = _lerp(quad[3], quad[2], t)
                pieces = [[quad[0], a, b, quad[3]], [a, quad[1], quad[2], b]]
            for piece in pieces:
                kind = "meadow" if rng.random() < meadow_share else str(rng.choice(kinds, p=crop_probs))
                parcels.append(Parcel(tuple(_shrink(piece, rng.uniform(1.0, 2.5))), kind))
    return parcels


def _lerp(a: tuple[float, float], b: tuple[float, float], t: float) -> tuple[float, float]:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


def _shrink(points: list[tuple[float, float]], margin: float) -> list[tuple[float, float]]:
    """Move each vertex `margin` pixels toward the centroid: leaves hedges/tracks between parcels."""
    cx = sum(p[0] for p in points) / len(points)
    cy = sum(p[1] for p in points) / len(points)
    out = []
    for x, y in points:
        d = math.hypot(x - cx, y - cy)
        f = max(d - margin, 0.0) / d if d > 0 else 0.0
        out.append((round(cx + (x - cx) * f, 2), round(cy + (y - cy) * f, 2)))
    return out


def rasterize_parcels(parcels: list[Parcel], height: int, width: int) -> np.ndarray:
    """int32 HxW raster of parcel index + 1 (0 = between parcels), drawn with PIL in list order."""
    canvas = Image.new("I", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for index, parcel in enumerate(parcels):
        draw.polygon(parcel.polygon, fill=index + 1)
    return np.asarray(canvas, dtype=np.int32)


def paint_parcels(rng: np.random.Generator, parcels: list[Parcel], ids: np.ndarray, image: np.ndarray) -> None:
    """Colour parcel pixels in place: per-parcel colour jitter, row stripes at a per-parcel angle and pitch."""
    n = len(parcels) + 1
    colours = np.zeros((n, 3), dtype=np.float32)
    amps = np.zeros(n, dtype=np.float32)
    for index, parcel in enumerate(parcels, start=1):
        mean, jitter, amp = _FIELD_STYLE[parcel.kind]
        colours[index] = np.asarray(mean) + rng.normal(0, jitter / 3, 3) + rng.normal(0, jitter)
        amps[index] = amp * rng.uniform(0.7, 1.3)
    angles = rng.uniform(0, math.pi, n).astype(np.float32)
    pitch = rng.uniform(2.2, 4.5, n).astype(np.float32)
    inside = ids > 0
    yy, xx = np.nonzero(inside)
    pid = ids[inside]
    phase = (xx * np.cos(angles[pid]) + yy * np.sin(angles[pid])) / pitch[pid]
    stripes = 1.0 + amps[pid] * np.sin(2 * np.pi * phase).astype(np.float32)
    image[inside] = colours[pid] * stripes[:, None]


def noisy_blob(
    rng: np.random.Generator, cx: float, cy: float, radius: float, roughness: float = 0.25, n: int = 48
) -> list[tuple[float, float]]:
    """A closed, wobbly polygon around (cx, cy): radius modulated by a few random harmonics."""
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for harmonic in range(2, 6):
        r += roughness / harmonic * rng.normal() * np.cos(harmonic * theta + rng.uniform(0, 2 * np.pi))
    r = radius * np.clip(r, 0.35, None)
    return [(float(cx + rr * math.cos(t)), float(cy + rr * math.sin(t))) for rr, t in zip(r, theta)]


def meander(
    rng: np.random.Generator, height: int, width: int, wiggle: float, step: float = 12.0
) -> list[tuple[float, float]]:
    """A polyline crossing the scene edge to edge with a smoothly drifting heading."""
    if rng.random() < 0.5:
        start, heading = (rng.uniform(0, width), -step), math.pi / 2
    else:
        start, heading = (-step, rng.uniform(0, height)), 0.0
    heading += rng.uniform(-0.4, 0.4)
    base = heading
    x, y = start
    points = [(x, y)]
    turn = 0.0
    for _ in range(int(4 * (height + width) / step)):
        turn = 0.85 * turn + rng.normal(0, wiggle)
        heading = base + 0.8 * math.tanh((heading + turn - base) / 0.8)
        x, y = x + step * math.cos(heading), y + step * math.sin(heading)
        points.append((x, y))
        if not (-2 * step <= x <= width + 2 * step and -2 * step <= y <= height + 2 * step):
            break
    return points


def draw_mask(height: int, width: int, polygons=(), lines=()) -> np.ndarray:
    """Boolean HxW mask of filled polygons and (points, width) polylines, drawn with PIL."""
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for polygon in polygons:
        draw.polygon(polygon, fill=1)
    for points, line_width in lines:
        draw.line(points, fill=1, width=int(line_width), joint="curve")
    return np.asarray(canvas, dtype=bool)


def draw_buildings(
    rng: np.random.Generator, area: np.ndarray, height: int, width: int, spacing: float, density: float = 0.8
) -> tuple[np.ndarray, np.ndarray, list[tuple[list[tuple[float, float]], int]]]:
    """Building footprints on a rotated street grid inside `area`.

    Returns (roof colour index HxW uint8, 0 = none; shadow mask; street polylines with widths).
    """
    ys, xs = np.nonzero(area)
    roofs = Image.new("L", (width, height), 0)
    shadows = Image.new("L", (width, height), 0)
    draw_roof, draw_shadow = ImageDraw.Draw(roofs), ImageDraw.Draw(shadows)
    if len(xs) == 0:
        return np.asarray(roofs), np.zeros((height, width), bool), []
    angle = rng.uniform(0, math.pi / 2)
    ca, sa = math.cos(angle), math.sin(angle)
    cx, cy = float(xs.mean()), float(ys.mean())
    extent = math.hypot(xs.max() - xs.min(), ys.max() - ys.min()) / 2 + spacing
    streets = []
    block = spacing * 2
    k = int(extent / block) + 1
    for i in range(-k, k + 1):  # streets every two building rows, both directions
        off = i * block + spacing / 2
        for (ux, uy), (vx, vy) in (((ca, sa), (-sa, ca)), ((-sa, ca), (ca, sa))):
            p0 = (cx + off * vx - extent * ux, cy + off * vy - extent * uy)
            p1 = (cx + off * vx + extent * ux, cy + off * vy + extent * uy)
            streets.append(([p0, p1], 2))
    shadow_dx, shadow_dy = 1.5, 1.5
    for i in range(-2 * k, 2 * k + 1):
        for j in range(-2 * k, 2 * k + 1):
            if rng.random() > density:
                continue
            u, v = i * spacing + rng.normal(0, 0.6), j * spacing + rng.normal(0, 0.6)
            bx, by = cx + u * ca - v * sa, cy + u * sa + v * ca
            ix, iy = int(round(bx)), int(round(by))
            if not (0 <= ix < width and 0 <= iy < height and area[iy, ix]):
                continue
            half_u = spacing * rng.uniform(0.22, 0.4)
            half_v = spacing * rng.uniform(0.18, 0.32)
            corners = [
                (bx + su * half_u * ca - sv * half_v * sa, by + su * half_u * sa + sv * half_v * ca)
                for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1))
            ]
            draw_shadow.polygon([(x + shadow_dx, y + shadow_dy) for x, y in corners], fill=1)
            draw_roof.polygon(corners, fill=int(rng.integers(1, len(ROOF_COLOURS))))
    return np.asarray(roofs, dtype=np.uint8), np.asarray(shadows, dtype=bool), streets


ROOF_COLOURS = np.array(
    [(0, 0, 0), (168, 84, 62), (182, 102, 76), (150, 150, 152), (205, 203, 196), (120, 112, 108), (140, 70, 56)],
    dtype=np.float32,
)


def add_atmosphere(rng: np.random.Generator, image: np.ndarray, haze: float, cloud_cover: float) -> np.ndarray:
    """Blend in low-frequency haze and soft cloud patches with offset shadows (float32 HxWx3 in/out)."""
    height, width = image.shape[:2]
    if haze > 0:
        alpha = haze * value_noise(rng, height, width, cell=max(height, width) / 3)
        image = image * (1 - alpha[..., None]) + np.float32(205) * alpha[..., None]
    if cloud_cover > 0:
        field = value_noise(rng, height, width, cell=max(40.0, min(height, width) / 5), octaves=4)
        cut = np.quantile(field, 1.0 - cloud_cover)
        alpha = np.clip((field - cut) / 0.08, 0.0, 1.0) * 0.92
        shift = max(3, int(0.02 * max(height, width)))
        shadow = np.zeros_like(alpha)
        shadow[shift:, shift:] = alpha[:-shift, :-shift]
        image = image * (1 - 0.45 * shadow[..., None])
        image = image * (1 - alpha[..., None]) + np.float32(238) * alpha[..., None]
    return image


def add_sensor_noise(rng: np.random.Generator, image: np.ndarray, sigma: float) -> np.ndarray:
    """Slight optical blur plus Gaussian sensor noise; returns uint8 HxWx3."""
    pil = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8), mode="RGB")
    blurred = np.asarray(pil.filter(ImageFilter.GaussianBlur(0.6)), dtype=np.float32)
    if sigma > 0:
        blurred += rng.standard_normal(blurred.shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(np.rint(blurred), 0, 255).astype(np.uint8)
