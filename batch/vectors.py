"""Batch vector outputs: per-scene polygons as GeoParquet (+ FlatGeobuf/GeoPackage/GeoJSON), merged, summarised."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd

from contract.atomic import atomic_file
from inference.scenes.polygons import WGS84, ArablePolygons

log = logging.getLogger(__name__)

VectorFormat = Literal["parquet", "fgb", "gpkg", "geojson"]
VECTOR_FORMATS: tuple[VectorFormat, ...] = ("parquet", "fgb", "gpkg", "geojson")
FILE_NAMES: dict[VectorFormat, str] = {
    "parquet": "polygons.parquet",
    "fgb": "polygons.fgb",
    "gpkg": "polygons.gpkg",
    "geojson": "polygons.geojson",
}
_DRIVERS = {"fgb": "FlatGeobuf", "gpkg": "GPKG", "geojson": "GeoJSON"}


def polygons_frame(polygons: ArablePolygons, scene_id: str, model_version: str, model_sha256: str) -> gpd.GeoDataFrame:
    """One row per field polygon, in the scene CRS: area_ha, scene_id, model version and checksum."""
    n = len(polygons.geometries)
    return gpd.GeoDataFrame(
        {
            "scene_id": [scene_id] * n,
            "polygon_id": list(range(n)),
            "area_ha": polygons.areas_ha.round(6),
            "confidence": (polygons.confidence if polygons.confidence is not None else np.full(n, np.nan)).round(4),
            "class": ["arable"] * n,
            "model_version": [model_version] * n,
            "model_sha256": [model_sha256] * n,
        },
        geometry=gpd.GeoSeries(polygons.geometries, crs=polygons.crs.to_wkt()),
    )


def _atomic(path: Path, write) -> Path:
    """Write through a temporary sibling that the driver creates itself, then rename into place."""
    with atomic_file(path, suffix=path.suffix, placeholder=False) as tmp:
        write(tmp)
    return path


def write_vectors(frame: gpd.GeoDataFrame, folder: Path, formats: tuple[VectorFormat, ...]) -> dict[str, Path]:
    """Write each requested format into `folder`; GeoJSON is RFC 7946 (EPSG:4326), the others keep the scene CRS."""
    written: dict[str, Path] = {}
    for fmt in formats:
        path = folder / FILE_NAMES[fmt]
        if fmt == "parquet":
            _atomic(path, lambda tmp: frame.to_parquet(tmp, index=False, schema_version="1.1.0"))
        elif fmt == "geojson":
            _atomic(
                path,
                lambda tmp: frame.to_crs(WGS84).to_file(
                    tmp, driver="GeoJSON", engine="pyogrio", layer="arable", RFC7946="YES"
                ),
            )
        else:
            _atomic(path, lambda tmp, f=fmt: frame.to_file(tmp, driver=_DRIVERS[f], engine="pyogrio", layer="arable"))
        written[fmt] = path
    return written


def merge_polygons(scenes: list[tuple[Path, Path]], out: Path) -> tuple[Path, float]:
    """All scenes' polygons (parquet, mask COG pairs in input order) in one GeoParquet in EPSG:4326.

    Where scenes overlap, the earlier scene answers (see batch.overlaps): no polygon is listed twice and
    no hectare counted twice. Returns the file and the hectares of valid area that scenes share.
    """
    from batch.overlaps import overlap_ha, resolve_overlaps, valid_footprint

    frames = [gpd.read_parquet(p).to_crs(WGS84) for p, _ in scenes]
    footprints = [valid_footprint(m) for _, m in scenes]
    shared_ha = overlap_ha(footprints)
    if frames and shared_ha > 0:
        log.info(
            "scenes share %.2f ha of valid area: each place is answered by the first scene that covers it", shared_ha
        )
        merged = resolve_overlaps(frames, footprints)
    elif frames:
        merged = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=WGS84)
    else:
        columns = {c: [] for c in ("scene_id", "polygon_id", "area_ha", "class", "model_version", "model_sha256")}
        merged = gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries([], crs=WGS84))
    if "scene_ids" not in merged.columns:  # every scene a polygon came from (several where fields were joined)
        merged["scene_ids"] = merged["scene_id"].astype(str)
    path = _atomic(out, lambda tmp: merged.to_parquet(tmp, index=False, schema_version="1.1.0"))
    return path, shared_ha


def write_summary(
    rows: list[dict], out_csv: Path, merged_arable_ha: float | None = None, shared_valid_ha: float = 0.0
) -> Path:
    """Arable hectares per scene and in total (a CSV an analyst opens in a spreadsheet).

    The TOTAL row counts overlapping scenes once: its arable hectares are those of the merged polygons and
    its valid hectares leave out what scenes share.
    """
    columns = ["scene_id", "status", "arable_ha", "valid_ha", "arable_fraction", "n_polygons", "seconds", "error"]
    table = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)
    done = table[table["status"].isin(["ok", "skipped"])]
    total = {
        "scene_id": "TOTAL",
        "status": f"{len(done)} ok / {len(table)}",
        "arable_ha": round(
            float(done["arable_ha"].fillna(0).sum()) if merged_arable_ha is None else merged_arable_ha, 6
        ),
        "valid_ha": round(max(0.0, float(done["valid_ha"].fillna(0).sum()) - shared_valid_ha), 6),
        "n_polygons": int(done["n_polygons"].fillna(0).sum()),
    }
    total["arable_fraction"] = round(total["arable_ha"] / total["valid_ha"], 6) if total["valid_ha"] else 0.0
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return _atomic(out_csv, lambda tmp: table.to_csv(tmp, index=False))
