"""Field polygons a user brings -> images with one instance label per field (VIA JSON, or GeoJSON / GeoPackage /
GeoParquet vectors over GeoTIFFs), with clear errors for a missing image, an empty file or a polygon outside its
image."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from contract.errors import AgrilandError
from training.annotations import read_via, region_mask

log = logging.getLogger(__name__)

VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".parquet", ".geoparquet", ".fgb", ".shp")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclass
class FieldImage:
    """One training / evaluation image: uint8 RGB, the drawn fields as instance labels (0 = not field), its GSD."""

    name: str
    rgb: np.ndarray  # uint8 [h, w, 3]
    instances: np.ndarray  # int32 [h, w]: 0 = not a field, k = field k
    gsd_m: float

    @property
    def n_fields(self) -> int:
        return int(len(np.unique(self.instances[self.instances > 0])))


def _read_rgb(path: Path) -> np.ndarray:
    if not path.is_file():
        raise AgrilandError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise AgrilandError(f"cannot read image {path}: {err}") from err


def read_via_fields(via_json: Path | str, images: Path | str, gsd_m: float = 1.0) -> list[FieldImage]:
    """Every image of a VIA export with its polygons as field instances (all regions are fields).

    `images` is the folder the VIA file names its images in; a listed image that is missing is an error, so is a
    region wholly outside its image or an export without any region."""
    via_json, images = Path(via_json), Path(images)
    if not images.is_dir():
        raise AgrilandError(f"image folder not found: {images}")
    if gsd_m <= 0:
        raise AgrilandError(f"the ground resolution must be positive, got {gsd_m} m")
    entries = read_via(via_json)
    if not any(entry.regions for entry in entries):
        raise AgrilandError(f"{via_json} has no field polygons (every image has an empty region list)")
    out: list[FieldImage] = []
    for entry in entries:
        rgb = _read_rgb(images / entry.filename)
        labels = np.zeros(rgb.shape[:2], dtype=np.int32)
        for k, region in enumerate(entry.regions, start=1):
            where = f"{via_json.name}: image {entry.filename!r}, region {k - 1}"
            labels[region_mask(region.get("shape_attributes"), *rgb.shape[:2], where)] = k
        out.append(FieldImage(Path(entry.filename).stem, rgb, labels, float(gsd_m)))
    log.info("%s: %d images, %d fields", via_json.name, len(out), sum(i.n_fields for i in out))
    return out


def _raster_rgb(path: Path) -> tuple[np.ndarray, object, object, float]:
    """uint8 RGB of a GeoTIFF (by the default radiometry contract), its CRS, transform and pixel size in metres."""
    import rasterio

    from contract.radiometry import to_model_input
    from inference.scenes.ground_resolution import pixel_size_m

    if not path.is_file():
        raise AgrilandError(f"image not found: {path}")
    try:
        with rasterio.open(path) as ds:
            if ds.count < 3:
                raise AgrilandError(f"{path} has {ds.count} band(s); field training needs RGB (3 bands)")
            data = np.moveaxis(ds.read([1, 2, 3]), 0, -1)
            crs, transform = ds.crs, ds.transform
            nodata = ds.nodata
    except rasterio.errors.RasterioIOError as err:
        raise AgrilandError(f"cannot read raster {path}: {err}") from err
    if crs is None:
        raise AgrilandError(f"{path} has no CRS: vector fields cannot be placed on it")
    valid = np.ones(data.shape[:2], bool) if nodata is None else ~(data == nodata).all(-1)
    rgb = data if data.dtype == np.uint8 else to_model_input(data, valid=valid)
    gsd = pixel_size_m(crs, transform, *data.shape[:2]) or 1.0
    return np.ascontiguousarray(rgb), crs, transform, float(gsd)


def read_vector_fields(vectors: Path | str, rasters: list[Path | str]) -> list[FieldImage]:
    """Field polygons of a GeoJSON / GeoPackage / GeoParquet / FlatGeobuf file over one or more GeoTIFFs.

    Polygons are reprojected to each raster's CRS and burnt in as one instance each; a polygon that meets no raster
    is an error (wrong CRS or wrong file), as is a file without polygons."""
    import geopandas as gpd
    from rasterio.features import rasterize
    from shapely.geometry import box

    vectors = Path(vectors)
    if not vectors.is_file():
        raise AgrilandError(f"field polygons not found: {vectors}")
    if not rasters:
        raise AgrilandError("vector field polygons need at least one GeoTIFF (--images)")
    try:
        frame = (
            gpd.read_parquet(vectors)
            if vectors.suffix.lower() in (".parquet", ".geoparquet")
            else gpd.read_file(vectors)
        )
    except Exception as err:  # noqa: BLE001 - pyogrio/pyarrow raise many kinds; the user needs the reason
        raise AgrilandError(f"cannot read field polygons from {vectors}: {err}") from err
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    frame = frame[frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if frame.empty:
        raise AgrilandError(f"{vectors} holds no field polygons")
    if frame.crs is None:
        raise AgrilandError(f"{vectors} has no CRS: write it with one (GeoJSON is EPSG:4326 by definition)")
    used = np.zeros(len(frame), bool)
    out: list[FieldImage] = []
    for raster in map(Path, rasters):
        rgb, crs, transform, gsd = _raster_rgb(raster)
        h, w = rgb.shape[:2]
        local = frame.to_crs(crs)
        left, top = transform @ (0, 0)
        right, bottom = transform @ (w, h)
        footprint = box(min(left, right), min(top, bottom), max(left, right), max(top, bottom))
        hits = np.flatnonzero(local.intersects(footprint).to_numpy())
        used[hits] = True
        shapes = [(geom, k) for k, geom in enumerate(local.geometry.iloc[hits], start=1)]
        labels = (
            rasterize(shapes, out_shape=(h, w), transform=transform, fill=0, dtype="int32")
            if shapes
            else np.zeros((h, w), np.int32)
        )
        out.append(FieldImage(raster.stem, rgb, labels, gsd))
    if not used.all():
        outside = np.flatnonzero(~used)
        raise AgrilandError(
            f"{vectors}: {len(outside)} polygon(s) lie outside every image (first: row "
            f"{int(outside[0])}); check the CRS and the --images given"
        )
    log.info("%s: %d images, %d fields", vectors.name, len(out), sum(i.n_fields for i in out))
    return out


def read_fields(
    polygons: Path | str, images: Path | str | list[Path | str], gsd_m: float | None = None
) -> list[FieldImage]:
    """Field images from what a user brings: a VIA JSON with an image folder, or vectors with GeoTIFF(s)."""
    polygons = Path(polygons)
    if not polygons.is_file():
        raise AgrilandError(f"field polygons not found: {polygons}")
    paths = [Path(p) for p in (images if isinstance(images, list) else [images])]
    if polygons.suffix.lower() == ".json" and _is_via(polygons):
        if len(paths) != 1:
            raise AgrilandError("a VIA export takes one image folder (--images DIR)")
        return read_via_fields(polygons, paths[0], gsd_m or 1.0)
    if polygons.suffix.lower() not in VECTOR_SUFFIXES:
        raise AgrilandError(f"{polygons}: unknown polygon format; give a VIA .json, .geojson, .gpkg or .parquet")
    rasters: list[Path] = []
    for path in paths:
        if path.is_dir():
            rasters += sorted(p for p in path.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
        else:
            rasters.append(path)
    if not rasters:
        raise AgrilandError(f"no GeoTIFF found in {', '.join(map(str, paths))}")
    return read_vector_fields(polygons, rasters)


def _is_via(path: Path) -> bool:
    """A VIA export (dict of {filename, regions} or a project) rather than GeoJSON."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AgrilandError(f"{path} is not valid JSON: {err}") from err
    if isinstance(data, dict) and data.get("type") in ("FeatureCollection", "Feature"):
        return False
    return True
