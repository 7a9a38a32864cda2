"""One scene request: every option that changes a scene's answer, resolved against the answering model's manifest.

`agriland segment`, `/segment_scene` and `agriland batch` each build a `SceneRequest` from their own inputs
(arguments, form fields, a run config) and hand it to `segment_file`, so the same options give the same polygons
from every front end by construction; `answer_key` is what a batch rerun compares to skip a finished scene.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from contract.errors import AgrilandError
from contract.manifest import FieldModelSpec, Manifest
from contract.radiometry import Calibration
from inference.fields import FieldOptions
from inference.pixels import SCENE_STRETCH, PixelSpec
from inference.scenes.windowed import DEFAULT_BLOCK, DEFAULT_SIEVE_PX, WindowParams, default_overlap

MaskMode = Literal["fields", "threshold"]
Quality = Literal["fast", "best"]  # best: a field model works at half the input's ground size (more pixels, views)
Scaling = Literal["reflectance", "percentile"]
QUALITIES: tuple[str, ...] = ("fast", "best")


class OptionError(AgrilandError):
    """An option that cannot answer with this model (the service answers it 400)."""


@dataclass(frozen=True)
class ResolvedScene:
    """A request resolved against the answering model: what `segment_file` runs (how the scene is cut, its pixels
    read, its mask and polygons made). Built by `SceneRequest.resolve`; tests of the engine build one directly."""

    params: WindowParams
    pixels: PixelSpec = SCENE_STRETCH
    fields: FieldOptions = FieldOptions()
    field_model: FieldModelSpec | None = None  # set: `predict` is this field model's (extent and boundary planes)
    quality: Quality = "fast"
    bands: str | Sequence[int] | None = None
    simplify_px: float = 1.0
    min_area_ha: float = 0.0

    def __post_init__(self) -> None:
        if self.min_area_ha < 0:
            raise OptionError(f"minimum area must be >= 0 ha, got {self.min_area_ha}")


@dataclass(frozen=True)
class SceneRequest:
    """Every option that changes a scene's answer (None: the model manifest's or the engine's default)."""

    mask_mode: MaskMode = "fields"
    quality: Quality = "fast"
    threshold: float | None = None
    overlap: int | None = None  # None: 1/8 of the model tile (`default_overlap`)
    sieve_px: int = DEFAULT_SIEVE_PX
    bands: str | Sequence[int] | None = None  # "4,3,2", a preset name, or band numbers; None: 1,2,3
    scaling: Scaling | None = None  # None: the manifest's radiometry
    simplify: float = 1.0  # polygon simplification tolerance, pixels
    min_area_ha: float = 0.0
    calibration: Calibration | None = field(default=None, compare=False)  # a catalogue's DN calibration (batch)

    def __post_init__(self) -> None:
        if self.min_area_ha < 0:
            raise OptionError(f"minimum area must be >= 0 ha, got {self.min_area_ha}")
        if self.mask_mode not in ("fields", "threshold"):
            raise OptionError(f"mask mode must be one of fields, threshold, got {self.mask_mode!r}")
        if self.quality not in QUALITIES:
            raise OptionError(f"quality must be one of {', '.join(QUALITIES)}, got {self.quality!r}")

    def cut(self, manifest: Manifest) -> float:
        """The arable cut: the request's, else the one of its mask mode in the manifest."""
        return manifest.cut(self.mask_mode, self.threshold)

    def overlap_for(self, tile_size: int) -> int:
        """Pixels shared by neighbouring tiles: the request's, else 1/8 of the model tile."""
        return default_overlap(tile_size) if self.overlap is None else self.overlap

    def resolve(self, manifest: Manifest, batch_size: int = 8, block_size: int = DEFAULT_BLOCK) -> ResolvedScene:
        """The window, pixel and field parameters of this request for the model of `manifest`.

        `batch_size` and `block_size` change speed and memory, never the answer."""
        tile = manifest.tile_size
        overlap = self.overlap_for(tile)
        if overlap >= tile // 2:  # more overlap multiplies the tiles to compute (near `tile`, without end)
            raise OptionError(f"overlap={overlap} must be smaller than half the model tile ({tile // 2} px)")
        params = WindowParams(tile, overlap, self.cut(manifest), batch_size, block_size, self.sieve_px)
        pixels = PixelSpec(manifest.radiometry, scaling=self.scaling, calibration=self.calibration)
        return ResolvedScene(
            params,
            pixels,
            FieldOptions.parse(self.mask_mode),
            manifest.field_model,
            self.quality,
            self.bands,
            self.simplify,
            self.min_area_ha,
        )

    def answer_key(self, manifest: Manifest) -> dict[str, object]:
        """Everything of this request and model that changes the answer (the scene itself aside)."""
        return {
            "model_sha256": manifest.onnx_sha256,
            "variant": manifest.variant,
            "threshold": self.cut(manifest),
            "overlap": self.overlap_for(manifest.tile_size),
            "mask_mode": self.mask_mode,
            "quality": self.quality,
            "bands": self.bands,
            "scaling": self.scaling,
            "sieve_px": self.sieve_px,
            "simplify": self.simplify,
            "min_area_ha": self.min_area_ha,
        }
