"""Block sinks for windowed inference: mask/probability as tiled COGs with overviews, polygons merged across blocks."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import rasterio
import rasterio.shutil
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import shapes
from rasterio.windows import Window
from scipy import ndimage
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from contract.atomic import atomic_file
from inference.fields import FOUR_CONNECTED
from inference.scenes.outputs import MASK_NODATA
from inference.scenes.polygons import (
    RAW_POLYGON_FACTOR,
    ArablePolygons,
    TooManyPolygons,
    finish_polygons,
    valid_area_ha,
)

log = logging.getLogger(__name__)

Kind = Literal["mask", "probability"]
COG_BLOCK = 512


class CogSink:
    """Writes blocks into a tiled temporary GeoTIFF, then converts it to a COG (DEFLATE, overviews) atomically."""

    def __init__(
        self,
        path: Path | str,
        kind: Kind,
        height: int,
        width: int,
        crs: CRS,
        transform: Affine,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.path, self.kind = Path(path), kind
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part.tif", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        dtype, nodata = ("uint8", MASK_NODATA) if kind == "mask" else ("float32", float("nan"))
        profile = {
            "driver": "GTiff",
            "width": width,
            "height": height,
            "count": 1,
            "dtype": dtype,
            "nodata": nodata,
            "crs": crs,
            "transform": transform,
            "compress": "deflate",
            "zlevel": 1,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "BIGTIFF": "IF_SAFER",
        }
        self._dst = rasterio.open(self._tmp, "w", **profile)
        self._dst.update_tags(AGRILAND_PRODUCT=f"arable {kind}", **(tags or {}))

    def write(self, window: Window, probability: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> None:
        if self.kind == "mask":
            data = mask.copy()
            data[~valid] = MASK_NODATA
        else:
            data = probability.astype(np.float32, copy=True)
            data[~valid] = np.nan
        self._dst.write(data, 1, window=window)

    def close(self) -> Path:
        """Finish: the COG replaces `path` only when complete."""
        self._dst.close()
        try:
            with atomic_file(self.path, suffix=".cog.tif") as cog:
                rasterio.shutil.copy(
                    self._tmp,
                    cog,
                    driver="COG",
                    COMPRESS="DEFLATE",
                    BLOCKSIZE=COG_BLOCK,
                    OVERVIEWS="AUTO",
                    RESAMPLING="NEAREST" if self.kind == "mask" else "AVERAGE",
                    BIGTIFF="IF_SAFER",
                )
        finally:
            self._tmp.unlink(missing_ok=True)
        log.info("wrote %s (COG, %s)", self.path, self.kind)
        return self.path

    def abort(self) -> None:
        """Drop everything written so far (nothing half-written stays behind)."""
        if not self._dst.closed:
            self._dst.close()
        self._tmp.unlink(missing_ok=True)


def _merge(pieces: list[BaseGeometry]) -> BaseGeometry:
    """Union of edge-sharing, non-overlapping pixel polygons.

    A coverage union (linear time) once every outline has a vertex at each integer pixel corner, so
    pieces from neighbouring blocks are noded alike; collinear vertices are dropped after. A plain union
    (much slower on large fields with many holes) is the fallback.
    """
    try:
        noded = shapely.segmentize(np.asarray(pieces, dtype=object), 1.0)
        return shapely.simplify(shapely.coverage_union_all(noded), 0.0)
    except shapely.errors.GEOSException as err:
        log.warning("coverage union failed (%s); using a plain union", err)
        return shapely.union_all(pieces)


class PolygonSink:
    """Vectorises each block's mask in pixel coordinates; polygons that reach an inner block edge are merged.

    Pixel coordinates are integers, so outlines of neighbouring blocks meet exactly and a union joins
    them; the scene transform is applied once at the end. Each polygon carries the sum and count of the
    probability under it, so every field answered gets its mean probability (its confidence). Also sums the
    geodesic valid area per block. `vectorise=False` only sums the valid area (a raster answer). With
    `max_polygons`, TooManyPolygons is raised as soon as more complete polygons than could be answered were
    found (the service's answer cap).
    """

    def __init__(
        self,
        height: int,
        width: int,
        transform: Affine,
        crs: CRS,
        vectorise: bool = True,
        max_polygons: int | None = None,
        min_area_ha: float = 0.0,
    ) -> None:
        self.height, self.width, self.transform, self.crs = height, width, transform, crs
        self.vectorise, self.max_polygons = vectorise, max_polygons
        self._stop_at = (
            None
            if max_polygons is None
            else (max_polygons if min_area_ha <= 0 else max_polygons * RAW_POLYGON_FACTOR) + 1
        )
        self._inner: list[tuple[BaseGeometry, float, int]] = []  # polygon, probability sum, pixels
        self._edge: list[tuple[BaseGeometry, float, int]] = []
        self.valid_ha = 0.0
        self.arable_pixels = 0

    def write(self, window: Window, probability: np.ndarray, mask: np.ndarray, valid: np.ndarray) -> None:
        x0, y0 = int(window.col_off), int(window.row_off)
        x1, y1 = x0 + int(window.width), y0 + int(window.height)
        offset = Affine.translation(x0, y0)
        binary = mask.astype(np.uint8)
        if valid.any():
            self.valid_ha += valid_area_ha(valid, self.transform @ offset, self.crs)
        self.arable_pixels += int(binary.sum())
        if not self.vectorise:
            return
        labels, n = ndimage.label(binary, structure=FOUR_CONNECTED)
        sums = np.bincount(labels.ravel(), probability.ravel(), minlength=n + 1)
        counts = np.bincount(labels.ravel(), minlength=n + 1)
        for geom, value in shapes(labels.astype(np.int32), mask=binary > 0, transform=offset, connectivity=4):
            polygon, k = shape(geom), int(value)
            minx, miny, maxx, maxy = polygon.bounds
            at_edge = (
                (x0 > 0 and minx <= x0)
                or (y0 > 0 and miny <= y0)
                or (x1 < self.width and maxx >= x1)
                or (y1 < self.height and maxy >= y1)
            )
            (self._edge if at_edge else self._inner).append((polygon, float(sums[k]), int(counts[k])))
            if self._stop_at is not None and len(self._inner) >= self._stop_at:  # whole ones: a lower bound
                raise TooManyPolygons(len(self._inner) - 1, self.max_polygons or 0, exact=False)

    def _merged_edges(self) -> list[tuple[BaseGeometry, float, int]]:
        """Edge pieces unioned across blocks, each union with the probability sums of its pieces."""
        if not self._edge:
            return []
        parts = shapely.get_parts(_merge([p for p, _, _ in self._edge]))  # pixel units: a real piece covers >= 1 px
        merged = [g for g in parts if g.geom_type == "Polygon" and g.area >= 0.5]
        tree = shapely.STRtree(merged)
        sums, counts = np.zeros(len(merged)), np.zeros(len(merged), np.int64)
        points = shapely.point_on_surface(np.asarray([p for p, _, _ in self._edge], dtype=object))
        piece, target = tree.query(points, predicate="intersects")
        for i, j in zip(piece.tolist(), target.tolist()):
            sums[j] += self._edge[i][1]
            counts[j] += self._edge[i][2]
        return [(g, float(s), int(c)) for g, s, c in zip(merged, sums, counts)]

    def pixel_polygons(self) -> list[BaseGeometry]:
        """All polygons in pixel coordinates, edge pieces merged, in scan order (top-left first)."""
        return [g for g, _, _ in self._scan_order()]

    def _scan_order(self) -> list[tuple[BaseGeometry, float, int]]:
        items = self._inner + self._merged_edges()
        items.sort(key=lambda item: (item[0].bounds[1], item[0].bounds[0]))
        return items

    def polygons(self, simplify_px: float = 1.0, min_area_ha: float = 0.0) -> ArablePolygons:
        """Field polygons in the scene CRS with geodesic hectares and confidence (see polygons.finish_polygons)."""
        t = self.transform
        matrix = np.array([[t.a, t.d], [t.b, t.e]])
        items = self._scan_order()
        pixel = [g for g, _, _ in items]
        confidence = np.array([s / c if c else 0.0 for _, s, c in items], np.float32)
        crs_geoms = list(shapely.transform(np.asarray(pixel, dtype=object), lambda xy: xy @ matrix + [t.c, t.f]))
        log.info("%d polygons (%d crossed block edges before merging)", len(pixel), len(self._edge))
        polygons = finish_polygons(crs_geoms, t, self.crs, simplify_px, min_area_ha, confidence)
        if self.max_polygons is not None and len(polygons.geometries) > self.max_polygons:
            raise TooManyPolygons(len(polygons.geometries), self.max_polygons)
        return polygons
