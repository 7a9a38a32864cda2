"""The settings of one `agriland batch` run (a plain dataclass so Ray can ship it to every actor)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from batch.vectors import VECTOR_FORMATS, VectorFormat
from contract.errors import AgrilandError
from inference.scenes.request import SceneRequest
from inference.scenes.windowed import DEFAULT_BLOCK, DEFAULT_SIEVE_PX


@dataclass
class BatchConfig:
    """Where results go, which model, how scenes are cut, and how many ONNX Runtime actors run."""

    out: Path
    models: Path = Path("models")
    variant: str = "fp32"
    provider: str = "auto"
    overlap: int | None = None  # None: 1/8 of the model tile (inference.scenes.windowed.default_overlap)
    sieve_px: int = DEFAULT_SIEVE_PX
    mask_mode: Literal["fields", "threshold"] = "fields"  # as `agriland segment` and /segment_scene
    quality: Literal["fast", "best"] = "fast"  # a field model's working resolution (inference.scenes.segment)
    threshold: float | None = None  # None: the manifest's
    batch_size: int = 8
    block_size: int = DEFAULT_BLOCK
    bands: str | None = None
    scaling: Literal["reflectance", "percentile"] | None = None  # None: the model manifest's radiometry
    formats: tuple[VectorFormat, ...] = ("parquet",)
    probability: bool = False
    min_area_ha: float = 0.0
    simplify: float = 1.0
    actors: int | None = None  # None: cores // threads_per_actor (local) or 1 per node's worth of CPUs asked
    threads_per_actor: int = 1
    gpus_per_actor: float = 0.0
    address: str | None = None  # None: RAY_ADDRESS or a new local Ray
    num_cpus: int | None = None  # local Ray only
    asset: str | None = None  # STAC asset key

    def check(self) -> None:
        unknown = [f for f in self.formats if f not in VECTOR_FORMATS]
        if unknown:
            raise AgrilandError(f"unknown vector format(s) {unknown}; choose from {', '.join(VECTOR_FORMATS)}")
        if "parquet" not in self.formats:
            self.formats = ("parquet", *self.formats)  # the merged GeoParquet is built from the per-scene ones
        if self.min_area_ha < 0:
            raise AgrilandError(f"--min-area-ha must be >= 0, got {self.min_area_ha}")
        if self.threads_per_actor < 1:
            raise AgrilandError(f"--threads-per-actor must be >= 1, got {self.threads_per_actor}")
        if self.actors is not None and self.actors < 1:
            raise AgrilandError(f"--actors must be >= 1, got {self.actors}")

    def scene_request(self) -> SceneRequest:
        """The answer-changing options of every scene of this run (the type `agriland segment` and the service build)."""
        return SceneRequest(
            mask_mode=self.mask_mode,
            quality=self.quality,
            threshold=self.threshold,
            overlap=self.overlap,
            sieve_px=self.sieve_px,
            bands=self.bands,
            scaling=self.scaling,
            simplify=self.simplify,
            min_area_ha=self.min_area_ha,
        )

    def public(self) -> dict:
        """JSON-ready settings for the run manifest."""
        values = asdict(self)
        return {
            k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in values.items()
        }
