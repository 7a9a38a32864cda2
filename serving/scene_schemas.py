"""Request and answer schemas of the scene endpoints (/segment_scene, /cluster_scene and their jobs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contract.radiometry import AppliedRadiometry
from inference.scenes.polygons import SceneSummary
from inference.scenes.windowed import DEFAULT_SIEVE_PX, MAX_SIEVE_PX
from serving.schemas import BANDS_HELP, SCALING_HELP, check_bands

SIEVE_PX = DEFAULT_SIEVE_PX  # default minimum region of the scene mask: 1-3 pixel specks and holes are sieved away


class SceneOptions(BaseModel):
    """Options shared by the scene endpoints (form fields, or query parameters)."""

    model_config = ConfigDict(extra="forbid")

    bands: str | None = Field(default=None, description=BANDS_HELP)
    scaling: Literal["reflectance", "percentile"] | None = Field(default=None, description=SCALING_HELP)
    wgs84: bool = Field(
        default=True,
        description="kept for old clients and ignored: GeoJSON is always RFC 7946 "
        "(EPSG:4326 lon/lat); the GeoTIFF answer keeps the scene CRS",
    )

    @field_validator("bands")
    @classmethod
    def _known_bands(cls, value: str | None) -> str | None:
        return check_bands(value)


class SegmentSceneOptions(SceneOptions):
    """Options of POST /segment_scene."""

    overlap: int | None = Field(
        default=None, ge=0, description="pixels shared by neighbouring tiles (< half the model tile); default 1/8 tile"
    )
    threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="default: the manifest's "
        "field_threshold for mask_mode=fields, its threshold for mask_mode=threshold",
    )
    mask_mode: Literal["fields", "threshold"] = Field(
        default="fields",
        description="fields: one 4-connected mask region and one polygon per field, from the "
        "field model (interior / boundary) where the service has one, else the U-Net snapped to colour edges (as "
        "`agriland segment` and `agriland batch`); threshold: the U-Net's plain per-pixel cut",
    )
    quality: Literal["fast", "best"] = Field(
        default="fast",
        description="fields from the field model: fast answers at the image's own resolution "
        "(2.5-10 m), best at half its ground size (4x the pixels; see docs/field_evaluation.md)",
    )
    min_area_ha: float = Field(default=0.0, ge=0.0, description="leave out polygons smaller than this (hectares)")
    sieve_px: int = Field(
        default=SIEVE_PX,
        ge=0,
        le=MAX_SIEVE_PX,
        description="merge every region (arable speck or hole in a field, 4-connected) of fewer than this many "
        "pixels into its surroundings (rasterio.features.sieve) before the mask raster and the polygons are made; "
        "0 or 1 keeps every pixel. The same as `agriland segment --sieve-px` and `agriland batch --sieve-px`",
    )
    simplify: float = Field(default=1.0, ge=0.0, description="polygon simplification tolerance in pixels")
    format: Literal["json", "geojson", "geotiff"] = Field(
        default="json", description="json: summary + polygons; geojson: the polygons; geotiff: the raster itself"
    )
    include_mask: bool = Field(default=False, description="json only: add the raster GeoTIFF as base64")
    include_preview: bool = Field(
        default=False,
        description="json only: add the scene as a Web Mercator PNG "
        "(at most 1024 px a side) with its lon/lat bounds, for a web map",
    )
    include_geoparquet: bool = Field(
        default=False, description="json only: add the polygons as GeoParquet 1.1 (EPSG:4326), base64"
    )
    product: Literal["mask", "probability"] = Field(
        default="mask", description="raster to return: uint8 mask (0/1, nodata 255) or float32 probability (NaN)"
    )


class ScenePreview(BaseModel):
    """A PNG of the scene in Web Mercator and the lon/lat box it covers."""

    png_base64: str = Field(description="RGBA PNG, EPSG:3857 pixels, transparent where the scene has no data")
    bounds: list[list[float]] = Field(description="[[south, west], [north, east]] in degrees (EPSG:4326)")
    width: int
    height: int


class SegmentSceneResponse(BaseModel):
    """JSON answer of POST /segment_scene."""

    model: str
    model_version: str
    name: str
    summary: SceneSummary
    threshold: float
    tile_size: int
    overlap: int
    n_tiles: int = Field(description="tiles run through the model")
    n_tiles_skipped: int = Field(description="tiles holding only nodata, not computed")
    bands: list[int]
    source_dtype: str
    radiometry: AppliedRadiometry | None = Field(
        default=None,
        description="how the scene's pixels were scaled to the model's input, where the numbers came from, any warning",
    )
    polygons: dict[str, Any] = Field(
        description="RFC 7946 GeoJSON FeatureCollection (EPSG:4326) of arable polygons, `area_ha` on each"
    )
    mask_geotiff_base64: str | None = Field(default=None, description="with include_mask: the raster GeoTIFF, base64")
    preview: ScenePreview | None = Field(default=None, description="with include_preview: the scene for a web map")
    polygons_geoparquet_base64: str | None = Field(
        default=None, description="with include_geoparquet: the polygons as GeoParquet 1.1 (EPSG:4326), base64"
    )
