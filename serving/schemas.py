"""Pydantic request/response models of /cluster, /segment and the scene endpoints, and the API error."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contract.errors import AgrilandError
from inference.scenes.geo import BAND_PRESETS, parse_bands


class ApiError(Exception):
    """A request the service refuses: HTTP status, a clear message, optional Retry-After seconds."""

    def __init__(self, status: int, message: str, retry_after_s: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s
        self.detail = detail


class TileIn(BaseModel):
    """One tile as base64 (standard alphabet, optionally a data: URL) of a PNG, JPEG or TIFF file."""

    model_config = ConfigDict(extra="forbid")

    image_b64: str = Field(min_length=1, description="base64 of the image file's bytes")
    name: str | None = Field(default=None, max_length=256, description="echoed back in the result")


BANDS_HELP = (
    "R,G,B band numbers (1-based) like 4,3,2, or a preset: "
    + ", ".join(BAND_PRESETS)
    + " (default 1,2,3; 4,3,2 for 12/13-band Sentinel-2 stacks)"
)


SCALING_HELP = (
    "16-bit/float bands: reflectance (DN/10000, rendered as the model's training tiles) or a 2-98 % "
    "percentile stretch; default: the model manifest's radiometry"
)


def check_bands(value: str | None) -> str | None:
    """A band spec that `parse_bands` accepts (pydantic turns the ValueError into a 400 naming the field)."""
    try:
        parse_bands(value)
    except AgrilandError as err:
        raise ValueError(str(err)) from err
    return value


class PixelOptions(BaseModel):
    """How a tile's pixels become the model's input (defaults: the model manifest's radiometry contract)."""

    model_config = ConfigDict(extra="forbid")

    bands: str | None = Field(default=None, description=BANDS_HELP)
    scaling: Literal["reflectance", "percentile"] | None = Field(default=None, description=SCALING_HELP)
    # ge, not gt: OpenAPI 3.0 (BentoML's /docs.json) has no numeric exclusiveMinimum
    gsd: float | None = Field(
        default=None,
        ge=0.001,
        le=10000,
        description="metres per pixel of the tile; it is "
        "resampled to the model's ground resolution (manifest radiometry.gsd_m) first",
    )

    @field_validator("bands")
    @classmethod
    def _known_bands(cls, value: str | None) -> str | None:
        return check_bands(value)


class ClusterOptions(PixelOptions):
    """Options of /cluster (JSON body fields, or multipart form fields)."""

    top_k: int = Field(default=3, ge=1, le=100, description="how many clusters to list with probabilities")
    include_embedding: bool = Field(default=False, description="return the DEC embedding of each tile")
    fit: Literal["auto", "pad", "resize"] = Field(
        default="resize", description="how tiles of another size reach the model size"
    )


class SegmentOptions(PixelOptions):
    """Options of /segment (JSON body fields, or multipart form fields)."""

    threshold: float | None = Field(default=None, ge=0.0, le=1.0, description="default: the manifest's threshold")
    fit: Literal["auto", "pad", "resize"] = Field(
        default="auto", description="auto pads tiles up to the model size and resizes larger ones"
    )
    include_probability: bool = Field(
        default=True, description="add the mean arable probability (a ranking score that does not depend on the cut)"
    )
    mask_mode: Literal["fields", "threshold"] = Field(
        default="fields",
        description="fields: one 4-connected mask region per field (touching fields are split by "
        "a 1-px line), from the field model where the service has one, else the probability snapped to colour "
        "edges; threshold: the U-Net's plain cut",
    )
    crop_veto: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="with a field model: answer only the fields whose mean U-Net arable "
        "probability reaches this (default: the U-Net's field_threshold, so a tile's arable_fraction ranks cropland; "
        "0: every field the field model finds, as /segment_scene answers; docs/field_evaluation.md has the trade-off)",
    )
    include_fields: bool = Field(
        default=False,
        description="add the instance mask (16-bit PNG, 0 = not field, "
        "k = field k) and per-field id, pixels, hectares and confidence",
    )
    mask_encoding: Literal["both", "png", "rle"] = Field(
        default="both", description="which mask encodings the JSON answer carries (each one costs time to compute)"
    )


class ClusterScore(BaseModel):
    cluster: int
    probability: float
    name: str | None


class ClusterResult(BaseModel):
    """DEC verdict for one tile."""

    name: str | None = Field(description="the tile's name or uploaded file name")
    width: int
    height: int
    cluster: int
    confidence: float = Field(description="soft-assignment probability of the chosen cluster")
    cluster_name: str | None = Field(description="from the manifest's cluster names; null when unnamed")
    land_cover: str | None = Field(
        default=None,
        description="the cluster's land cover: annual_crop, "
        "permanent_crop, cropland, pasture, forest, water, built_up, ... (from its name)",
    )
    cropland: bool = Field(default=False, description="annual or permanent crops (the manifest's cropland_classes)")
    is_arable: bool = Field(
        description="FAO arable land: annual (temporary) crops only; permanent crops such as "
        "orchards and vineyards are cropland but not arable (the manifest's arable_classes)"
    )
    top_k: list[ClusterScore]
    embedding: list[float] | None = None


class ClusterResponse(BaseModel):
    model: str
    model_version: str
    n_clusters: int
    results: list[ClusterResult]


class RleMask(BaseModel):
    """Row-major run lengths of the 0/1 mask, starting with a run of 0s (which may be empty)."""

    size: tuple[int, int] = Field(description="[height, width]")
    counts: list[int]
    order: Literal["row-major"] = "row-major"


class TileField(BaseModel):
    """One field of a tile answer."""

    id: int = Field(description="its value in the instance mask")
    pixels: int
    area_ha: float = Field(description="pixels x the tile's ground size (the request's gsd, else the model's)")
    confidence: float = Field(description="mean arable probability over the field")


class SegmentResult(BaseModel):
    """U-Net verdict for one tile."""

    name: str | None
    width: int
    height: int
    threshold: float
    arable_fraction: float = Field(description="share of the tile's pixels predicted arable")
    mean_probability: float | None = None
    fit: Literal["exact", "pad", "resize"]
    mask_png_base64: str | None = Field(
        default=None, description="8-bit grayscale PNG, 255 = arable, same size as the input (mask_encoding both/png)"
    )
    mask_rle: RleMask | None = Field(default=None, description="run-length mask (mask_encoding both/rle)")
    n_fields: int = Field(description="4-connected regions of the mask: the fields answered")
    instances_png_base64: str | None = Field(
        default=None,
        description="with include_fields: 16-bit grayscale "
        "PNG, 0 = not field, k = field k (the `fields` entry with id k)",
    )
    fields: list[TileField] = Field(default_factory=list, description="with include_fields: one entry per field")


class SegmentResponse(BaseModel):
    model: str
    model_version: str
    results: list[SegmentResult]
