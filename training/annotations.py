"""VGG Image Annotator (VIA 2) JSON -> one PNG mask per image plus a pairs CSV, written atomically.

Accepts a VIA 2 project export (the `_via_img_metadata` key inside) or the bare metadata dict
(`{"<filename><size>": {"filename", "size", "regions", ...}}`, what "Export annotations (as json)" saves).
Shapes: polygon, polyline (closed into a polygon), rect, circle, ellipse (with optional `theta`).

Rasterisation samples pixel centres: pixel (row i, column j) is inside a shape when the point
(j + 0.5, i + 0.5) is, in VIA's image coordinates. So `rect x=2 y=3 width=4 height=2` covers exactly columns
2-5 of rows 3-4, and a polygon covers about its area. A region lying entirely outside its image is an
error; one partly outside is clipped (and logged).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from contract.atomic import atomic_dir
from contract.errors import AgrilandError

logger = logging.getLogger(__name__)

SHAPES = ("polygon", "polyline", "rect", "circle", "ellipse")


@dataclass
class ImageAnnotation:
    """One image entry of a VIA file: its file name and its regions (shape and region attributes)."""

    filename: str
    regions: list[dict] = field(default_factory=list)


def read_via(path: Path | str) -> list[ImageAnnotation]:
    """Parse a VIA 2 project or bare metadata JSON into image annotations (file order kept)."""
    path = Path(path)
    if not path.is_file():
        raise AgrilandError(f"VIA file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise AgrilandError(f"{path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}") from err
    except UnicodeDecodeError as err:
        raise AgrilandError(f"{path} is not UTF-8 text: {err}") from err
    if isinstance(data, dict) and "_via_img_metadata" in data:
        data = data["_via_img_metadata"]
    if not isinstance(data, dict) or not all(isinstance(v, dict) and "filename" in v for v in data.values()):
        raise AgrilandError(
            f"{path} is not a VIA 2 file: expected a project with `_via_img_metadata` or a dict of "
            "{key: {filename, regions}} entries"
        )
    if not data:
        raise AgrilandError(f"{path} contains no images")
    images: list[ImageAnnotation] = []
    seen: set[str] = set()
    for key, entry in data.items():
        filename = entry.get("filename")
        if not isinstance(filename, str) or not filename:
            raise AgrilandError(f"{path}: entry {key!r} has no filename")
        if filename in seen:
            raise AgrilandError(f"{path}: image {filename!r} is listed twice")
        seen.add(filename)
        regions = entry.get("regions", [])
        if isinstance(regions, dict):  # VIA 1 stored regions as {"0": {...}, "1": {...}}
            regions = [regions[k] for k in sorted(regions, key=lambda k: int(k) if str(k).isdigit() else k)]
        if not isinstance(regions, list) or not all(isinstance(r, dict) for r in regions):
            raise AgrilandError(f"{path}: image {filename!r} has malformed regions")
        images.append(ImageAnnotation(filename, regions))
    return images


def _number(attrs: dict, key: str, where: str) -> float:
    value = attrs.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AgrilandError(f"{where}: {attrs.get('name')} needs a number {key!r}, got {value!r}")
    return float(value)


def _points(attrs: dict, where: str) -> np.ndarray:
    xs, ys = attrs.get("all_points_x"), attrs.get("all_points_y")
    if not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
        raise AgrilandError(f"{where}: {attrs.get('name')} needs all_points_x and all_points_y of equal length")
    if len(xs) < 3:
        raise AgrilandError(f"{where}: {attrs.get('name')} needs at least 3 points, got {len(xs)}")
    try:
        points = np.asarray([xs, ys], dtype=np.float64).T
    except (TypeError, ValueError) as err:
        raise AgrilandError(f"{where}: {attrs.get('name')} has non-numeric points") from err
    if not np.isfinite(points).all():
        raise AgrilandError(f"{where}: {attrs.get('name')} has non-finite points")
    return points


def polygon_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Boolean HxW mask of pixel centres inside a polygon (even-odd rule), by scanlines."""
    mask = np.zeros((height, width), dtype=bool)
    x0, y0 = points[:, 0], points[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    row_lo = max(int(math.floor(points[:, 1].min() - 0.5)), 0)
    row_hi = min(int(math.ceil(points[:, 1].max())), height)
    for row in range(row_lo, row_hi):
        yc = row + 0.5
        crossing = (y0 <= yc) != (y1 <= yc)
        if not crossing.any():
            continue
        xa, ya, xb, yb = x0[crossing], y0[crossing], x1[crossing], y1[crossing]
        xs = np.sort(xa + (yc - ya) * (xb - xa) / (yb - ya))
        for left, right in zip(xs[0::2], xs[1::2]):
            start = max(int(math.ceil(left - 0.5)), 0)
            stop = min(int(math.ceil(right - 0.5)), width)
            if stop > start:
                mask[row, start:stop] = True
    return mask


def ellipse_mask(cx: float, cy: float, rx: float, ry: float, theta: float, height: int, width: int) -> np.ndarray:
    """Boolean HxW mask of pixel centres inside an ellipse rotated by `theta` radians."""
    yy, xx = np.mgrid[0:height, 0:width]
    dx, dy = xx + 0.5 - cx, yy + 0.5 - cy
    cos, sin = math.cos(theta), math.sin(theta)
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    return (u / rx) ** 2 + (v / ry) ** 2 <= 1.0


def region_mask(shape: dict, height: int, width: int, where: str = "region") -> np.ndarray:
    """Rasterise one VIA `shape_attributes` dict to a boolean HxW mask; `where` prefixes error messages."""
    if not isinstance(shape, dict):
        raise AgrilandError(f"{where}: shape_attributes must be an object, got {shape!r}")
    name = shape.get("name")
    if name in ("polygon", "polyline"):
        points = _points(shape, where)
        bbox = (points[:, 0].min(), points[:, 1].min(), points[:, 0].max(), points[:, 1].max())
        mask = polygon_mask(points, height, width)
    elif name == "rect":
        x, y = _number(shape, "x", where), _number(shape, "y", where)
        w, h = _number(shape, "width", where), _number(shape, "height", where)
        if w <= 0 or h <= 0:
            raise AgrilandError(f"{where}: rect needs a positive width and height, got {w}x{h}")
        bbox = (x, y, x + w, y + h)
        mask = polygon_mask(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]]), height, width)
    elif name in ("circle", "ellipse"):
        cx, cy = _number(shape, "cx", where), _number(shape, "cy", where)
        if name == "circle":
            rx = ry = _number(shape, "r", where)
            theta = 0.0
        else:
            rx, ry = _number(shape, "rx", where), _number(shape, "ry", where)
            theta = _number(shape, "theta", where) if "theta" in shape else 0.0
        if rx <= 0 or ry <= 0:
            raise AgrilandError(f"{where}: {name} needs a positive radius, got {rx}, {ry}")
        reach = max(rx, ry)
        bbox = (cx - reach, cy - reach, cx + reach, cy + reach)
        mask = ellipse_mask(cx, cy, rx, ry, theta, height, width)
    else:
        raise AgrilandError(f"{where}: unknown shape {name!r}; supported: {', '.join(SHAPES)}")
    x_min, y_min, x_max, y_max = bbox
    if x_max <= 0 or y_max <= 0 or x_min >= width or y_min >= height:
        raise AgrilandError(f"{where}: {name} lies outside the {width}x{height} image (bounds {_fmt(bbox)})")
    if x_min < 0 or y_min < 0 or x_max > width or y_max > height:
        logger.warning(
            "%s: %s extends past the %dx%d image (bounds %s); clipped", where, name, width, height, _fmt(bbox)
        )
    return mask


