"""A verified model artifact and its ONNX Runtime session: variant choice, warm-up, test-time rotations."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from contract.artifacts import MODEL_FILE, VARIANTS, artifact_folder, verify_artifact
from contract.errors import AgrilandError
from contract.manifest import Manifest
from inference.models.sessions import ProviderChoice, create_session
from inference.models.runtime import RuntimeOptions
from inference.models.tta import mean_of_views, rotated_views

log = logging.getLogger(__name__)


def warm_up(model: OnnxModel, max_batch_size: int, every_size: bool | None = None) -> dict[int, float]:
    """Run the batch sizes the micro-batcher can form once each, before the service reports ready.

    On CUDA / TensorRT each new input shape triggers work on its first run (cuDNN algorithm search, TensorRT
    profile selection, memory growth), so every size 1..max_batch_size is run (`every_size` None or True).
    CPU kernels do not specialise per batch size: there, by default, only batch 1 runs (it touches every
    weight and the arena); pass every_size=True to run them all anyway. Returns seconds per batch size.
    """
    if max_batch_size < 1:
        raise AgrilandError(f"max_batch_size must be >= 1, got {max_batch_size}")
    if every_size is None:
        every_size = model.provider != "CPUExecutionProvider"
    sizes = range(1, max_batch_size + 1) if every_size else range(1, 2)
    tile = model.tile_size
    seconds: dict[int, float] = {}
    for size in sizes:
        started = time.perf_counter()
        model.run(np.zeros((size, tile, tile, 3), dtype=np.uint8))
        seconds[size] = time.perf_counter() - started
    log.info("warm-up of %s on %s: batch sizes %d..%d in %.2f s (first %.3f s)", model.folder, model.provider,
             min(seconds), max(seconds), sum(seconds.values()), seconds[1])
    return seconds


def variant_preferences(setting: str) -> tuple[str, ...]:
    """`int8,fp32` -> ("int8", "fp32"): the variants to serve, best first (AGRILAND_*_VARIANT)."""
    choices = tuple(v.strip().lower() for v in setting.split(",") if v.strip())
    unknown = [v for v in choices if v not in VARIANTS]
    if not choices or unknown:
        raise AgrilandError(f"unknown variant(s) {unknown or [setting]}; choose from {', '.join(VARIANTS)}, "
                            "or a comma list in order of preference such as int8,fp32")
    return choices


def choose_variant(models_dir: Path | str, name: str, setting: str) -> tuple[Path, str | None]:
    """The first exported variant of a preference list, and a warning when it is not the first one asked for.

    The export drops a variant that misses its parity gate (int8 often), so a deployment may ask for
    `int8,fp32`: int8 where it was exported, fp32 otherwise, said clearly in the log.
    """
    preferences = variant_preferences(setting)
    for variant in preferences:
        folder = artifact_folder(models_dir, name, variant)
        if (folder / "manifest.json").is_file():
            skipped = preferences[: preferences.index(variant)]
            warning = None if not skipped else (
                f"{name}: variant {', '.join(skipped)} not exported in {Path(models_dir) / name} (dropped by its "
                f"parity gate?); serving {variant}")
            return folder, warning
    return artifact_folder(models_dir, name, preferences[0]), None  # loading it explains what is missing


@dataclass
class OnnxModel:
    """A verified artifact folder and its ONNX Runtime session."""

    folder: Path
    manifest: Manifest
    session: ort.InferenceSession
    runtime: RuntimeOptions = RuntimeOptions()

    @classmethod
    def load(
        cls,
        folder: Path | str,
        providers: ProviderChoice = "auto",
        intra_op_threads: int | None = None,
        runtime: RuntimeOptions = RuntimeOptions(),
    ) -> "OnnxModel":
        """Verify manifest + sha256, then open the session."""
        folder = Path(folder)
        manifest = verify_artifact(folder)
        session = create_session(folder / MODEL_FILE, providers, intra_op_threads, runtime)
        return cls(folder=folder, manifest=manifest, session=session, runtime=runtime)

    @property
    def tile_size(self) -> int:
        return self.manifest.tile_size

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def run(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """Run a uint8 NHWC batch and return outputs by name."""
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise AgrilandError(f"expected a uint8 [N, H, W, 3] batch, got {images.dtype} {images.shape}")
        names = [spec.name for spec in self.manifest.outputs]
        views = self.runtime.views(self.manifest.tta_views) if names in (["mask"], ["fields"]) else 1
        if views > 1:
            images = rotated_views(images, views)
        values = self.session.run(names, {self.manifest.input.name: np.ascontiguousarray(images)})
        if views > 1:
            values = [mean_of_views(v, views) for v in values]
        return dict(zip(names, values))


def predictor(model: OnnxModel) -> Callable[[np.ndarray], np.ndarray]:
    """The model's batched call as the scene engine's `Predict`: uint8 NHWC in, its `mask` output (or first output)
    out; a field model answers its two planes, field extent and boundary ([N, T, T, 2])."""
    if model.manifest.task == "fields" and model.manifest.field_model is not None:
        from inference.field_model import field_predict

        return field_predict(model.run, model.manifest.field_model)  # [N, T, T, 2]: extent, boundary
    names = [spec.name for spec in model.manifest.outputs]
    output = "mask" if "mask" in names else names[0]

    def predict(batch: np.ndarray) -> np.ndarray:
        return model.run(batch)[output]

    return predict
