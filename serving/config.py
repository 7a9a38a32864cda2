"""Serving settings read from AGRILAND_* environment variables (pydantic-settings), with limits that keep bad requests cheap."""

from __future__ import annotations

import re
from contextvars import ContextVar
from pathlib import Path
from typing import Literal

from pydantic import PositiveInt, ValidationError, field_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract.artifacts import VARIANTS
from contract.errors import AgrilandError
from inference.models.runtime import RuntimeOptions

ProviderSetting = Literal["auto", "cpu", "cuda", "tensorrt"]
PROVIDERS: tuple[str, ...] = ("auto", "cpu", "cuda", "tensorrt")
ENV_PREFIX = "AGRILAND_"
DEFAULT_WORKER_MEMORY_MB = 512
# set while from_env reads a given mapping: the process environment is then not a source at all
_MAPPING_ONLY: ContextVar[bool] = ContextVar("agriland_settings_mapping_only", default=False)


class ServeSettings(BaseSettings):
    """Everything the service reads from its environment (AGRILAND_<FIELD NAME IN CAPITALS>); empty means unset."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore", env_ignore_empty=True)

    models_dir: Path = Path("models")
    dec_variant: str = "fp32"  # a variant, or a comma list in order of preference such as int8,fp32
    unet_variant: str = "fp32"
    providers: ProviderSetting = "auto"
    # AGRILAND_WORKERS=auto: one per usable core, as many as memory allows (inference.models.cpus.auto_workers)
    workers: PositiveInt | Literal["auto"] = 1
    ort_threads: PositiveInt | None = None  # ONNX Runtime threads per session; default: each worker's core share
    worker_memory_mb: PositiveInt = DEFAULT_WORKER_MEMORY_MB  # what workers=auto budgets per worker (~250-480 MB)
    max_batch_size: PositiveInt = 16  # tiles per ONNX Runtime run
    max_latency_ms: PositiveInt = 30_000  # a tile that waited this long in the queue is answered 503
    run_timeout_ms: PositiveInt = 60_000  # a model run longer than this is answered 503 and marks the worker not ready
    hung_after_ms: PositiveInt = 300_000  # a run this much past its deadline is a hung session: /livez fails
    max_queue_tiles: PositiveInt = 256  # tiles waiting per model before new requests get 503
    max_concurrency: PositiveInt = 64  # requests in flight per worker before new ones get 429
    max_upload_bytes: PositiveInt = 32 * 1024 * 1024
    max_pixels: PositiveInt = 4096 * 4096  # per decoded image, checked from the header before decoding
    max_side_factor: PositiveInt = 8  # /segment and /cluster accept sides up to this many model tiles
    max_tiles: PositiveInt = 64  # tiles per request
    timeout_s: PositiveInt = 120
    # whole scenes (/segment_scene, /cluster_scene): uploads are spooled to disk and read window by window;
    # the pixel limit bounds the work (and the answer) of one request
    max_scene_pixels: PositiveInt = 8_000_000
    max_scene_bytes: PositiveInt = 256 * 1024 * 1024
    max_scenes: PositiveInt = 1  # scenes processed at once per worker; later ones wait their turn
    # scenes admitted beyond those running, waiting their turn in order (spooled to disk, at most max_scene_bytes
    # each); past running + waiting a scene is refused with 503 + Retry-After before any byte is spooled
    max_scene_queue: PositiveInt = 4
    # polygons in one /segment_scene JSON/GeoJSON answer (~0.3-1 kB each); more is a 422 pointing to
    # min_area_ha, sieve_px, format=geotiff or the batch job instead of a huge body
    max_polygons: PositiveInt = 20_000
    # BentoML's per-request extras, off by default: the access log line (~0.2 ms a request) and the OpenTelemetry
    # middleware (spans nobody exports unless a tracing exporter is configured)
    # the map page (/map): an online basemap only when configured (an XYZ tile URL template with {z}, {x}, {y});
    # the cluster gallery's sample tiles (`agriland clusters gallery` writes them to <run>/galleries/)
    map_basemap_url: str | None = None
    map_basemap_attribution: str | None = None
    gallery_dir: Path | None = None
    access_log: bool = False
    tracing: bool = False
    # ONNX Runtime in this process (inference.models.runtime.RuntimeOptions; docs/api.md)
    tta_views: Literal[1, 2, 4] | None = None  # fewer U-Net rotations than the manifest's, for speed
    ort_spinning: bool = False
    ort_cpu_arena: bool = True
    cudnn_conv_algo_search: Literal["EXHAUSTIVE", "HEURISTIC", "DEFAULT"] = "EXHAUSTIVE"

    def runtime(self) -> RuntimeOptions:
        """How ONNX Runtime runs this worker's models."""
        return RuntimeOptions(self.tta_views, self.ort_spinning, self.ort_cpu_arena, self.cudnn_conv_algo_search)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls,
        init_settings,
        env_settings,
        dotenv_settings,  # noqa: ANN001
        file_secret_settings,
    ):  # noqa: ANN001, ANN206
        """AGRILAND_* variables only (no .env or secrets files); only the given mapping inside from_env(environ)."""
        return (init_settings,) if _MAPPING_ONLY.get() else (init_settings, env_settings)

    @field_validator("*", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """Surrounding blanks are dropped; a blank value means the default, as an unset variable does."""
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise PydanticUseDefault()
        return value

    @field_validator("map_basemap_url")
    @classmethod
    def _tile_template(cls, value: str | None) -> str | None:
        if value is not None and (
            not re.fullmatch(r"https?://[^\s'\"<>]+", value) or not all(k in value for k in ("{z}", "{x}", "{y}"))
        ):
            raise ValueError(
                "an http(s) XYZ tile URL template with {z}, {x} and {y}, such as "
                "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
            )
        return value

    @field_validator("tta_views", mode="before")
    @classmethod
    def _views_number(cls, value: object) -> object:
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value

    @field_validator("cudnn_conv_algo_search", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("providers", "workers", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("dec_variant", "unet_variant")
    @classmethod
    def _known_variants(cls, value: str) -> str:
        value = value.strip().lower()
        if not value or any(v.strip() not in VARIANTS for v in value.split(",")):
            raise ValueError(
                f"choose one of {', '.join(VARIANTS)}, or a comma list in order of preference such as int8,fp32"
            )
        return value

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServeSettings:
        """Read AGRILAND_* variables (`environ` instead of the process environment when given); a bad value is
        refused with its variable's name, and workers=auto is resolved from the cores and memory at hand."""
        try:
            if environ is None:
                settings = cls()
            else:
                values = {
                    key[len(ENV_PREFIX) :].lower(): raw for key, raw in environ.items() if key.startswith(ENV_PREFIX)
                }
                token = _MAPPING_ONLY.set(True)
                try:
                    settings = cls.model_validate({k: v for k, v in values.items() if k in cls.model_fields})
                finally:
                    _MAPPING_ONLY.reset(token)
        except ValidationError as err:
            raise AgrilandError(settings_problem(err)) from None
        if settings.workers == "auto":
            from inference.models.cpus import auto_workers

            settings = settings.model_copy(update={"workers": auto_workers(settings.worker_memory_mb)})
        return settings

    @property
    def worker_count(self) -> int:
        """Workers as a number (`auto` is resolved by from_env; a literal `auto` here counts as one)."""
        return self.workers if isinstance(self.workers, int) else 1


def settings_problem(err: ValidationError) -> str:
    """One line per refused variable: `AGRILAND_WORKERS='many': Input should be a valid integer`."""
    lines: dict[str, str] = {}
    for problem in err.errors():
        field = str(problem["loc"][0]) if problem["loc"] else "?"
        lines.setdefault(field, f"{ENV_PREFIX}{field.upper()}={problem.get('input')!r}: {problem['msg']}")
    return "; ".join(lines.values())
