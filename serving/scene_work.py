"""Scene work off the event loop: a worker thread per admitted scene, its model calls straight to the batchers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inference.models.batching import Overloaded, RunTimeout
from serving.config import ServeSettings
from serving.scene_queue import SceneQueue

log = logging.getLogger(__name__)

WAIT_MARGIN_S = 5.0


class SceneCancelled(Exception):
    """The request ended (client gone, timeout) while its scene was still being computed."""


@dataclass
class ScenePredict:
    """A scene thread's `predict(batch)`: one batch submitted to the batcher and waited for at a time.

    A scene never has more than one batch queued, so tile requests that arrive meanwhile go ahead of its next
    batch. A full queue is retried until `patience_s` passes; then the scene fails with 503. No batch is waited
    for longer than `patience_s + run_timeout_s` (queueing plus one model run, plus a margin): past that the
    batcher is wedged, the scene fails with RunTimeout (503) and its thread is freed."""

    submit: Callable[[np.ndarray], Future[Any]]
    cancelled: threading.Event
    patience_s: float
    run_timeout_s: float = 60.0
    batches: int = 0
    wait_s: float = field(init=False)

    def __post_init__(self) -> None:
        self.wait_s = self.patience_s + self.run_timeout_s + WAIT_MARGIN_S

    def __call__(self, batch: np.ndarray) -> Any:
        if self.cancelled.is_set():
            raise SceneCancelled("the request ended before the scene was done")
        self.batches += 1
        started = time.monotonic()
        deadline = started + self.patience_s
        while True:
            future: Future[Any] | None = None
            try:
                future = self.submit(batch)
                return future.result(timeout=max(0.0, started + self.wait_s - time.monotonic()))
            except Overloaded as err:  # a full queue, or a wait past the latency bound: retry while patient
                if self.cancelled.is_set() or time.monotonic() + err.retry_after_s > deadline:
                    raise
                time.sleep(min(err.retry_after_s, 1.0))
            except TimeoutError as err:
                if future is not None:
                    future.cancel()
                raise RunTimeout(
                    f"a scene batch got no answer in {self.wait_s:.0f} s; the model or the server is stuck"
                ) from err


async def run_scene(queue: SceneQueue, work: Callable[[threading.Event], Any]) -> Any:
    """Run `work(cancelled)` in a thread, one scene slot held (waiting for it in the scene queue's order).

    A cancelled request sets `cancelled` (the scene stops before its next batch) and then waits for the
    thread to return: the slot, the temp folder and the memory are released only once the work stopped.
    """
    cancelled = threading.Event()
    async with queue.slot():
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
async def scene_folder(queue: SceneQueue, settings: ServeSettings, ticket: str | None = None) -> AsyncIterator[Path]:
    """A temp folder for one admitted scene; 503 before any byte is spooled when the scene queue is full."""
    async with queue.admitted(ticket):
        with tempfile.TemporaryDirectory(prefix="agriland-scene-") as folder:
            yield Path(folder)
