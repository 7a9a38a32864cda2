"""Which exported model answers a scene: the field model (models/fields/) for field answers where one is exported,
else the arable U-Net (models/unet/); one choice for the CLI and the batch job."""

from __future__ import annotations

import logging
from pathlib import Path

from contract.errors import AgrilandError
from contract.manifest import FieldModelSpec
from inference.models.onnx_model import OnnxModel, choose_variant
from inference.models.runtime import RuntimeOptions
from inference.models.sessions import ProviderChoice

log = logging.getLogger(__name__)

FIELDS, UNET = "fields", "unet"


def has_field_model(models_dir: Path | str) -> bool:
    """True when `models_dir/fields/<variant>/manifest.json` exists for some variant."""
    return any((Path(models_dir) / FIELDS).glob("*/manifest.json"))


def answering_model_name(models_dir: Path | str, mask_mode: str) -> str:
    """`fields` for the field answer where a field model is exported; `unet` otherwise (and for the plain cut)."""
    return FIELDS if mask_mode == "fields" and has_field_model(models_dir) else UNET


def load_answering_model(models_dir: Path | str, variant: str, mask_mode: str,
                         providers: ProviderChoice = "auto",
                         threads: int | None = None,
                         runtime: RuntimeOptions = RuntimeOptions()) -> tuple[OnnxModel, FieldModelSpec | None]:
    """The model that answers `mask_mode`, and its field spec when it is a field model."""
    name = answering_model_name(models_dir, mask_mode)
    preference = variant if name == UNET else _field_variants(variant)
    folder, fallback = choose_variant(models_dir, name, preference)
    if fallback:
        log.warning("%s", fallback)
    model = OnnxModel.load(folder, providers=providers, intra_op_threads=threads, runtime=runtime)
    expected = "fields" if name == FIELDS else "segmentation"
    if model.manifest.task != expected:
        raise AgrilandError(f"{model.folder} holds a {model.manifest.task} model, not a {expected} model")
    log.info("%s answers with %s %s", mask_mode, name, model.manifest.version)
    return model, model.manifest.field_model


def _field_variants(setting: str) -> str:
    """The field model is exported in fp32 (and fp16 where it passes); a preference list falls back to fp32."""
    parts = [v.strip() for v in setting.split(",") if v.strip()]
    return ",".join(parts + (["fp32"] if "fp32" not in parts else []))
