"""Field delineation: the U-Net's arable probability snapped to the image's own field boundaries, one region per field.

The U-Net answers "is this land cropland" at the model's ground resolution (10 m, 640 m of context); real fields
are bounded by roads, hedges, tree lines and the edge between two crops. This step, applied to every answer
(tiles, scenes, CLI, batch), works at the image's own resolution and in ground units, so it holds for any sensor:

1. the image is smoothed and its colour gradient (CIELAB, all bands together) is computed at a working
   resolution of at least `work_gsd_m` metres per pixel;
2. homogeneous cores (low gradient, at least `min_field_m2` after an erosion of `core_m`) seed a watershed of
   the gradient, so every pixel joins one image segment and segments meet on one-pixel watershed lines;
3. adjacent segments of one colour (`merge_delta_e`) across a weak line (`merge_weak` x the core level) are
   merged, so a field is not split by its own texture or noise; a region is a field when its mean arable
   probability reaches the threshold and it is field-shaped (wider than `min_width_m`: not a road or hedge);
4. pixels far from their field's mean colour (`trim_delta_e`: the road, yard or tree row the flood reached) leave
   it, and pieces under `min_field_m2` are dropped;
5. the answer is the field mask with the lines between touching fields left out, so each 4-connected region of
   the mask is one field (GeoTIFF, PNG and polygons alike), with a per-field confidence (its mean probability).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from skimage.color import rgb2lab
from skimage.segmentation import relabel_sequential, watershed

from contract.errors import AgrilandError

Mode = Literal["fields", "threshold"]
MODES: tuple[str, ...] = ("fields", "threshold")
FOUR_CONNECTED = ndimage.generate_binary_structure(2, 1)  # fields touch along edges, not corners


@dataclass(frozen=True)
class FieldOptions:
    """How masks are answered: `fields` (delineated, one region per field) or `threshold` (the plain cut)."""

    mode: Mode = "fields"
    work_gsd_m: float = 2.5  # finer images are delineated at this resolution (texture of rows is noise here)
    smooth_m: float = 2.5  # Gaussian sigma before the gradient, metres
    min_sigma_px: float = 0.5  # ... and at least this many pixels
    core_m: float = 5.0  # a field's core lies this far inside its boundary
    min_field_m2: float = 2_500.0  # smaller segments are not seeded (0.25 ha)
    min_width_m: float = 20.0  # narrower segments (roads, hedges, banks) are not fields
    merge_weak: float = 2.0  # segments whose shared line's mean gradient is under this x the core level ...
    merge_delta_e: float = 4.0  # ... and whose mean colours are this close in CIELAB are one region
    trim_delta_e: float = 15.0  # field pixels further than this from their field's mean colour are not field
    core_quantile: float = 0.7  # gradient below this quantile of the valid pixels counts as homogeneous
    noise_factor: float = 1.5  # ... and any under this x the median gradient (flat, noisy scenes)
    flat_delta_e: float = 1.5  # ... and so does any gradient under this CIELAB step per pixel (sensor noise)

    @classmethod
    def parse(cls, mode: str | None) -> FieldOptions:
        if mode in (None, ""):
            return cls()
        if mode not in MODES:
            raise AgrilandError(f"mask mode must be one of {', '.join(MODES)}, got {mode!r}")
        return cls(mode=mode)  # type: ignore[arg-type]


@dataclass
class Fields:
    """Delineated fields of one image: the answered 0/1 mask, instance labels and each field's confidence."""

    mask: np.ndarray  # uint8 [h, w]: 1 = field interior (lines between touching fields are 0)
    labels: np.ndarray  # int32 [h, w]: 0 = not field, k = field k (1..n), same support as `mask`
    confidence: np.ndarray  # float32 [n]: mean arable probability of field k+1


def separate(labels: np.ndarray) -> np.ndarray:
    """Labels with every pixel that 4-touches another field's pixel (to its right or below) set to 0."""
    out = labels.copy()
    right = (labels[:, :-1] > 0) & (labels[:, 1:] > 0) & (labels[:, :-1] != labels[:, 1:])
    down = (labels[:-1, :] > 0) & (labels[1:, :] > 0) & (labels[:-1, :] != labels[1:, :])
    out[:, :-1][right] = 0
    out[:-1, :][down] = 0
    return out


