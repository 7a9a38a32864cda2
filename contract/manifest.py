"""The artifact contract between export and inference: manifest.json, validated by pydantic on both sides."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contract.atomic import write_text_atomic
from contract.errors import AgrilandError
from contract.radiometry import Radiometry

MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1

Task = Literal["segmentation", "clustering", "fields"]
Variant = Literal["fp32", "fp16", "int8"]


class TensorSpec(BaseModel):
    """Name, element type and shape of one graph input or output (None = dynamic axis)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    dtype: Literal["uint8", "float16", "float32", "int64"]
    shape: list[int | None]


class FieldModelSpec(BaseModel):
    """What a field model (task `fields`) answers and at which ground resolutions it works.

    Its output `fields` is a softmax over `classes` per pixel. Images finer than `work_gsd_m` are resampled to it;
    images between `work_gsd_m` and `max_gsd_m` are answered at their own resolution (`quality=best` halves it,
    down to `work_gsd_m`); coarser ones are upsampled to `max_gsd_m`. Answers always come back on the input grid."""

    model_config = ConfigDict(extra="forbid")

    classes: list[str] = Field(default_factory=lambda: ["background", "interior", "boundary"])
    work_gsd_m: float = Field(default=2.5, gt=0)
    max_gsd_m: float = Field(default=10.0, gt=0)
    extent_cut: float = Field(default=0.5, ge=0.0, le=1.0)
    interior_cut: float = Field(default=0.5, ge=0.0, le=1.0)
    vote_cut: float = Field(default=0.35, ge=0.0, le=1.0)
    min_field_ha: float = Field(default=0.05, ge=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> FieldModelSpec:
        if self.max_gsd_m < self.work_gsd_m:
            raise ValueError(f"max_gsd_m ({self.max_gsd_m}) must be >= work_gsd_m ({self.work_gsd_m})")
        missing = {"background", "interior", "boundary"} - set(self.classes)
        if missing:
            raise ValueError(f"field classes must name background, interior and boundary; missing {sorted(missing)}")
        return self

    def working_gsd(self, source_gsd: float | None, quality: str = "fast") -> float:
        """The ground resolution an image of `source_gsd` m/px is answered at."""
        if source_gsd is None or source_gsd <= 0:
            return self.max_gsd_m
        gsd = min(max(source_gsd, self.work_gsd_m), self.max_gsd_m)
        if quality == "best":
            gsd = max(self.work_gsd_m, gsd / 2)
        return float(gsd)


class Parity(BaseModel):
    """How closely this ONNX artifact reproduces the Keras model (or the fp32 artifact, for variants)."""

    model_config = ConfigDict(extra="allow")

    reference: str = "keras"
    n_tiles: int = 0
    max_abs_diff: float | None = None
    mask_iou: float | None = None
    cluster_agreement: float | None = None
    passed: bool = True


# Names of cropland clusters (EuroSAT class names, the workflow's own words, snake_case land-cover names).
ARABLE_NAMES: tuple[str, ...] = ("arable", "cropland", "AnnualCrop", "annual_crop")
CROPLAND_NAMES: tuple[str, ...] = (*ARABLE_NAMES, "PermanentCrop", "permanent_crop")
_PERMANENT = {"permanentcrop", "permanent_crop", "permanent crop", "permanent crops"}
# EuroSAT classes (and the workflow's names) as land-cover classes a GIS user filters on.
LAND_COVER: dict[str, str] = {
    "annualcrop": "annual_crop",
    "arable": "annual_crop",
    "permanentcrop": "permanent_crop",
    "cropland": "cropland",
    "pasture": "pasture",
    "herbaceousvegetation": "herbaceous_vegetation",
    "forest": "forest",
    "sealake": "water",
    "river": "water",
    "residential": "built_up",
    "industrial": "built_up",
    "highway": "road",
}


def land_cover_of(name: str | None) -> str | None:
    """A cluster name as a snake_case land-cover class (AnnualCrop -> annual_crop, SeaLake -> water, ...)."""
    if name is None or not name.strip():
        return None
    key = re.sub(r"[^a-z]", "", name.lower())
    return LAND_COVER.get(key, re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_") or None)


class Manifest(BaseModel):
    """Everything serving needs to know about one exported model folder."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    schema_version: int = SCHEMA_VERSION
    name: str
    task: Task
    version: str
    variant: Variant = "fp32"
    tile_size: int = Field(gt=0)
    input: TensorSpec
    outputs: list[TensorSpec]
    cluster_names: dict[str, str] = Field(default_factory=dict)
    # Cluster names that mean cropland: land under temporary (annual) or permanent crops (FAO). Pasture is not.
    cropland_classes: list[str] = Field(default_factory=lambda: list(CROPLAND_NAMES))
    # Cluster names that count as arable land, FAO's sense: temporary crops only; permanent crops (orchards,
    # vineyards, EuroSAT's PermanentCrop) are cropland but not arable.
    arable_classes: list[str] = Field(default_factory=lambda: list(ARABLE_NAMES))
    threshold: float = Field(default=0.5, ge=0.0, le=1.0)  # the pixel cut (mask_mode=threshold)
    # The cut on a delineated field's mean probability (mask_mode=fields, the default answer). Lower than the
    # pixel cut: averaged over a whole field it is far less noisy, and on imagery unlike the training tiles
    # (other sensors, regions, field sizes) the U-Net's confidence drops while its ranking holds (docs/
    # field_evaluation.md). On held-out EuroSAT tiles cuts from 0.3 to 0.6 separate cropland equally well.
    field_threshold: float = Field(default=0.35, ge=0.0, le=1.0)
    # Test-time augmentation: the tile is run in this many rotations (1, 2: 0/180, 4: 0/90/180/270 degrees) and the
    # masks rotated back and averaged; every reader of the model (service, CLI, batch) does it through the runtime.
    tta_views: Literal[1, 2, 4] = 1
    radiometry: Radiometry  # bands, 8/16-bit/float scaling and ground resolution: every pixel reader applies it
    field_model: FieldModelSpec | None = None  # task `fields` only: classes, working resolutions, instance cuts
    metrics: dict[str, float] = Field(default_factory=dict)
    parity: Parity = Field(default_factory=Parity)
    training_data: dict[str, object] = Field(default_factory=dict)
    library_versions: dict[str, str] = Field(default_factory=dict)
    onnx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def cut(self, mask_mode: str, requested: float | None = None) -> float:
        """The arable cut an answer uses: the request's, else the one of its mask mode."""
        if requested is not None:
            return float(requested)
        return self.field_threshold if mask_mode == "fields" else self.threshold

    @model_validator(mode="after")
    def _fields_have_a_spec(self) -> Manifest:
        if self.task == "fields" and self.field_model is None:
            raise ValueError("a fields manifest needs field_model (classes, working resolutions)")
        return self

    @model_validator(mode="after")
    def _permanent_crops_are_not_arable(self) -> Manifest:
        """Manifests written before cropland_classes existed listed PermanentCrop as arable: read it as cropland."""
        if "cropland_classes" not in self.model_fields_set:
            permanent = [c for c in self.arable_classes if c.strip().lower() in _PERMANENT]
            if permanent:
                self.arable_classes = [c for c in self.arable_classes if c not in permanent]
                self.cropland_classes = sorted({*self.cropland_classes, *permanent, *self.arable_classes})
        return self

    @field_validator("cluster_names")
    @classmethod
    def _cluster_keys_are_ints(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not key.lstrip("-").isdigit():
                raise ValueError(f"cluster_names keys must be cluster ids like '7', got {key!r}")
        return value

    @property
    def n_clusters(self) -> int | None:
        """Number of clusters K for a clustering model (from the `q` output's shape)."""
        for spec in self.outputs:
            if spec.name == "q" and spec.shape and spec.shape[-1]:
                return int(spec.shape[-1])
        return None

    def cluster_name(self, cluster_id: int) -> str | None:
        """The human name of a cluster, if one was given."""
        return self.cluster_names.get(str(cluster_id))

    def is_arable_cluster(self, cluster_id: int) -> bool:
        """True when the cluster was named as one of the arable classes (annual crops; FAO arable land)."""
        name = self.cluster_name(cluster_id)
        return name is not None and name.strip().lower() in {c.lower() for c in self.arable_classes}

    def is_cropland_cluster(self, cluster_id: int) -> bool:
        """True when the cluster was named as cropland: annual or permanent crops (arable ones included)."""
        name = self.cluster_name(cluster_id)
        known = {c.lower() for c in (*self.cropland_classes, *self.arable_classes)}
        return name is not None and name.strip().lower() in known

    def land_cover(self, cluster_id: int) -> str | None:
        """The cluster's land cover as a GIS class (annual_crop, permanent_crop, pasture, forest, water, ...)."""
        return land_cover_of(self.cluster_name(cluster_id))


def read_manifest(folder: Path | str) -> Manifest:
    """Read and validate `folder/manifest.json`; raises AgrilandError with the reason."""
    path = Path(folder) / MANIFEST_FILE
    if not path.is_file():
        raise AgrilandError(f"no {MANIFEST_FILE} in {folder}")
    try:
        manifest = Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as err:
        if any(e.get("loc") == ("radiometry",) and e.get("type") == "missing" for e in err.errors()):
            raise AgrilandError(
                f"{path} has no radiometry contract (bands, 8/16-bit scaling, ground resolution): it was written "
                "by an older agriland export; export the model again"
            ) from err
        raise AgrilandError(f"{path} is not a valid manifest: {err}") from err
    except ValueError as err:  # invalid JSON
        raise AgrilandError(f"{path} is not valid JSON: {err}") from err
    return manifest


def write_manifest(folder: Path | str, manifest: Manifest) -> Path:
    """Write `folder/manifest.json` atomically (temp file + rename)."""
    return write_text_atomic(Path(folder) / MANIFEST_FILE, manifest.model_dump_json(indent=2) + "\n")


def update_cluster_names(folder: Path | str, names: dict[str, str]) -> Manifest:
    """Merge cluster names into an existing manifest (names are editable after export)."""
    manifest = read_manifest(folder)
    merged = {**manifest.cluster_names, **names}
    updated = manifest.model_copy(update={"cluster_names": merged})
    Manifest.model_validate(json.loads(updated.model_dump_json()))
    write_manifest(folder, updated)
    return updated
