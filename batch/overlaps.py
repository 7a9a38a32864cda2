"""Overlapping scenes in the merged polygons: every place is answered by one scene, so no hectare counts twice."""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from pyproj import Geod
from rasterio.enums import Resampling
from rasterio.features import shapes
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from inference.scenes.polygons import WGS84, to_crs
from inference.scenes.sinks import MASK_NODATA

log = logging.getLogger(__name__)

FOOTPRINT_MAX_SIDE = 2048  # the valid footprint is traced on the mask COG's overviews, at most this many px a side
_GEOD = Geod(ellps="WGS84")


def valid_footprint(mask_path: Path) -> BaseGeometry:
    """Where a scene has data (mask != nodata), in EPSG:4326, traced on a decimated read of its mask COG."""
    with rasterio.open(mask_path) as ds:
        scale = max(1.0, max(ds.width, ds.height) / FOOTPRINT_MAX_SIDE)
        shape_out = (max(1, round(ds.height / scale)), max(1, round(ds.width / scale)))
        mask = ds.read(1, out_shape=shape_out, resampling=Resampling.nearest)
        transform = ds.transform * ds.transform.scale(ds.width / shape_out[1], ds.height / shape_out[0])
        valid = (mask != MASK_NODATA).astype(np.uint8)
        parts = [shape(g) for g, _ in shapes(valid, mask=valid > 0, transform=transform)]
        native = shapely.union_all(parts) if parts else shapely.Polygon()
        return to_crs([native], ds.crs)[0] if not native.is_empty else native


def geodesic_ha(geometry: BaseGeometry) -> float:
    """Area of a lon/lat (multi)polygon on the WGS84 ellipsoid, in hectares."""
    parts = [g for g in shapely.get_parts(geometry) if g.geom_type == "Polygon" and not g.is_empty]
    return sum(abs(_GEOD.geometry_area_perimeter(orient(p, 1.0))[0]) for p in parts) / 10_000


def _polygonal(geometry: BaseGeometry) -> BaseGeometry:
    """The polygon parts of an intersection result (lines and points where pieces only touch are dropped)."""
    parts = [g for g in shapely.get_parts(geometry) if g.geom_type == "Polygon" and not g.is_empty]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def overlap_ha(footprints: list[BaseGeometry]) -> float:
    """Hectares covered by more than one footprint, counted once per extra cover (sum minus union)."""
    if len(footprints) < 2:
        return 0.0
    return max(0.0, sum(geodesic_ha(f) for f in footprints) - geodesic_ha(shapely.union_all(footprints)))


def resolve_overlaps(frames: list[gpd.GeoDataFrame], footprints: list[BaseGeometry]) -> gpd.GeoDataFrame:
    """Merge per-scene polygons (EPSG:4326, in input order) so overlapping scenes count each place once.

    Scene k answers only where no earlier scene has data (its footprint minus theirs); pieces of one field
    cut at such a border are joined again (they share an edge). Areas of changed polygons are measured anew.
    """
    taken: BaseGeometry = shapely.Polygon()
    pieces: list[dict] = []
    for frame, footprint in zip(frames, footprints):
        own = footprint.difference(taken) if not taken.is_empty else footprint
        taken = shapely.union(taken, footprint) if not taken.is_empty else footprint
        overlapping = not footprint.equals(own)
        for record in frame.to_dict("records"):
            geometry = record["geometry"]
            if overlapping and not own.contains(geometry):
                geometry = _polygonal(geometry.intersection(own))
                if geometry.is_empty:
                    continue
                record = {**record, "geometry": geometry, "area_ha": round(geodesic_ha(geometry), 6)}
            pieces.append(record)
    if not pieces:
        return gpd.GeoDataFrame(frames[0].iloc[:0] if frames else None, crs=WGS84)
    merged = _join_cut_fields(pieces)
    return gpd.GeoDataFrame(pd.DataFrame(merged), geometry="geometry", crs=WGS84)


def _join_cut_fields(pieces: list[dict]) -> list[dict]:
    """Union pieces of different scenes that share an edge (one field cut by an ownership border); the joined
    polygon keeps the first scene's `scene_id` and lists every scene it came from in `scene_ids`."""
    geometries = [p["geometry"] for p in pieces]
    tree = shapely.STRtree(geometries)
    parent = list(range(len(pieces)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    left, right = tree.query(geometries, predicate="intersects")
    for i, j in zip(left.tolist(), right.tolist()):
        if i < j and pieces[i]["scene_id"] != pieces[j]["scene_id"]:
            if geometries[i].intersection(geometries[j]).length > 0:  # an edge, not a corner
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(pieces)):
        groups.setdefault(find(i), []).append(i)
    out = []
    for members in sorted(groups.values(), key=min):
        if len(members) == 1:
            out.append({**pieces[members[0]], "scene_ids": pieces[members[0]]["scene_id"]})
            continue
        geometry = shapely.union_all([geometries[i] for i in members])
        first = pieces[min(members)]
        scene_ids = sorted({pieces[i]["scene_id"] for i in members})
        out.append(
            {
                **first,
                "geometry": geometry,
                "scene_ids": ",".join(scene_ids),
                "area_ha": round(geodesic_ha(geometry), 6),
            }
        )
    log.info("%d polygon pieces -> %d polygons after joining fields cut at scene borders", len(pieces), len(out))
    return out
