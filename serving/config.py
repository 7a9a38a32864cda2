"""Serving settings read from AGRILAND_* environment variables, with limits that keep bad requests cheap."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal, cast

from contract.artifacts import VARIANTS
from contract.errors import AgrilandError

ProviderSetting = Literal["auto", "cpu", "cuda", "tensorrt"]
PROVIDERS: tuple[str, ...] = ("auto", "cpu", "cuda", "tensorrt")
ENV_PREFIX = "AGRILAND_"


@dataclass(frozen=True)
class ServeSettings:
    """Everything the service reads from its environment (AGRILAND_<FIELD NAME IN CAPITALS>)."""

    models_dir: Path = Path("models")
    dec_variant: str = "fp32"
    unet_variant: str = "fp32"
    providers: ProviderSetting = "auto"
    workers: int = 1  # AGRILAND_WORKERS=auto: one per usable core, as many as memory allows (serving.resources)
    ort_threads: int | None = None  # ONNX Runtime threads per session; default: cores per worker less one
    worker_memory_mb: int = 512  # what AGRILAND_WORKERS=auto budgets per worker (both 64 px models: ~250-480 MB)
    max_batch_size: int = 16  # tiles per ONNX Runtime run
    max_latency_ms: int = 30_000  # a tile that waited this long in the queue is answered 503
    run_timeout_ms: int = 60_000  # a model run longer than this is answered 503 and marks the worker not ready
    hung_after_ms: int = 300_000  # a run this much past its deadline is a hung session: /livez fails (restart me)
    max_queue_tiles: int = 256  # tiles waiting per model before new requests get 503
    max_concurrency: int = 64  # requests in flight per worker before new ones get 429
    max_upload_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 4096 * 4096  # per decoded image, checked from the header before decoding
    max_side_factor: int = 8  # /segment and /cluster accept sides up to this many model tiles
    max_tiles: int = 64  # tiles per request
    timeout_s: int = 120
    # whole scenes (/segment_scene, /cluster_scene): decoding costs ~80 bytes per pixel at its peak, so the
    # default keeps one scene at the limit near 650 MB; uploads are spooled to disk, not held in memory
    max_scene_pixels: int = 8_000_000
    max_scene_bytes: int = 256 * 1024 * 1024
    max_scenes: int = 1  # scenes decoded/stitched at once per worker; later ones wait their turn
    # polygons in one /segment_scene JSON/GeoJSON answer (~0.3-1 kB each); more is a 422 pointing to
    # min_area_ha, sieve_px, format=geotiff or the batch job instead of a huge body
    max_polygons: int = 20_000
    # BentoML's per-request extras, off by default: the access log line (~0.2 ms a request) and the OpenTelemetry
    # middleware (spans nobody exports unless a tracing exporter is configured)
    access_log: bool = False
    tracing: bool = False

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "ServeSettings":
        """Read AGRILAND_* variables; unknown values are refused with the variable's name."""
        env = dict(os.environ if environ is None else environ)
        values: dict[str, object] = {}
        for field in fields(cls):
            key = ENV_PREFIX + field.name.upper()
            raw = env.get(key)
            if raw is None or raw.strip() == "":
                continue
            raw = raw.strip()
            if field.name == "models_dir":
                values[field.name] = Path(raw)
            elif field.name == "workers" and raw.lower() == "auto":
                from inference.models.cpus import auto_workers  # resources imports this module

                values[field.name] = auto_workers(int(env.get(ENV_PREFIX + "WORKER_MEMORY_MB") or 512))
            elif field.type in ("bool", bool):
                if raw.lower() not in ("1", "0", "true", "false", "on", "off", "yes", "no"):
                    raise AgrilandError(f"{key} must be 1 or 0, got {raw!r}")
                values[field.name] = raw.lower() in ("1", "true", "on", "yes")
            elif field.type in ("int", int, "int | None"):
                try:
                    number = int(raw)
                except ValueError as err:
                    raise AgrilandError(f"{key} must be an integer, got {raw!r}") from err
                if number <= 0:
                    raise AgrilandError(f"{key} must be positive, got {number}")
                values[field.name] = number
            else:
                values[field.name] = raw.lower()
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse unknown variants and provider names."""
        for name in ("dec_variant", "unet_variant"):
            value = getattr(self, name)
            if not value or any(v.strip() not in VARIANTS for v in value.split(",")):
                raise AgrilandError(f"{ENV_PREFIX}{name.upper()}={value!r}: choose one of {', '.join(VARIANTS)}, "
                                    "or a comma list in order of preference such as int8,fp32")
        if self.providers not in PROVIDERS:
            raise AgrilandError(f"{ENV_PREFIX}PROVIDERS={self.providers!r}: choose one of {', '.join(PROVIDERS)}")

    @property
    def provider_choice(self) -> ProviderSetting:
        return cast(ProviderSetting, self.providers)