def _resize(array: np.ndarray, shape: tuple[int, int], nearest: bool) -> np.ndarray:
    if array.shape[:2] == shape:
        return array
    method = Image.Resampling.NEAREST if nearest else Image.Resampling.BILINEAR
    if array.ndim == 3:
        return np.asarray(Image.fromarray(array).resize((shape[1], shape[0]), method))
    mode = "F" if array.dtype == np.float32 else ("I" if array.dtype == np.int32 else "L")
    return np.asarray(Image.fromarray(array, mode=mode).resize((shape[1], shape[0]), method))


def colour_sobel(image: np.ndarray) -> np.ndarray:
    """float32 [h, w]: the Sobel magnitude of every channel of [h, w, c] together, sqrt(sum_c sobel_c^2), with
    skimage.filters.sobel's scale (derivative [1, 0, -1] x smoothing [1, 2, 1] / 4, RMS over the two axes) in
    four 1-D passes over all channels at once."""
    smooth, edge = np.array([0.25, 0.5, 0.25]), np.array([1.0, 0.0, -1.0])
    along_x = ndimage.correlate1d(ndimage.correlate1d(image, smooth, axis=0), edge, axis=1)
    along_y = ndimage.correlate1d(ndimage.correlate1d(image, smooth, axis=1), edge, axis=0)
    return np.sqrt(((along_x**2 + along_y**2) / 2).sum(axis=-1)).astype(np.float32)


def _segments(
    lab: np.ndarray, valid: np.ndarray, gsd: float, opts: FieldOptions
) -> tuple[np.ndarray, np.ndarray, float]:
    """Watershed segments of the CIELAB gradient (0 on watershed lines and nodata), the gradient, the core level."""
    sigma = max(opts.min_sigma_px, opts.smooth_m / gsd)
    smooth = ndimage.gaussian_filter(lab, (sigma, sigma, 0))  # each channel on its own
    gradient = colour_sobel(smooth)
    gradient[~valid] = gradient.max() + 1.0
    level = np.quantile(gradient[valid], opts.core_quantile) if valid.any() else 0.0
    if valid.any():
        level = max(level, opts.noise_factor * float(np.median(gradient[valid])))
    level = max(float(level), opts.flat_delta_e)
    core = (gradient <= level) & valid
    radius = max(1, int(round(opts.core_m / gsd)))
    core = ndimage.binary_erosion(core, structure=FOUR_CONNECTED, iterations=radius)
    markers, n = ndimage.label(core, structure=FOUR_CONNECTED)
    if n:
        sizes = np.bincount(markers.ravel())
        small = sizes < max(1, opts.min_field_m2 / gsd**2 / 4)  # a core is a quarter of its field or more
        small[0] = False
        markers[small[markers]] = 0
    return flood(gradient, markers, valid), gradient, level


