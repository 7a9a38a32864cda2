"""Optional parts of a /segment_scene JSON answer for the map page: a web preview of the scene and GeoParquet.

`include_preview`: the scene's RGB (the model's radiometry, nodata transparent) decimated to at most
PREVIEW_SIDE pixels a side and warped to Web Mercator, as a PNG with its lon/lat bounds, so a web map lays it
under the answer's polygons without any projection code in the browser. `include_geoparquet`: the answer's
polygons as GeoParquet 1.1 (EPSG:4326, written by geopandas), the same features as the GeoJSON answer.
"""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image
from rasterio.crs import CRS
from rasterio.transform import Affine, array_bounds
from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

from serving.scene_schemas import ScenePreview

PREVIEW_SIDE = 1024
WEB_MERCATOR = CRS.from_epsg(3857)


def preview_step(height: int, width: int, max_side: int = PREVIEW_SIDE) -> int:
    """Source pixels per preview pixel: the decimation `GeoTiffSource.preview` applies."""
    return max(1, -(-max(height, width) // max_side))


def web_preview(
    rgb: np.ndarray,
    valid: np.ndarray,
    crs: CRS,
    transform: Affine,
    height: int,
    width: int,
    max_side: int = PREVIEW_SIDE,
) -> ScenePreview:
    """Warp a decimated scene preview (uint8 [h, w, 3] + valid) to EPSG:3857 and encode it as a PNG."""
    step = preview_step(height, width, max_side)
    src_transform = transform * Affine.scale(step)
    h, w = valid.shape
    rgba = np.concatenate([rgb, np.where(valid, 255, 0).astype(np.uint8)[..., None]], axis=-1)
    west, south, east, north = array_bounds(h, w, src_transform)
    dst_transform, dst_w, dst_h = calculate_default_transform(crs, WEB_MERCATOR, w, h, west, south, east, north)
    out = np.zeros((4, dst_h, dst_w), np.uint8)
    reproject(
        np.moveaxis(rgba, -1, 0),
        out,
        src_transform=src_transform,
        src_crs=crs,
        dst_transform=dst_transform,
        dst_crs=WEB_MERCATOR,
        resampling=Resampling.nearest,
        src_nodata=None,
        dst_nodata=0,
    )
    mwest, msouth, meast, mnorth = array_bounds(dst_h, dst_w, dst_transform)
    lon0, lat0, lon1, lat1 = transform_bounds(WEB_MERCATOR, "EPSG:4326", mwest, msouth, meast, mnorth)
    buffer = io.BytesIO()
    Image.fromarray(np.moveaxis(out, 0, -1), "RGBA").save(buffer, format="PNG", optimize=False)
    return ScenePreview(
        png_base64=base64.b64encode(buffer.getvalue()).decode("ascii"),
        bounds=[[lat0, lon0], [lat1, lon1]],
        width=dst_w,
        height=dst_h,
    )


def geoparquet_base64(collection: dict) -> str:
    """An RFC 7946 FeatureCollection as GeoParquet 1.1 (EPSG:4326), base64; every property becomes a column."""
    import geopandas as gpd  # imported here: only answers that ask for GeoParquet pay for it

    features = collection.get("features", [])
    frame = gpd.GeoDataFrame.from_features(features, crs="EPSG:4326")
    if frame.empty:
        frame = gpd.GeoDataFrame({"field_id": []}, geometry=gpd.GeoSeries([], crs="EPSG:4326"))
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, schema_version="1.1.0")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
