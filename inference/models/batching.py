"""A greedy micro-batcher: runs at once when the model is idle and merges whatever queued meanwhile."""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

RunFn = Callable[[np.ndarray], dict[str, np.ndarray]]
ObserveFn = Callable[[int, float], None]  # (batch size in tiles, seconds the oldest tile waited)


class RunTimeout(Exception):
    """A model run passed its deadline; the session is treated as stuck until that run returns."""


class Overloaded(Exception):
    """The queue is full or a tile waited past the latency bound; answer 503 with Retry-After."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass
class _Job:
    tiles: np.ndarray
    future: asyncio.Future[dict[str, np.ndarray]]
    enqueued: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Merges concurrent `submit` calls into model runs of at most `max_batch_size` tiles.

    There is no timer: the worker takes the queue's head the moment the model is free, plus every job
    that queued while the previous batch ran (up to the batch size). A lone request therefore waits for
    nothing, and batches grow exactly as fast as requests pile up. Model runs happen on one dedicated
    thread, so the event loop keeps accepting requests meanwhile.
    """

    def __init__(
        self,
        name: str,
        run: RunFn,
        max_batch_size: int = 16,
        max_latency_s: float = 30.0,
        max_queue_tiles: int = 256,
        observe: ObserveFn | None = None,
        executor: ThreadPoolExecutor | None = None,
        run_timeout_s: float = 60.0,
    ) -> None:
        if max_batch_size <= 0 or max_queue_tiles <= 0 or max_latency_s <= 0:
            raise ValueError("batch size, queue size and latency bound must be positive")
        self.name = name
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_latency_s = max_latency_s
        self.max_queue_tiles = max_queue_tiles
        self._observe = observe
        self._queue: collections.deque[_Job] = collections.deque()
        self._queued_tiles = 0
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._own_executor = executor is None
        # one thread per model by default; pass a shared executor to serialise several models on one device
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ort-{name}")
        self._seconds_per_tile = 0.1  # running estimate, used for Retry-After
        self.run_timeout_s = run_timeout_s
        self.stuck_since: float | None = None  # monotonic time a run passed its deadline and has not returned
        self.worker_errors = 0  # exceptions caught in the worker's own code (each one logged)

    @property
    def queued_tiles(self) -> int:
        return self._queued_tiles

    def retry_after_s(self) -> int:
        """Seconds until the current queue has probably drained (at least 1)."""
        return max(1, math.ceil(self._queued_tiles * self._seconds_per_tile))

    def stuck_reason(self) -> str | None:
        """Why the model cannot take work now (a run past its deadline still holds the session), or None."""
        if self.stuck_since is None:
            return None
        return (
            f"the {self.name} model run has not returned for {time.monotonic() - self.stuck_since + self.run_timeout_s:.0f} s "
            f"(deadline {self.run_timeout_s:.0f} s)"
        )

    def stuck_for_s(self) -> float:
        """Seconds since the current run passed its deadline (0 when no run is late)."""
        return 0.0 if self.stuck_since is None else time.monotonic() - self.stuck_since

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._wakeup = asyncio.Event()
            self._worker = asyncio.get_running_loop().create_task(self._work(), name=f"batcher-{self.name}")

    async def submit(self, tiles: np.ndarray) -> dict[str, np.ndarray]:
        """Run uint8 [N, T, T, 3] through the model via the shared queue; outputs keep the input order."""
        n = int(tiles.shape[0])
        if n == 0:
            raise ValueError("no tiles to run")
        stuck = self.stuck_reason()
        if stuck is not None:
            raise Overloaded(f"{stuck}; retry later", max(1.0, self.run_timeout_s))
        if self._queued_tiles + n > self.max_queue_tiles:
            raise Overloaded(
                f"the {self.name} model queue is full ({self._queued_tiles} tiles waiting, limit "
                f"{self.max_queue_tiles}); retry later",
                self.retry_after_s(),
            )
        self._ensure_worker()
        loop = asyncio.get_running_loop()
        jobs = [
            _Job(tiles[i : i + self.max_batch_size], loop.create_future()) for i in range(0, n, self.max_batch_size)
        ]
        for job in jobs:
            self._queue.append(job)
            self._queued_tiles += len(job.tiles)
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            results = await asyncio.gather(*(job.future for job in jobs))
        except BaseException:
            for job in jobs:
                job.future.cancel()
            raise
        if len(results) == 1:
            return results[0]
        return {key: np.concatenate([r[key] for r in results]) for key in results[0]}

    def _take_batch(self) -> list[_Job]:
        """Pop jobs from the head while they fit in one batch; expire those that waited too long."""
        batch: list[_Job] = []
        size = 0
        now = time.monotonic()
        while self._queue and size + len(self._queue[0].tiles) <= self.max_batch_size:
            job = self._queue.popleft()
            self._queued_tiles -= len(job.tiles)
            if job.future.done():  # the client went away
                continue
            waited = now - job.enqueued
            if waited > self.max_latency_s:
                job.future.set_exception(
                    Overloaded(
                        f"the {self.name} model is overloaded: the request waited {waited:.1f} s, "
                        f"over the {self.max_latency_s:.0f} s bound; retry later",
                        self.retry_after_s(),
                    )
                )
                continue
            batch.append(job)
            size += len(job.tiles)
        return batch

    async def _work(self) -> None:
        """Forever: take a batch, run it, answer it. Nothing raised in here may end the loop."""
        assert self._wakeup is not None
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch: list[_Job] = []
            try:
                batch = self._take_batch()
                if batch:
                    await self._run_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - a bug in the bookkeeping fails its batch, not the worker
                self.worker_errors += 1
                log.exception("%s batch worker error (the worker goes on)", self.name)
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(RuntimeError(f"internal error in the {self.name} batcher: {err!r}"))

    async def _run_batch(self, batch: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        tiles = batch[0].tiles if len(batch) == 1 else np.concatenate([job.tiles for job in batch])
        oldest_wait = time.monotonic() - min(job.enqueued for job in batch)
        started = time.monotonic()
        run = loop.run_in_executor(self._executor, self._run, tiles)
        try:
            outputs = await asyncio.wait_for(asyncio.shield(run), self.run_timeout_s)
        except TimeoutError:
            self._stuck(batch, run, len(tiles))
            await asyncio.wait([run])  # one device thread: nothing else can run until this returns
            self.stuck_since = None
            log.warning("%s model run returned after %.0f s; accepting work again", self.name, time.monotonic() - started)
            return
        except Exception as err:  # a model failure fails this batch, not the worker
            log.exception("%s model run failed on a batch of %d tiles", self.name, len(tiles))
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(err)
            return
        elapsed = time.monotonic() - started
        self._seconds_per_tile = 0.8 * self._seconds_per_tile + 0.2 * elapsed / len(tiles)
        start = 0
        for job in batch:
            stop = start + len(job.tiles)
            if not job.future.done():
                job.future.set_result({key: value[start:stop] for key, value in outputs.items()})
            start = stop
        if self._observe is not None:  # metrics last: a failure here must not cost anyone their answer
            self._observe(len(tiles), oldest_wait)

    def _stuck(self, batch: list[_Job], run: asyncio.Future[dict[str, np.ndarray]], n_tiles: int) -> None:
        """Fail the late batch and everything queued behind it; new work is refused until the run returns."""
        self.stuck_since = time.monotonic()
        log.error("%s model run of %d tiles passed its %.0f s deadline; not ready until it returns",
                  self.name, n_tiles, self.run_timeout_s)
        run.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieve a late error: no warning
        error = RunTimeout(f"the {self.name} model run took longer than its {self.run_timeout_s:.0f} s deadline")
        waiting = [*batch, *self._queue]
        self._queue.clear()
        self._queued_tiles = 0
        for job in waiting:
            if not job.future.done():
                job.future.set_exception(error)

    def close(self) -> None:
        """Stop the worker and its thread (pending requests are cancelled)."""
        if self._worker is not None:
            self._worker.cancel()
        for job in self._queue:
            job.future.cancel()
        self._queue.clear()
        self._queued_tiles = 0
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)
