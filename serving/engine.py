"""Both ONNX models of one worker, their micro-batchers and metrics: the single path every prediction takes."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from contract.errors import AgrilandError
from inference.models.batching import MicroBatcher
from inference.models.futures import then
from inference.models.onnx_model import OnnxModel, choose_variant, warm_up
from serving.config import ServeSettings
from serving.resources import service_ort_threads
from serving.scene_queue import SceneQueue

log = logging.getLogger(__name__)

MODEL_NAMES: tuple[str, ...] = ("dec", "unet")
OPTIONAL_MODELS: tuple[str, ...] = ("fields",)  # served where models/fields/ holds an export
_METRICS: dict[str, Any] = {}


def _metrics(max_batch_size: int) -> dict[str, Any]:
    """Prometheus metrics, created once per process after BentoML has set PROMETHEUS_MULTIPROC_DIR."""
    if not _METRICS:
        import prometheus_client  # imported late on purpose: multiprocess mode is decided at import

        buckets = sorted({1, 2, 4, 8, 16, 32, 64, 128, max_batch_size})
        _METRICS["batch_size"] = prometheus_client.Histogram(
            "agriland_batch_size",
            "Tiles per ONNX Runtime run (micro-batcher)",
            labelnames=["model"],
            buckets=[float(b) for b in buckets],
        )
        _METRICS["queue_wait"] = prometheus_client.Histogram(
            "agriland_queue_wait_seconds",
            "Seconds the oldest tile of a batch waited in the queue",
            labelnames=["model"],
            buckets=[0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
        )
        _METRICS["model_info"] = prometheus_client.Gauge(
            "agriland_model_info",
            "1 for each model this worker serves: its variant and version (the release names it)",
            labelnames=["model", "variant", "version"],
            multiprocess_mode="max",
        )
        _METRICS["rejected"] = prometheus_client.Counter(
            "agriland_rejected_requests",
            "Requests answered with 4xx/5xx by reason",
            labelnames=["endpoint", "status"],
        )
    return _METRICS


def _masks(out: dict[str, np.ndarray]) -> np.ndarray:
    mask = out["mask"]
    return np.asarray(mask, dtype=np.float32).reshape(mask.shape[0], mask.shape[1], mask.shape[2])


def _clusters(out: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(out["q"], dtype=np.float32), np.asarray(out["embedding"], dtype=np.float32)


class Engine:
    """Loads dec and unet from `settings.models_dir`; a model that fails stays unloaded with its reason."""

    def __init__(self, settings: ServeSettings, settings_error: str | None = None) -> None:
        self.settings = settings
        self.models: dict[str, OnnxModel] = {}
        self.errors: dict[str, str] = {}
        self.batchers: dict[str, MicroBatcher] = {}
        self.warmed: dict[str, dict[int, float]] = {}  # seconds per batch size run at load, per model
        self.metrics = _metrics(settings.max_batch_size)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ort")
        self.scene_queue = SceneQueue(settings.max_scenes, settings.max_scene_queue)  # running + waiting scenes
        if settings_error:
            self.errors["settings"] = settings_error
            log.error("service is NOT ready: %s", settings_error)
            return
        threads = service_ort_threads(settings.worker_count, settings.ort_threads)  # cgroup quota, less the loop's core
        variants = {"dec": settings.dec_variant, "unet": settings.unet_variant, "fields": "fp32"}
        optional = [n for n in OPTIONAL_MODELS if any((settings.models_dir / n).glob("*/manifest.json"))]
        for name in (*MODEL_NAMES, *optional):
            try:
                folder, fallback = choose_variant(settings.models_dir, name, variants[name])
                if fallback:
                    log.warning("%s", fallback)
                model = OnnxModel.load(folder, settings.providers, threads, settings.runtime())
                self._check_contract(name, model)
                self.warmed[name] = warm_up(model, settings.max_batch_size)  # paid before /readyz says ready
            except AgrilandError as err:
                self.errors[name] = str(err)
                log.error("model %r is NOT loaded, the service is not ready: %s", name, err)
                continue
            except Exception as err:  # noqa: BLE001 - any load failure must leave the process up
                self.errors[name] = f"{type(err).__name__}: {err}"
                log.exception("model %r is NOT loaded, the service is not ready", name)
                continue
            self.models[name] = model
            self.metrics["model_info"].labels(
                model=name, variant=model.manifest.variant, version=model.manifest.version
            ).set(1)
            self.batchers[name] = self._batcher(name, model)
            log.info(
                "model %s %s (tile %d) on %s, %d CPU threads, batches up to %d",
                name,
                model.manifest.version,
                model.tile_size,
                model.provider,
                threads,
                settings.max_batch_size,
            )

    @staticmethod
    def _check_contract(name: str, model: OnnxModel) -> None:
        outputs = {spec.name for spec in model.manifest.outputs}
        needed = {"dec": {"q", "embedding"}, "unet": {"mask"}, "fields": {"fields"}}[name]
        if name == "fields" and model.manifest.field_model is None:
            raise AgrilandError(f"{model.folder}: a field model's manifest needs its field_model block")
        if not needed <= outputs:
            raise AgrilandError(f"{model.folder}: outputs {sorted(outputs)} lack {sorted(needed - outputs)}")
        if model.manifest.input.dtype != "uint8":
            raise AgrilandError(f"{model.folder}: input must be uint8, the manifest says {model.manifest.input.dtype}")

    def _batcher(self, name: str, model: OnnxModel) -> MicroBatcher:
        hist, wait = self.metrics["batch_size"].labels(model=name), self.metrics["queue_wait"].labels(model=name)

        def observe(size: int, waited: float) -> None:
            hist.observe(size)
            wait.observe(waited)

        return MicroBatcher(
            name,
            model.run,
            max_batch_size=self.settings.max_batch_size,
            max_latency_s=self.settings.max_latency_ms / 1000.0,
            max_queue_tiles=self.settings.max_queue_tiles,
            observe=observe,
            run_timeout_s=self.settings.run_timeout_ms / 1000.0,
            executor=self._executor,  # one device thread per worker: the two models never fight for cores
        )

    @property
    def ready(self) -> bool:
        return not self.errors and set(MODEL_NAMES) <= set(self.models)

    def not_ready_reason(self, name: str | None = None) -> str | None:
        """Why `name` (or, without a name, the whole service) cannot answer; None when it can."""
        if "settings" in self.errors:
            return self.errors["settings"]
        if name is not None:
            return None if name in self.models else self.errors.get(name, f"model {name} is not loaded")
        stuck = [reason for batcher in self.batchers.values() if (reason := batcher.stuck_reason())]
        if self.ready and not stuck:
            return None
        return "; ".join([*(f"{key}: {value}" for key, value in self.errors.items()), *stuck])

    def hung_reason(self) -> str | None:
        """Why this worker should be restarted (a model run stuck for `hung_after_ms` past its deadline), or None."""
        limit_s = self.settings.hung_after_ms / 1000.0
        hung = [
            reason
            for batcher in self.batchers.values()
            if batcher.stuck_for_s() > limit_s and (reason := batcher.stuck_reason())
        ]
        return "; ".join(hung) if hung else None

    def tile_size(self, name: str) -> int:
        return self.models[name].tile_size

    def submit_masks(self, tiles: np.ndarray) -> Future[np.ndarray]:
        """uint8 [N, T, T, 3] -> float32 [N, T, T] arable probability, through the shared batcher."""
        return then(self.batchers["unet"].submit(tiles), _masks)

    def submit_field_planes(self, tiles: np.ndarray) -> Future[np.ndarray]:
        """uint8 [N, T, T, 3] -> float32 [N, T, T, 2] field extent and boundary probability (the field model)."""
        from inference.field_model import field_planes

        spec = self.models["fields"].manifest.field_model
        assert spec is not None  # checked at load (_check_contract)
        return then(
            self.batchers["fields"].submit(tiles),
            lambda out: field_planes(np.asarray(out["fields"], np.float32), spec.classes),
        )

    def submit_clusters(self, tiles: np.ndarray) -> Future[tuple[np.ndarray, np.ndarray]]:
        """uint8 [N, T, T, 3] -> (q [N, K] soft assignments, embedding [N, D]), through the shared batcher."""
        return then(self.batchers["dec"].submit(tiles), _clusters)

    async def predict_masks(self, tiles: np.ndarray) -> np.ndarray:
        return await asyncio.wrap_future(self.submit_masks(tiles))

    async def predict_field_planes(self, tiles: np.ndarray) -> np.ndarray:
        return await asyncio.wrap_future(self.submit_field_planes(tiles))

    def field_model_for(self, mask_mode: str) -> OnnxModel | None:
        """The field model when it answers `mask_mode` (fields, and one is loaded), else None."""
        return self.models.get("fields") if mask_mode == "fields" else None

    async def predict_clusters(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return await asyncio.wrap_future(self.submit_clusters(tiles))

    def retry_after_s(self) -> int:
        return max([b.retry_after_s() for b in self.batchers.values()] or [1])

    def close(self) -> None:
        for batcher in self.batchers.values():
            batcher.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
