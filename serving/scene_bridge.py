"""Scene work off the event loop: a worker thread per admitted scene, bridged to the async micro-batchers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from inference.models.batching import Overloaded, RunTimeout
from serving.config import ServeSettings
from serving.engine import Engine
from serving.scene_queue import SceneQueue
from serving.schemas import ApiError

log = logging.getLogger(__name__)

BRIDGE_MARGIN_S = 5.0


class SceneService(Protocol):
    """What a scene handler needs of the service: its engine and the per-worker scene queue."""

    engine: Engine
    scene_queue: SceneQueue


class SceneCancelled(Exception):
    """The request ended (client gone, timeout) while its scene was still being computed."""


class BatcherBridge:
    """A synchronous `predict(batch)` for a worker thread that awaits the engine on the event loop.

    Each call submits one batch (at most the batcher's batch size) and waits for it, so a scene never has
    more than one batch queued: tile requests that arrive meanwhile are queued ahead of its next batch.
    A full queue is retried until `patience_s` passes; then the scene fails with 503. No batch is waited for
    longer than `patience_s + run_timeout_s` (queueing plus one model run, plus a margin): past that the
    event loop or the batcher is wedged, the scene fails with RunTimeout (503) and its thread is freed.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        submit: Callable[[np.ndarray], Awaitable[Any]],
        cancelled: threading.Event,
        patience_s: float,
        run_timeout_s: float = 60.0,
    ) -> None:
        self._loop = loop
        self._submit = submit
        self._cancelled = cancelled
        self._patience_s = patience_s
        self.wait_s = patience_s + run_timeout_s + BRIDGE_MARGIN_S
        self.batches = 0

    async def _submit_patiently(self, batch: np.ndarray) -> Any:
        deadline = time.monotonic() + self._patience_s
        while True:
            try:
                return await self._submit(batch)
            except Overloaded as err:
                if self._cancelled.is_set() or time.monotonic() + err.retry_after_s > deadline:
                    raise
                await asyncio.sleep(min(err.retry_after_s, 1.0))

    def __call__(self, batch: np.ndarray) -> Any:
        if self._cancelled.is_set():
            raise SceneCancelled("the request ended before the scene was done")
        self.batches += 1
        future = asyncio.run_coroutine_threadsafe(self._submit_patiently(batch), self._loop)
        try:
            return future.result(timeout=self.wait_s)
        except concurrent.futures.TimeoutError as err:
            future.cancel()
            raise RunTimeout(f"a scene batch got no answer in {self.wait_s:.0f} s; the model or the server is stuck") from err


async def run_scene(service: SceneService, work: Callable[[threading.Event], Any]) -> Any:
    """Run `work(cancelled)` in a thread, one scene slot held (waiting for it in the scene queue's order).

    A cancelled request sets `cancelled` (the scene stops before its next batch) and then waits for the
    thread to return: the slot, the temp folder and the memory are released only once the work stopped.
    """
    cancelled = threading.Event()
    async with service.scene_queue.slot():
        running = asyncio.get_running_loop().run_in_executor(None, work, cancelled)
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            cancelled.set()
            log.info("scene request cancelled; waiting for its work to stop before releasing it")
            await asyncio.wait([running])
            raise
        finally:
            cancelled.set()


@contextlib.asynccontextmanager
async def scene_folder(service: SceneService, settings: ServeSettings, ticket: str | None = None) -> AsyncIterator[Path]:
    """A temp folder for one admitted scene; 503 before any byte is spooled when the scene queue is full."""
    async with service.scene_queue.admitted(ticket):
        with tempfile.TemporaryDirectory(prefix="agriland-scene-") as folder:
            yield Path(folder)
