"""Mask to field polygons: vectorise, simplify, geodesic hectares of the returned outline, RFC 7946 GeoJSON."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine
from pydantic import BaseModel, Field
from pyproj import CRS as ProjCRS
from pyproj import Geod, Transformer
from rasterio.crs import CRS
from rasterio.features import shapes, sieve
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from contract.errors import AgrilandError

log = logging.getLogger(__name__)

WGS84 = "EPSG:4326"
AREA_METHOD = "geodesic area on the WGS84 ellipsoid (pyproj.Geod)"
_GEOD = Geod(ellps="WGS84")
_M2_PER_HA = 10_000.0
_DENSIFY_PX = 32.0  # extra vertices every 32 px before reprojection, so long straight edges stay faithful
RAW_POLYGON_FACTOR = 10  # with min_area_ha > 0, vectorising stops past this many times the polygon cap
GEOJSON_DECIMALS = 7  # RFC 7946 section 11.2: ~1 cm in degrees, far below a pixel of any satellite scene


class TooManyPolygons(AgrilandError):
    """More polygons than an answer may carry (`count` is a lower bound when `exact` is False)."""

    def __init__(self, count: int, limit: int, exact: bool = True) -> None:
        self.count, self.limit, self.exact = count, limit, exact
        super().__init__(f"{'' if exact else 'more than '}{count:,} polygons, over the limit of {limit:,}")


class SceneSummary(BaseModel):
    """Areas of one segmented scene."""

    arable_ha: float
    valid_ha: float
    arable_fraction: float  # of the valid (not nodata) area
    n_polygons: int
    min_area_ha: float
    sieve_px: int = Field(default=0, description="regions of fewer pixels were sieved away before polygonising")
    width: int
    height: int
    crs: str
    area_method: str = AREA_METHOD


@dataclass
class ArablePolygons:
    """Field polygons in the scene CRS with their areas."""

    geometries: list[BaseGeometry]
    areas_ha: np.ndarray  # float64 [n]
    crs: CRS
    confidence: np.ndarray | None = None  # float32 [n]: mean arable probability of each field, where known


def _pixel_size(transform: Affine) -> float:
    """Side of a square with one pixel's area, in CRS units."""
    return float(abs(transform.determinant) ** 0.5)


