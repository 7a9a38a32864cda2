"""Tile loaders (image folder, EuroSAT, image/mask CSV, GeoTIFF).

Every loader returns a `TileData` of uint8 RGB tiles resized to `tile_size` (bilinear for images, nearest
for masks). Masks are binarised to {0, 1}: a mask whose values are all 0/1 is taken as is, any other mask
(0/255 PNG, JPEG with compression noise) is thresholded at 128. GeoTIFF bands (uint16, float) are scaled to
uint8 with one per-band percentile stretch for the whole data set: the `stretch` percentiles (default 2 and
98) of the valid pixels of all tiles map to 0 and 255, so tiles keep their relative brightness. TensorFlow
is not imported here (the tf.data pipeline is training/tf_dataset.py).
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from contract.errors import AgrilandError
from contract.radiometry import DEFAULT_RADIOMETRY, percentile_limits, stretch_to_uint8, to_model_input
from training.tile_io import (
    IMAGE_SUFFIXES,
    TIFF_SUFFIXES,
    image_files,
    native_size,
    read_geotiff,
    read_mask,
    read_rgb,
    to_tile,
)

logger = logging.getLogger(__name__)

PAIRS_CSV_NAMES = ("pairs.csv", "meta_data.csv")
SCENE_PATTERN = re.compile(r"^(\d+)_sat_")


@dataclass
class TileData:
    """Tiles in memory, with optional masks, labels and class names, and the source path of each tile."""

    images: np.ndarray  # (N, T, T, 3) uint8
    masks: np.ndarray | None  # (N, T, T) uint8 {0,1}
    labels: np.ndarray | None  # (N,) int64
    class_names: list[str] | None
    paths: list[str]
    groups: list[str] | None = None  # per tile: "train"/"val"/"test", or a source-scene id to split by

    def __len__(self) -> int:
        return len(self.images)


def _require_dir(folder: Path | str) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise AgrilandError(f"data folder not found: {folder}")
    return folder


def _stack(arrays: list[np.ndarray], tile_size: int, channels: int | None) -> np.ndarray:
    if not arrays:
        shape = (0, tile_size, tile_size) + ((channels,) if channels else ())
        return np.zeros(shape, dtype=np.uint8)
    return np.stack(arrays).astype(np.uint8, copy=False)


def load_image_folder(folder: Path | str, tile_size: int) -> TileData:
    """Every image file directly inside `folder` (sorted by name), unlabeled."""
    folder = _require_dir(folder)
    files = image_files(folder)
    if not files:
        raise AgrilandError(f"no image files ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    images = [read_rgb(p, tile_size) for p in files]
    logger.info("read %d tiles from %s", len(files), folder)
    return TileData(_stack(images, tile_size, 3), None, None, None, [str(p) for p in files])


def load_eurosat(folder: Path | str, tile_size: int) -> TileData:
    """EuroSAT layout: one subfolder per class (sorted names = class codes) holding JPG/PNG/TIF tiles."""
    folder = _require_dir(folder)
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise AgrilandError(f"no class subfolders in {folder} (EuroSAT layout: <folder>/<ClassName>/*.jpg)")
    images, labels, paths = [], [], []
    for code, name in enumerate(classes):
        files = image_files(folder / name)
        if not files:
            raise AgrilandError(f"class folder {folder / name} holds no image files")
        for path in files:
            images.append(read_rgb(path, tile_size))
            labels.append(code)
            paths.append(str(path))
    logger.info("read %d tiles in %d classes from %s", len(images), len(classes), folder)
    return TileData(_stack(images, tile_size, 3), None, np.asarray(labels, np.int64), classes, paths)


def _resolve(csv_dir: Path, value: str, subfolder: str, csv_path: Path, row: int, column: str) -> Path:
    """A CSV path entry: relative to the CSV's folder, else to its images/ or masks/ subfolder."""
    if not value.strip():
        raise AgrilandError(f"{csv_path}, row {row}: empty {column!r} entry")
    raw = Path(value.strip())
    candidates = [raw] if raw.is_absolute() else [csv_dir / raw, csv_dir / subfolder / raw]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise AgrilandError(f"{csv_path}, row {row}: {column} file not found: {candidates[0]}")


