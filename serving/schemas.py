"""Pydantic request/response models of /cluster and /segment, the error body, and the OpenAPI spec."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema


class ApiError(Exception):
    """A request the service refuses: HTTP status, a clear message, optional Retry-After seconds."""

    def __init__(self, status: int, message: str, retry_after_s: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s
        self.detail = detail


class ErrorResponse(BaseModel):
    """Body of every 4xx/5xx answer."""

    error: str = Field(description="what was wrong, naming the field or tile")
    status: int
    detail: Any = None


class TileIn(BaseModel):
    """One tile as base64 (standard alphabet, optionally a data: URL) of a PNG, JPEG or TIFF file."""

    model_config = ConfigDict(extra="forbid")

    image_b64: str = Field(min_length=1, description="base64 of the image file's bytes")
    name: str | None = Field(default=None, max_length=256, description="echoed back in the result")


class ClusterOptions(BaseModel):
    """Options of /cluster (JSON body fields, or multipart form fields)."""

    model_config = ConfigDict(extra="forbid")

    top_k: int = Field(default=3, ge=1, le=100, description="how many clusters to list with probabilities")
    include_embedding: bool = Field(default=False, description="return the DEC embedding of each tile")
    fit: Literal["auto", "pad", "resize"] = Field(
        default="resize", description="how tiles of another size reach the model size"
    )


class SegmentOptions(BaseModel):
    """Options of /segment (JSON body fields, or multipart form fields)."""

    model_config = ConfigDict(extra="forbid")

    threshold: float | None = Field(default=None, ge=0.0, le=1.0, description="default: the manifest's threshold")
    fit: Literal["auto", "pad", "resize"] = Field(
        default="auto", description="auto pads tiles up to the model size and resizes larger ones"
    )
    include_probability: bool = Field(default=False, description="add the mean arable probability")


class ClusterRequest(ClusterOptions):
    """JSON body of POST /cluster."""

    tiles: list[TileIn] = Field(min_length=1, description="one or more tiles")


class SegmentRequest(SegmentOptions):
    """JSON body of POST /segment."""

    tiles: list[TileIn] = Field(min_length=1, description="one or more tiles")


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
    is_arable: bool
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


class SegmentResult(BaseModel):
    """U-Net verdict for one tile."""

    name: str | None
    width: int
    height: int
    threshold: float
    arable_fraction: float = Field(description="share of the tile's pixels predicted arable")
    mean_probability: float | None = None
    fit: Literal["exact", "pad", "resize"]
    mask_png_base64: str = Field(description="8-bit grayscale PNG, 255 = arable, same size as the input")
    mask_rle: RleMask


class SegmentResponse(BaseModel):
    model: str
    model_version: str
    results: list[SegmentResult]


def _multipart_schema(options: type[BaseModel]) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "file": {"type": "array", "items": {"type": "string", "format": "binary"}, "description": "tile images"}
    }
    for key, value in options.model_json_schema()["properties"].items():
        properties[key] = value
    return {"type": "object", "properties": properties, "required": ["file"]}


def _operation(summary: str, request: type[BaseModel], options: type[BaseModel], response: str) -> dict[str, Any]:
    errors = {
        str(code): {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}}
        for code, text in (
            (400, "malformed request or image"),
            (413, "upload or image dimensions over the limits"),
            (415, "unsupported content type"),
            (429, "too many requests in flight (Retry-After)"),
            (503, "model not loaded or queue overloaded (Retry-After)"),
        )
    }
    return {
        "summary": summary,
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{request.__name__}"}},
                "multipart/form-data": {"schema": _multipart_schema(options)},
                "image/*": {"schema": {"type": "string", "format": "binary"}, "description": "one raw image file"},
            },
        },
        "responses": {
            "200": {
                "description": "one result per tile, in request order",
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{response}"}}},
            },
            **errors,
        },
    }


def openapi_spec() -> dict[str, Any]:
    """OpenAPI 3.1 document of the agriland endpoints, with the pydantic models as components."""
    models = [ClusterRequest, SegmentRequest, ClusterResponse, SegmentResponse, ErrorResponse]
    _, defs = models_json_schema([(m, "validation") for m in models], ref_template="#/components/schemas/{model}")
    segment = _operation("Arable-land mask of one or more tiles", SegmentRequest, SegmentOptions, "SegmentResponse")
    segment["parameters"] = [
        {
            "name": "format",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": ["json", "png"]},
            "description": "png: answer a single tile's mask as image/png (as does Accept: image/png)",
        }
    ]
    segment["responses"]["200"]["content"]["image/png"] = {"schema": {"type": "string", "format": "binary"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "agriland", "version": "1", "description": "Find arable farmland in satellite tiles."},
        "paths": {
            "/cluster": {"post": _operation("DEC cluster of one or more tiles", ClusterRequest, ClusterOptions, "ClusterResponse")},
            "/segment": {"post": segment},
        },
        "components": {"schemas": defs.get("$defs", {})},
    }
