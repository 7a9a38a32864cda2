"""In-memory scene inference: the windowed engine on a decoded Raster, and per-tile cluster cells."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS
from tqdm import tqdm

from contract.errors import AgrilandError
from contract.manifest import Manifest
from inference.scenes.geo import Raster
from inference.scenes.polygons import feature_collection
from inference.scenes.windowed import DEFAULT_BLOCK, ArraySink, ArraySource, Predict, WindowedSegmenter, WindowParams

log = logging.getLogger(__name__)

@dataclass
class SceneResult:
    """Blended arable probability and thresholded mask of one scene, with its georeferencing."""

    probability: np.ndarray  # float32 [H, W] in [0, 1]; exactly 0 on nodata
    mask: np.ndarray  # uint8 [H, W]: 1 arable, 0 not arable or nodata
    valid: np.ndarray  # bool [H, W]
    crs: CRS
    transform: Affine
    threshold: float
    tile_size: int
    overlap: int
    n_tiles: int  # tiles run through the model
    n_tiles_skipped: int  # tiles that held only nodata

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.mask.shape[0]), int(self.mask.shape[1])


def _batches(indices: np.ndarray, batch_size: int) -> list[np.ndarray]:
    if batch_size <= 0:
        raise AgrilandError(f"batch size must be positive, got {batch_size}")
    return [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]


def segment_scene(
    raster: Raster,
    predict: Predict,
    tile_size: int,
    overlap: int = 32,
    threshold: float = 0.5,
    batch_size: int = 8,
    progress: bool = False,
    block_size: int = DEFAULT_BLOCK,
) -> SceneResult:
    """Tile, predict in batches, blend, and threshold one in-memory scene. Nodata is never arable.

    `predict` maps a uint8 [N, T, T, 3] batch to float32 [N, T, T] or [N, T, T, 1] probabilities.
    Tiles that hold only nodata are not computed. This is the windowed engine (inference.scenes.windowed) run on
    an in-memory source; `inference.scenes.segment.segment_file` runs the same engine on a file of any size.
    """
    params = WindowParams(tile_size, overlap, threshold, batch_size, block_size)
    source = ArraySource(raster.rgb, raster.valid, raster.crs, raster.transform, raster.name)
    sink = ArraySink(raster.height, raster.width)
    stats = WindowedSegmenter(source, predict, params).run([sink], progress=progress)
    return SceneResult(
        probability=sink.probability,
        mask=sink.mask,
        valid=raster.valid,
        crs=raster.crs,
        transform=raster.transform,
        threshold=threshold,
        tile_size=tile_size,
        overlap=overlap,
        n_tiles=stats.n_tiles,
        n_tiles_skipped=stats.n_tiles_skipped,
    )


def _cell_boxes(transform: Affine, ys: np.ndarray, xs: np.ndarray, tile: int, height: int, width: int) -> np.ndarray:
    """Cell rectangles in the scene CRS, clipped to the scene edge."""
    boxes = shapely.box(xs, ys, np.minimum(xs + tile, width), np.minimum(ys + tile, height))
    t = transform
    matrix = np.array([[t.a, t.d], [t.b, t.e]])
    return shapely.transform(boxes, lambda xy: xy @ matrix + np.array([t.c, t.f]))


def cluster_scene(
    raster: Raster,
    predict_q: Predict,
    tile_size: int,
    manifest: Manifest,
    batch_size: int = 16,
    progress: bool = False,
) -> dict:
    """Cluster a scene tile by tile; a GeoJSON FeatureCollection of grid cells with cluster id, name, arable flag.

    Cells are a non-overlapping grid from the top-left corner; edge cells are mirror-padded to a full tile
    and clipped to the scene in the output. Cells with only nodata are left out. `predict_q` maps a uint8
    [N, T, T, 3] batch to [N, K] soft assignments.
    """
    h, w, t = raster.height, raster.width, tile_size
    ny, nx = -(-h // t), -(-w // t)
    padded = np.pad(raster.rgb, ((0, ny * t - h), (0, nx * t - w), (0, 0)), mode="symmetric")
    cells = padded.reshape(ny, t, nx, t, 3).swapaxes(1, 2).reshape(ny * nx, t, t, 3)
    valid = np.pad(raster.valid, ((0, ny * t - h), (0, nx * t - w)), constant_values=False)
    counts = valid.reshape(ny, t, nx, t).sum(axis=(1, 3)).ravel()
    area = (np.minimum(np.arange(ny) * t + t, h) - np.arange(ny) * t)[:, None] * (
        np.minimum(np.arange(nx) * t + t, w) - np.arange(nx) * t
    )[None, :]
    fractions = counts / area.ravel()
    todo = np.flatnonzero(counts > 0)
    q = np.zeros((len(todo), 0), dtype=np.float32)
    outputs = []
    for batch in tqdm(_batches(todo, batch_size), desc="cells", unit="batch", disable=not progress):
        out = np.asarray(predict_q(np.ascontiguousarray(cells[batch])), dtype=np.float32)
        if out.ndim != 2 or out.shape[0] != len(batch):
            raise AgrilandError(f"the clustering model returned shape {out.shape}; expected [{len(batch)}, K]")
        outputs.append(out)
    if outputs:
        q = np.concatenate(outputs)
    rows, cols = todo // nx, todo % nx
    boxes = _cell_boxes(raster.transform, rows * t, cols * t, t, h, w)
    properties = []
    for k, (row, col) in enumerate(zip(rows, cols)):
        cluster = int(np.argmax(q[k]))
        properties.append(
            {
                "row": int(row),
                "col": int(col),
                "cluster": cluster,
                "name": manifest.cluster_name(cluster),
                "land_cover": manifest.land_cover(cluster),
                "cropland": manifest.is_cropland_cluster(cluster),
                "is_arable": manifest.is_arable_cluster(cluster),
                "confidence": round(float(q[k, cluster]), 6),
                "valid_fraction": round(float(fractions[todo[k]]), 6),
            }
        )
    log.info("%s: %d cells of %d px clustered, %d all-nodata left out", raster.name, len(todo), t, ny * nx - len(todo))
    return feature_collection(list(boxes), properties, raster.crs)