def _fmt(bbox: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in bbox) + ")"


def region_value(region: dict, attribute: str | None, value: str | None, class_values: dict[str, int] | None) -> int:
    """Mask value a region paints: 0 to skip it; 255 by default; `class_values[attr value]` when mapped."""
    if attribute is None:
        return 255
    attrs = region.get("region_attributes") or {}
    raw = attrs.get(attribute) if isinstance(attrs, dict) else None
    if isinstance(raw, dict):  # checkbox attribute: {"arable": true, ...}
        chosen = [k for k, v in raw.items() if v]
    elif raw is None or raw == "":
        chosen = []
    else:
        chosen = [str(raw)]
    if class_values:
        return max((class_values.get(c, 0) for c in chosen), default=0)
    if value is None:
        return 255 if chosen else 0
    return 255 if value in chosen else 0


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, read from its header."""
    try:
        with Image.open(path) as image:
            return image.size
    except (UnidentifiedImageError, OSError) as err:
        raise AgrilandError(f"cannot read image {path}: {err}") from err


def annotation_mask(
    annotation: ImageAnnotation,
    height: int,
    width: int,
    source: str = "",
    attribute: str | None = None,
    value: str | None = None,
    class_values: dict[str, int] | None = None,
) -> np.ndarray:
    """uint8 HxW mask of one image's selected regions (later regions paint over earlier ones)."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for index, region in enumerate(annotation.regions):
        where = f"{source}: image {annotation.filename!r}, region {index}"
        fill = region_value(region, attribute, value, class_values)
        shape = region.get("shape_attributes")
        drawn = region_mask(shape, height, width, where)  # validate even regions we skip
        if fill:
            mask[drawn] = fill
    return mask


