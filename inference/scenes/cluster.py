"""Scene clustering: a scene's non-overlapping model-size cells through the DEC model, read strip by strip."""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.windows import Window
from tqdm import tqdm

from contract.errors import AgrilandError
from contract.manifest import Manifest
from inference.scenes.ground_resolution import MIN_SOURCE_TILE, at_model_gsd, resample_rgb
from inference.scenes.polygons import feature_collection
from inference.scenes.windowed import Predict

log = logging.getLogger(__name__)


class ClusterSource(Protocol):
    """What clustering reads: the scene's size and georeferencing, and uint8 RGB + valid windows."""

    name: str
    height: int
    width: int
    crs: CRS
    transform: Affine

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]: ...


def _cell_boxes(transform: Affine, ys: np.ndarray, xs: np.ndarray, tile: int, height: int, width: int) -> np.ndarray:
    """Cell rectangles in the scene CRS, clipped to the scene edge."""
    boxes = shapely.box(xs, ys, np.minimum(xs + tile, width), np.minimum(ys + tile, height))
    t = transform
    matrix = np.array([[t.a, t.d], [t.b, t.e]])
    return shapely.transform(boxes, lambda xy: xy @ matrix + np.array([t.c, t.f]))


def _strip_cells(rgb: np.ndarray, valid: np.ndarray, tile: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """One strip of rows as [nx, T, T, 3] cells (edge cells mirror-padded) and each cell's valid-pixel count."""
    h, w = valid.shape
    padded = np.pad(rgb, ((0, tile - h), (0, nx * tile - w), (0, 0)), mode="symmetric")
    cells = padded.reshape(tile, nx, tile, 3).swapaxes(0, 1)
    counts = np.pad(valid, ((0, tile - h), (0, nx * tile - w))).reshape(tile, nx, tile).sum(axis=(0, 2))
    return cells, counts


def cell_size_px(source_gsd: float | None, model_gsd: float, tile_size: int) -> int:
    """Source pixels per cell edge so that one cell covers the ground of one model tile (the tile size itself for
    a scene at the model's resolution or of unknown resolution)."""
    if source_gsd is None or at_model_gsd(source_gsd, model_gsd):
        return tile_size
    return max(MIN_SOURCE_TILE, round(tile_size * model_gsd / source_gsd))


def _predict_cells(predict_q: Predict, cells: np.ndarray, batch_size: int) -> np.ndarray:
    """[N, K] soft assignments of [N, T, T, 3] cells, `batch_size` at a time."""
    outputs = []
    for start in range(0, len(cells), batch_size):
        batch = np.ascontiguousarray(cells[start : start + batch_size])
        out = np.asarray(predict_q(batch), dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != len(batch):
            raise AgrilandError(f"the clustering model returned shape {out.shape}; expected [{len(batch)}, K]")
        outputs.append(out)
    return np.concatenate(outputs) if outputs else np.zeros((0, 0), dtype=np.float32)


def cluster_scene(
    source: ClusterSource,
    predict_q: Predict,
    tile_size: int,
    manifest: Manifest,
    batch_size: int = 16,
    progress: bool = False,
    cell_px: int | None = None,
) -> dict:
    """Cluster a scene cell by cell; a GeoJSON FeatureCollection of grid cells with cluster id, name, arable flag.

    Cells are a non-overlapping grid from the top-left corner, read one strip of cells at a time (memory holds
    one strip); edge cells are mirror-padded to a full tile and clipped to the scene in the output. Cells with
    only nodata are left out. `predict_q` maps a uint8 [N, T, T, 3] batch to [N, K] soft assignments. A cell is
    `cell_px` source pixels square (default: the tile size), resampled to the model tile when they differ, so a
    scene finer or coarser than the model's resolution is clustered at the ground size the model learnt
    (`cell_size_px`).
    """
    if batch_size <= 0:
        raise AgrilandError(f"batch size must be positive, got {batch_size}")
    h, w, t = source.height, source.width, cell_px or tile_size
    ny, nx = -(-h // t), -(-w // t)
    col_width = np.minimum(np.arange(nx) * t + t, w) - np.arange(nx) * t
    rows, cols, q, fractions = [], [], [], []
    for row in tqdm(range(ny), desc="cell rows", unit="row", disable=not progress):
        y0 = row * t
        rgb, valid = source.read(Window(0, y0, w, min(t, h - y0)))
        cells, counts = _strip_cells(rgb, valid, t, nx)
        todo = np.flatnonzero(counts > 0)
        if not len(todo):
            continue
        chosen = cells[todo]
        if t != tile_size:
            chosen = np.stack([resample_rgb(np.ascontiguousarray(cell), (tile_size, tile_size)) for cell in chosen])
        q.append(_predict_cells(predict_q, chosen, batch_size))
        rows.append(np.full(len(todo), row))
        cols.append(todo)
        fractions.append(counts[todo] / (col_width[todo] * min(t, h - y0)))
    properties = []
    boxes: list = []
    if q:
        q_all, row_all, col_all, frac_all = (np.concatenate(v) for v in (q, rows, cols, fractions))
        boxes = list(_cell_boxes(source.transform, row_all * t, col_all * t, t, h, w))
        for k, (row, col) in enumerate(zip(row_all, col_all)):
            cluster = int(np.argmax(q_all[k]))
            properties.append(
                {
                    "row": int(row),
                    "col": int(col),
                    "cluster": cluster,
                    "name": manifest.cluster_name(cluster),
                    "land_cover": manifest.land_cover(cluster),
                    "cropland": manifest.is_cropland_cluster(cluster),
                    "is_arable": manifest.is_arable_cluster(cluster),
                    "confidence": round(float(q_all[k, cluster]), 6),
                    "valid_fraction": round(float(frac_all[k]), 6),
                }
            )
    log.info(
        "%s: %d cells of %d source px (model tile %d px) clustered, %d all-nodata left out",
        source.name,
        len(properties),
        t,
        tile_size,
        ny * nx - len(properties),
    )
    return feature_collection(boxes, properties, source.crs)
