"""BentoML input specs of the APIs: typed for /docs.json and clients, the body left to our bounded readers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import bentoml
from _bentoml_sdk.io_models import ensure_io_descriptor
from bentoml.validators import ContentType
from pydantic import BaseModel, Field, ValidationError, create_model
from starlette.exceptions import HTTPException

from serving.scene_schemas import SceneOptions, SegmentSceneOptions
from serving.schemas import ClusterOptions, SegmentOptions

ImageFile = Annotated[Path, ContentType("image/*")]
TiffFile = Annotated[Path, ContentType("image/tiff")]
_FILES = (
    "tile images, one file part each (PNG, JPEG, TIFF, WebP). The same endpoint also takes JSON "
    '{"tiles": [{"image_b64": ...}]} or one raw image as the body (see docs/api.md)'
)


_PLACEHOLDERS: dict[type, DeferredInput] = {}


class DeferredInput(bentoml.IODescriptor):
    """Declares the API's fields, but leaves the body unread: the endpoint parses it within its limits.

    BentoML would otherwise read the whole body into memory (no size limit) and answer a malformed
    upload with 500 before the endpoint could refuse it with a clear 4xx.
    """

    @classmethod
    async def from_http_request(cls, request: Any, serde: Any) -> DeferredInput:
        request.state.agriland_request = request  # the very object (a task's has its body cached on it)
        instance = _PLACEHOLDERS.get(cls)
        if instance is None:  # built once per class: model_construct inspects default factories every call
            unset = {name: None for name, info in cls.model_fields.items() if info.is_required()}
            instance = _PLACEHOLDERS[cls] = cls.model_construct(**unset)
        return instance


def input_spec(name: str, options: type[BaseModel], file: tuple[Any, Any], doc: str) -> type[DeferredInput]:
    """The API's input spec: the upload field plus every field of its options model, taken from that model.

    The endpoints validate requests with the `serving.schemas` models; building the spec from them means
    /docs.json (and every client or fuzzer reading it) lists exactly the options that are accepted.
    """
    fields: dict[str, Any] = {"file": file}
    for field_name, info in options.model_fields.items():
        fields[field_name] = (info.annotation, info)
    spec = create_model(name, __base__=DeferredInput, __doc__=doc, __module__=__name__, **fields)
    return spec


_SCENE_FILE = (TiffFile, Field(description="one GeoTIFF scene (or send it as the raw image/tiff body)"))
SegmentInput = input_spec(
    "SegmentInput", SegmentOptions, (list[ImageFile], Field(default_factory=list, description=_FILES)), "POST /segment."
)
ClusterInput = input_spec(
    "ClusterInput", ClusterOptions, (list[ImageFile], Field(default_factory=list, description=_FILES)), "POST /cluster."
)
SegmentSceneInput = input_spec(
    "SegmentSceneInput",
    SegmentSceneOptions,
    _SCENE_FILE,
    "POST /segment_scene: one GeoTIFF (multipart `file`, or the raw image/tiff body).",
)
ClusterSceneInput = input_spec(
    "ClusterSceneInput",
    SceneOptions,
    _SCENE_FILE,
    "POST /cluster_scene: one GeoTIFF (multipart `file`, or the raw image/tiff body).",
)


class RawTilesInput(DeferredInput):
    """POST /segment_raw, /cluster_raw: uint8 NHWC tiles of the model's size as the body (see docs/api.md)."""

    shape: str | None = Field(
        default=None,
        description="N,H,W,3 of an application/octet-stream body; a .npy body (application/x-npy) carries its own",
    )
    threshold: float | None = Field(default=None, ge=0.0, le=1.0, description="/segment_raw: default the manifest's")
    product: Literal["mask", "probability"] = Field(
        default="mask", description="/segment_raw: uint8 0/1 masks or float32 probabilities, [N, H, W]"
    )
    format: Literal["raw", "npy"] | None = Field(default=None, description="answer encoding; default as the body came")


# the answer is a file-like body (raw bytes or .npy), declared so to OpenAPI and BentoML's clients
RawArrayOutput = ensure_io_descriptor(Annotated[Path, ContentType("application/octet-stream")])


class SceneJobRef(bentoml.IODescriptor):
    """A scene job's id, as answered by the submit route."""

    task_id: str = Field(min_length=1, max_length=128, description="the id answered by .../submit")

    @classmethod
    async def from_http_request(cls, request: Any, serde: Any) -> Any:
        """BentoML's own parsing, but a malformed form body (e.g. multipart without a boundary) is a 400
        validation error like a missing field, not the 500 BentoML makes of Starlette's HTTPException."""
        try:
            return await super().from_http_request(request, serde)
        except HTTPException as err:
            raise ValidationError.from_exception_data(
                cls.__name__,
                [
                    {
                        "type": "value_error",
                        "loc": ("body",),
                        "input": None,
                        "ctx": {"error": ValueError(f"malformed request body: {err.detail}")},
                    }
                ],
            ) from err


class FeatureCollection(bentoml.IODescriptor):
    """A GeoJSON FeatureCollection (application/geo+json)."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]] = Field(default_factory=list)
    agriland: dict[str, Any] | None = Field(default=None, description="model, version, grid and scene facts")


class SceneJobCancelled(bentoml.IODescriptor):
    """Answer of POST /scene_jobs/cancel."""

    task_id: str
    status: Literal["cancelled", "not running"] = Field(
        description="cancelled: its work has stopped and its temp files and slot are released; "
        "not running: finished already, or not a job of this worker"
    )