def via_to_masks(
    via_json: Path | str,
    images_dir: Path | str,
    out_dir: Path | str,
    attribute: str | None = None,
    value: str | None = None,
    class_values: dict[str, int] | None = None,
    copy_images: bool = False,
    skip_empty: bool = False,
    overwrite: bool = False,
) -> Path:
    """Write `out_dir/masks/<image stem>.png` (0/255, or class values) and `out_dir/pairs.csv` (image, mask).

    CSV paths are relative to the CSV (images are copied into `out_dir/images/` with `copy_images`).
    Everything is checked before the folder appears; on any error nothing is left behind.
    """
    via_json, images_dir, out_dir = Path(via_json), Path(images_dir), Path(out_dir)
    annotations = read_via(via_json)
    if not images_dir.is_dir():
        raise AgrilandError(f"images folder not found: {images_dir}")
    if class_values and any(not 0 < v <= 255 for v in class_values.values()):
        raise AgrilandError(f"class values must be in 1..255, got {class_values}")
    stems: dict[str, str] = {}
    written = 0
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        (tmp / "masks").mkdir()
        if copy_images:
            (tmp / "images").mkdir()
        rows = []
        for annotation in annotations:
            image_path = images_dir / annotation.filename
            if not image_path.is_file():
                raise AgrilandError(f"{via_json}: image file not found for {annotation.filename!r}: {image_path}")
            width, height = image_size(image_path)
            mask = annotation_mask(annotation, height, width, str(via_json), attribute, value, class_values)
            if skip_empty and not mask.any():
                continue
            stem = Path(annotation.filename).stem
            if stem in stems:
                raise AgrilandError(
                    f"{via_json}: images {stems[stem]!r} and {annotation.filename!r} would write the same mask file"
                )
            stems[stem] = annotation.filename
            Image.fromarray(mask, mode="L").save(tmp / "masks" / f"{stem}.png")
            if copy_images:
                shutil.copy2(image_path, tmp / "images" / Path(annotation.filename).name)
                image_entry = f"images/{Path(annotation.filename).name}"
            else:
                image_entry = _relative(image_path, out_dir)
            rows.append({"image": image_entry, "mask": f"masks/{stem}.png"})
            written += 1
        if not rows:
            raise AgrilandError(f"{via_json}: no masks to write (every image was empty and skipped)")
        with open(tmp / "pairs.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["image", "mask"])
            writer.writeheader()
            writer.writerows(rows)
    logger.info("wrote %d masks and %s from %s", written, out_dir / "pairs.csv", via_json)
    return out_dir


def _relative(path: Path, start: Path) -> str:
    """`path` relative to `start` (resolved), or absolute where no relative path exists."""
    try:
        return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()
    except ValueError:
        return str(path.resolve())