def load_pairs_csv(
    csv_path: Path | str,
    tile_size: int,
    image_col: str = "image",
    mask_col: str | None = "mask",
    label_col: str = "label",
) -> TileData:
    """Image/mask pairs listed in a CSV (ours, or the Forest Aerial Images `meta_data.csv`).

    Paths are relative to the CSV's folder or to its `images/` and `masks/` subfolders. An optional label
    column holds class names (codes follow LANDCOVER_CLASSES when every name is one of them, else sorted
    names). `mask_col=None` reads images only.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise AgrilandError(f"pairs CSV not found: {csv_path}")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = list(reader.fieldnames or [])
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as err:
        raise AgrilandError(f"cannot parse CSV {csv_path}: {err}") from err
    needed = [image_col] + ([mask_col] if mask_col else [])
    missing = [c for c in needed if c not in columns]
    if missing:
        raise AgrilandError(f"{csv_path} lacks column(s) {missing}; found {columns}")
    if not rows:
        raise AgrilandError(f"{csv_path} lists no rows")
    images, masks, paths, names = [], [], [], []
    for row_no, row in enumerate(rows, start=2):  # row 1 is the header
        image_path = _resolve(csv_path.parent, row[image_col] or "", "images", csv_path, row_no, image_col)
        images.append(read_rgb(image_path, tile_size))
        paths.append(str(image_path))
        if mask_col:
            mask_path = _resolve(csv_path.parent, row[mask_col] or "", "masks", csv_path, row_no, mask_col)
            masks.append(read_mask(mask_path, tile_size, expect_size=native_size(image_path)))
        if label_col in columns:
            names.append((row[label_col] or "").strip())
    labels, class_names = _encode_labels(names, csv_path) if names else (None, None)
    logger.info("read %d pairs from %s", len(images), csv_path)
    return TileData(
        _stack(images, tile_size, 3),
        _stack(masks, tile_size, None) if mask_col else None,
        labels,
        class_names,
        paths,
        _groups(rows, columns, paths),
    )


def _groups(rows: list[dict[str, str]], columns: list[str], paths: list[str]) -> list[str] | None:
    """Split groups: a `split` column (train/val/test), a `group` column, or the source scene of Forest Aerial
    file names (`<scene>_sat_<n>.jpg`); None when the CSV says nothing about where tiles come from."""
    for column in ("split", "group"):
        if column in columns:
            return [(row[column] or "").strip() for row in rows]
    scenes = [SCENE_PATTERN.match(Path(p).name) for p in paths]
    return [m.group(1) for m in scenes] if all(scenes) else None


def _encode_labels(names: list[str], source: Path) -> tuple[np.ndarray, list[str]]:
    from training.synthetic import LANDCOVER_CLASSES

    if any(not n for n in names):
        raise AgrilandError(f"{source}: empty label in row {names.index('') + 2}")
    known = set(names) <= set(LANDCOVER_CLASSES)
    classes = list(LANDCOVER_CLASSES) if known else sorted(set(names))
    lookup = {name: code for code, name in enumerate(classes)}
    return np.asarray([lookup[n] for n in names], dtype=np.int64), classes


def load_geotiff_tiles(
    folder: Path | str,
    tile_size: int,
    bands: tuple[int, ...] | None = None,
    stretch: tuple[float, float] | None = None,
) -> TileData:
    """GeoTIFF tiles in `folder`: `bands` (1-based; default 1,2,3) scaled to uint8 by the radiometry contract
    (reflectance rendering, as serving does), or by one data-set-wide percentile `stretch` when given."""
    folder = _require_dir(folder)
    files = image_files(folder, TIFF_SUFFIXES)
    if not files:
        raise AgrilandError(f"no GeoTIFF files (.tif, .tiff) in {folder}")
    if stretch is None:
        images = [
            to_tile(to_model_input(data, DEFAULT_RADIOMETRY, valid), tile_size)
            for data, valid in (read_geotiff(p, bands) for p in files)
        ]
        logger.info(
            "read %d GeoTIFF tiles from %s (bands %s, radiometry contract)", len(files), folder, bands or (1, 2, 3)
        )
        return TileData(_stack(images, tile_size, 3), None, None, None, [str(p) for p in files])
    percentile_limits(np.zeros((0, 3)), stretch)  # refuses bad percentiles before any file is read
    rasters = [read_geotiff(p, bands) for p in files]
    rng = np.random.default_rng(0)
    samples = []
    for data, valid in rasters:
        pixels = data[valid]
        if len(pixels) > 4096:
            pixels = pixels[rng.choice(len(pixels), 4096, replace=False)]
        samples.append(pixels.astype(np.float64))
    low, high = percentile_limits(np.concatenate(samples), stretch)
    images = []
    for data, valid in rasters:
        if data.dtype == np.uint8:  # already display-ready
            scaled = data.copy()
        else:
            scaled = stretch_to_uint8(data.astype(np.float64), low, high)
        scaled[~valid] = 0
        images.append(to_tile(scaled, tile_size))
    logger.info("read %d GeoTIFF tiles from %s (bands %s, stretch %s)", len(files), folder, bands or (1, 2, 3), stretch)
    return TileData(_stack(images, tile_size, 3), None, None, None, [str(p) for p in files])


def detect_kind(source: Path | str) -> Literal["folder", "eurosat", "pairs", "geotiff"]:
    """Guess a source's layout: CSV or folder with pairs.csv/meta_data.csv -> pairs; class subfolders ->
    eurosat; only TIFFs -> geotiff; any other folder of images -> folder."""
    source = Path(source)
    if source.is_file():
        if source.suffix.lower() == ".csv":
            return "pairs"
        raise AgrilandError(f"{source} is a file but not a CSV; give a folder or a pairs CSV")
    folder = _require_dir(source)
    if any((folder / name).is_file() for name in PAIRS_CSV_NAMES):
        return "pairs"
    files = image_files(folder)
    subdirs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if not files and subdirs and all(image_files(d) for d in subdirs):
        return "eurosat"
    if files and all(p.suffix.lower() in TIFF_SUFFIXES for p in files):
        return "geotiff"
    return "folder"


def load_tiles(
    source: Path | str,
    tile_size: int,
    kind: Literal["auto", "folder", "eurosat", "pairs", "geotiff"] = "auto",
) -> TileData:
    """Load tiles from any supported source; `kind="auto"` uses `detect_kind`."""
    source = Path(source)
    if not source.exists():
        raise AgrilandError(f"data source not found: {source}")
    if kind == "auto":
        kind = detect_kind(source)
    if kind == "pairs":
        if source.is_dir():
            source = next(source / n for n in PAIRS_CSV_NAMES if (source / n).is_file())
        return load_pairs_csv(source, tile_size)
    loaders = {"folder": load_image_folder, "eurosat": load_eurosat, "geotiff": load_geotiff_tiles}
    if kind not in loaders:
        raise AgrilandError(f"unknown data kind {kind!r}; choose auto, folder, eurosat, pairs or geotiff")
    return loaders[kind](source, tile_size)