def to_crs(geometries: list[BaseGeometry], src: CRS, dst: str = WGS84) -> list[BaseGeometry]:
    """Reproject shapely geometries (x, y order on both sides)."""
    if not geometries:
        return []
    transformer = Transformer.from_crs(
        ProjCRS.from_user_input(src.to_wkt()), ProjCRS.from_user_input(dst), always_xy=True
    )

    def _apply(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return list(shapely.transform(np.asarray(geometries, dtype=object), _apply))


def geodesic_areas_ha(geometries: list[BaseGeometry], crs: CRS, transform: Affine) -> np.ndarray:
    """Area of each polygon in hectares, measured on the WGS84 ellipsoid (exact for any input CRS)."""
    if not geometries:
        return np.zeros(0)
    dense = list(shapely.segmentize(np.asarray(geometries, dtype=object), _DENSIFY_PX * _pixel_size(transform)))
    areas = []
    for geom in to_crs(dense, crs):
        parts = getattr(geom, "geoms", [geom])
        areas.append(sum(abs(_GEOD.geometry_area_perimeter(orient(p, 1.0))[0]) for p in parts))
    return np.asarray(areas, dtype=np.float64) / _M2_PER_HA


def sieve_mask(mask: np.ndarray, sieve_px: int, valid: np.ndarray | None = None) -> np.ndarray:
    """The 0/1 mask with every 4-connected region of fewer than `sieve_px` pixels merged into its
    surroundings (`rasterio.features.sieve`): arable specks vanish, small holes in fields are filled.

    Nodata counts as not arable while sieving (a speck amid nodata is a speck too) and stays not arable
    after it (`valid` False). `sieve_px` <= 1 returns the mask unchanged.
    """
    binary = mask.astype(np.uint8)
    if sieve_px <= 1:
        return binary
    sieved = sieve(binary, size=int(sieve_px), connectivity=4)
    if valid is not None:
        sieved[~valid.astype(bool)] = 0
    return sieved


def _vectorise(mask: np.ndarray, transform: Affine, limit: int | None = None) -> list[BaseGeometry]:
    """Polygons of the 1-pixels of a mask (4-connected), in CRS coordinates; the first `limit` only."""
    binary = mask.astype(np.uint8)
    geoms: list[BaseGeometry] = []
    for geom, _ in shapes(binary, mask=binary > 0, transform=transform, connectivity=4):
        if limit is not None and len(geoms) >= limit:
            break
        geoms.append(shape(geom))
    return geoms


def extract_polygons(
    mask: np.ndarray,
    transform: Affine,
    crs: CRS,
    simplify_px: float = 1.0,
    min_area_ha: float = 0.0,
    sieve_px: int = 0,
    valid: np.ndarray | None = None,
    max_polygons: int | None = None,
) -> ArablePolygons:
    """Vectorise a 0/1 mask, simplify by `simplify_px` pixels (topology kept), drop polygons under `min_area_ha`.

    Regions of fewer than `sieve_px` pixels are sieved away first (see `sieve_mask`). Areas are measured on
    the returned (simplified) geometries. More than `max_polygons` left raises TooManyPolygons, as
    soon as vectorising has produced that many (min_area_ha 0) or ten times that many (min_area_ha > 0).
    """
    mask = sieve_mask(mask, sieve_px, valid)
    limit = None
    if max_polygons is not None:
        limit = (max_polygons if min_area_ha <= 0 else max_polygons * RAW_POLYGON_FACTOR) + 1
    geoms = _vectorise(mask, transform, limit)
    if limit is not None and len(geoms) >= limit:  # stopped early: too many either way
        raise TooManyPolygons(len(geoms) - 1, max_polygons or 0, exact=False)
    polygons = finish_polygons(geoms, transform, crs, simplify_px, min_area_ha)
    if max_polygons is not None and len(polygons.geometries) > max_polygons:
        raise TooManyPolygons(len(polygons.geometries), max_polygons)
    return polygons


def finish_polygons(
    geoms: list[BaseGeometry],
    transform: Affine,
    crs: CRS,
    simplify_px: float = 1.0,
    min_area_ha: float = 0.0,
    confidence: np.ndarray | None = None,
) -> ArablePolygons:
    """Exact pixel-outline polygons in CRS coordinates -> simplified, geodesic hectares, small ones dropped.

    Areas are measured on the simplified outline, the very geometry every answer returns, so a GIS user who
    measures a returned polygon finds its `area_ha` (simplify_px=0 keeps the exact pixel outline).
    """
    if simplify_px > 0 and geoms:
        tolerance = simplify_px * _pixel_size(transform)
        geoms = list(shapely.simplify(np.asarray(geoms, dtype=object), tolerance, preserve_topology=True))
    areas = geodesic_areas_ha(geoms, crs, transform)
    keep = (areas >= min_area_ha) & np.array([not g.is_empty for g in geoms], dtype=bool)
    log.info("%d polygons, %d kept at >= %.4f ha", len(geoms), int(keep.sum()), min_area_ha)
    kept_confidence = None if confidence is None else np.asarray(confidence, np.float32)[keep]
    return ArablePolygons([g for g, k in zip(geoms, keep) if k], areas[keep], crs, kept_confidence)


def valid_area_ha(valid: np.ndarray, transform: Affine, crs: CRS) -> float:
    """Hectares of the valid (not nodata) part of a scene."""
    return float(geodesic_areas_ha(_vectorise(valid, transform), crs, transform).sum())


def _rfc7946(geometry: BaseGeometry) -> BaseGeometry:
    """Lon/lat rounded to GEOJSON_DECIMALS, polygons wound right-hand (exterior counter-clockwise, holes clockwise)."""
    rounded = shapely.transform(geometry, lambda xy: np.round(xy, GEOJSON_DECIMALS))
    if rounded.geom_type == "Polygon":
        return orient(rounded, 1.0)
    if rounded.geom_type == "MultiPolygon":
        return shapely.MultiPolygon([orient(p, 1.0) for p in rounded.geoms])
    return rounded


def feature_collection(geometries: list[BaseGeometry], properties: list[dict], crs: CRS) -> dict:
    """An RFC 7946 GeoJSON FeatureCollection dict: EPSG:4326 lon/lat, right-hand winding, no `crs` member.

    The scene's own CRS is kept only by the raster and table outputs (GeoTIFF, GeoParquet, FlatGeobuf).
    """
    lonlat = to_crs(geometries, crs) if CRS.from_user_input(crs) != CRS.from_epsg(4326) else list(geometries)
    features = [
        {"type": "Feature", "id": k, "geometry": mapping(_rfc7946(g)), "properties": p}
        for k, (g, p) in enumerate(zip(lonlat, properties))
    ]
    return {"type": "FeatureCollection", "features": features}


def polygons_geojson(polygons: ArablePolygons) -> dict:
    """RFC 7946 GeoJSON of field polygons: one feature per field with `area_ha` (of that very outline) and
    `confidence` where known; `field_id` (also the feature id) numbers the fields in scan order."""
    props = [{"field_id": k, "class": "arable", "area_ha": round(float(a), 6)} for k, a in enumerate(polygons.areas_ha)]
    if polygons.confidence is not None:
        for prop, c in zip(props, polygons.confidence):
            prop["confidence"] = round(float(c), 4)
    return feature_collection(polygons.geometries, props, polygons.crs)


def summarize(
    polygons: ArablePolygons, valid: np.ndarray, transform: Affine, crs: CRS, min_area_ha: float = 0.0
) -> SceneSummary:
    """Total arable hectares (the listed polygons), valid hectares and the arable fraction of the valid area."""
    return scene_summary_of(
        polygons, valid_area_ha(valid, transform, crs), int(valid.shape[1]), int(valid.shape[0]), crs, min_area_ha
    )


def scene_summary_of(
    polygons: ArablePolygons, valid_ha: float, width: int, height: int, crs: CRS, min_area_ha: float
) -> SceneSummary:
    """The summary of a scene's polygons against its valid area (one rule for in-memory and windowed scenes)."""
    arable_ha = float(polygons.areas_ha.sum())
    return SceneSummary(
        arable_ha=round(arable_ha, 6),
        valid_ha=round(valid_ha, 6),
        arable_fraction=round(arable_ha / valid_ha, 6) if valid_ha > 0 else 0.0,
        n_polygons=len(polygons.geometries),
        min_area_ha=min_area_ha,
        width=width,
        height=height,
        crs=crs.to_string(),
    )