def flood(gradient: np.ndarray, markers: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """skimage's marker watershed of `gradient` over `valid` (4-connected, 0 on the one-pixel lines), flooded from
    each marker's rim: a pixel whose four neighbours carry its own marker can only keep that label and never
    meets a line, so the interior is left out of the queue (~40 % sooner on real scenes). The labels are skimage's
    own wherever the gradient has no exact ties; skimage queues every marker pixel at one age, so on a plateau
    that two markers reach at once the winner follows its heap's layout, and a smaller heap may pick the other."""
    inner = markers > 0  # ... and each 4-neighbour inside the image carries the same marker
    inner[1:] &= markers[1:] == markers[:-1]
    inner[:-1] &= markers[:-1] == markers[1:]
    inner[:, 1:] &= markers[:, 1:] == markers[:, :-1]
    inner[:, :-1] &= markers[:, :-1] == markers[:, 1:]
    rim = np.where(inner, 0, markers)
    out = watershed(gradient, rim, mask=valid & ~inner, watershed_line=True).astype(np.int32)
    out[inner] = markers[inner]
    return out


def _region_means(labels: np.ndarray, lab: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels (at least 1) and mean CIELAB colour [n + 1, 3] of every label 0..n."""
    count = np.maximum(np.bincount(labels.ravel(), minlength=n + 1), 1).astype(np.float64)
    sums = np.stack([np.bincount(labels.ravel(), lab[..., c].ravel(), n + 1) for c in range(3)], 1)
    return count, sums / count[:, None]


def _trim_outliers(labels: np.ndarray, lab: np.ndarray, n: int, delta_e: float) -> np.ndarray:
    """Pixels far from their field's mean colour (a road, yard or tree row the flood reached) leave the field:
    further than `delta_e` and than 2x the field's mean colour distance (its own texture and noise)."""
    count, means = _region_means(labels, lab, n)
    distance = np.linalg.norm(lab - means[labels].astype(np.float32), axis=-1)
    # a noisy (or stretched) image spreads a field's own pixels too: the cut is at least 2x their mean distance
    spread = np.bincount(labels.ravel(), distance.ravel(), n + 1) / count
    cut = np.maximum(delta_e, 2.0 * spread)
    out = np.where((labels > 0) & (distance > cut[labels]), 0, labels)
    return ndimage.median_filter(out, size=3) * (out > 0) if out.any() else out


def _field_shaped(segments: np.ndarray, n: int, gsd: float, opts: FieldOptions) -> np.ndarray:
    """Per segment: wide enough to be a field (inscribed radius >= min_width_m / 2: roads, hedges, tree lines and
    river banks are not) and at least min_field_m2 / 4 in area."""
    if n == 0:
        return np.zeros(1, bool)
    inside = ndimage.distance_transform_edt(segments > 0)
    radius = np.zeros(n + 1)
    np.maximum.at(radius, segments.ravel(), inside.ravel())  # the largest inscribed radius of each segment
    area = np.bincount(segments.ravel(), minlength=n + 1)
    ok = (radius * gsd >= opts.min_width_m / 2) & (area * gsd * gsd >= opts.min_field_m2)
    ok[0] = False
    return ok


def _merge_weak(labels: np.ndarray, gradient: np.ndarray, lab: np.ndarray, level: float, delta_e: float) -> np.ndarray:
    """Union adjacent segments of the same colour (mean CIELAB within `delta_e`) whose shared watershed line is
    weak (mean gradient under `level`): a field, or a lake, split by its own texture or noise is one region again
    and the line between the pieces joins it; fields of one crop on both sides of a road or hedge stay apart."""
    n = int(labels.max())
    if n == 0 or level <= 0:
        return labels
    count, means = _region_means(labels, lab, n)
    line = labels == 0
    high = ndimage.grey_dilation(labels, size=3)  # the larger segment next to a line pixel
    low = -ndimage.grey_dilation(-np.where(line, n + 1, labels), size=3)  # the smaller one (n + 1: none)
    between = line & (high > 0) & (low <= n) & (low != high)
    a, b, g = low[between].astype(np.int64), high[between].astype(np.int64), gradient[between]
    key = a * (n + 1) + b
    pairs, inverse = np.unique(key, return_inverse=True)
    strength = np.bincount(inverse, g) / np.bincount(inverse)
    i, j = np.divmod(pairs, n + 1)
    weak = (strength < level) & (np.linalg.norm(means[i] - means[j], axis=1) < delta_e)
    if not weak.any():
        return labels
    return join_regions(labels, i[weak], j[weak], between, low, high)


def join_regions(
    labels: np.ndarray, i: np.ndarray, j: np.ndarray, between: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """Labels with the region pairs (i[k], j[k]) united (transitively), each group named by its smallest id; the
    line pixels `between` two regions (`low`, `high`: the smaller and larger id beside each) join the group when
    both sides are in it."""
    n = int(labels.max())
    graph = coo_matrix((np.ones(len(i)), (i, j)), shape=(n + 1, n + 1))
    _, component = connected_components(graph, directed=False)
    # each group is named by its smallest segment id, so roots[k] == k for a segment left alone
    smallest = np.full(component.max() + 1, n + 1)
    np.minimum.at(smallest, component, np.arange(n + 1))
    roots = smallest[component]
    merged = roots[labels]
    joined = between & (roots[np.minimum(low, n)] == roots[high])
    merged[joined] = roots[high[joined]]
    return merged


def without_small_regions(mask: np.ndarray, min_pixels: float) -> tuple[np.ndarray, int]:
    """int32 labels (1..n) of the 4-connected regions of `mask` that have at least `min_pixels` pixels, and n."""
    labels, n = ndimage.label(mask, structure=FOUR_CONNECTED)
    if n:
        small = np.bincount(labels.ravel(), minlength=n + 1) < min_pixels
        small[0] = True
        if small[1:].any():
            labels, n = ndimage.label(~small[labels], structure=FOUR_CONNECTED)
    return labels.astype(np.int32), int(n)


def delineate(
    rgb: np.ndarray,
    probability: np.ndarray,
    valid: np.ndarray,
    threshold: float,
    gsd_m: float,
    options: FieldOptions = FieldOptions(),
) -> Fields:
    """Fields of one image (uint8 RGB, arable probability and valid mask on the same grid, `gsd_m` m/px)."""
    h, w = probability.shape
    if rgb.shape[:2] != (h, w) or valid.shape != (h, w):
        raise AgrilandError(f"delineate: rgb {rgb.shape}, probability {probability.shape}, valid {valid.shape} differ")
    if options.mode == "threshold" or not valid.any():
        mask = ((probability >= threshold) & valid).astype(np.uint8)
        labels, n = ndimage.label(mask, structure=FOUR_CONNECTED)
        conf = (
            ndimage.mean(probability, labels, np.arange(1, n + 1)).astype(np.float32) if n else np.zeros(0, np.float32)
        )
        return Fields(mask, labels.astype(np.int32), conf)
    gsd = gsd_m if gsd_m and gsd_m > 0 else options.work_gsd_m
    factor = max(1, int(math.floor(options.work_gsd_m / gsd)))  # work at >= work_gsd_m m/px
    shape = (max(1, math.ceil(h / factor)), max(1, math.ceil(w / factor)))
    small_rgb = _resize(rgb, shape, nearest=False)
    small_valid = _resize(valid.astype(np.uint8), shape, nearest=True) > 0
    small_p = _resize(probability.astype(np.float32), shape, nearest=False)
    lab = rgb2lab(small_rgb.astype(np.float32) / 255.0).astype(np.float32, copy=False)
    segments, gradient, level = _segments(lab, small_valid, gsd * factor, options)
    regions = _merge_weak(segments, gradient, lab, level * options.merge_weak, options.merge_delta_e)
    regions, _, _ = relabel_sequential(regions)
    n = int(regions.max())
    mean_p = np.zeros(n + 1, np.float32)
    if n:
        count = np.bincount(regions.ravel(), minlength=n + 1)
        mean_p = (np.bincount(regions.ravel(), small_p.ravel(), n + 1) / np.maximum(count, 1)).astype(np.float32)
    keep = (mean_p >= threshold) & _field_shaped(regions, n, gsd * factor, options)
    keep[0] = False
    field_labels = np.where(keep[regions], regions, 0)
    if options.trim_delta_e > 0 and n:
        field_labels = _trim_outliers(field_labels, lab, n, options.trim_delta_e)
    full = np.array(_resize(field_labels.astype(np.int32), (h, w), nearest=True))
    full[~valid] = 0
    full = separate(full)
    # pieces under the smallest field (trimmed specks, slivers) are not answered
    labels, count_fields = without_small_regions(full > 0, options.min_field_m2 / (gsd * gsd))
    # a relabel keeps one id per 4-connected region (the separated mask is exactly the answered fields)
    conf = (
        ndimage.mean(probability, labels, np.arange(1, count_fields + 1)).astype(np.float32)
        if count_fields
        else np.zeros(0, np.float32)
    )
    return Fields((labels > 0).astype(np.uint8), labels.astype(np.int32), conf)
