"""A greedy micro-batcher: runs at once when the model is idle and merges whatever queued meanwhile.

`submit` may be called from any thread and hands back a `concurrent.futures.Future`: the event loop awaits it with
`asyncio.wrap_future`, a scene's worker thread with `.result(timeout)`. One batcher thread per model takes batches
and waits for the model run on the device executor (shared by the models of a worker, so they never fight for cores).
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from inference.models.futures import gathered, settle

log = logging.getLogger(__name__)

RunFn = Callable[[np.ndarray], dict[str, np.ndarray]]
ObserveFn = Callable[[int, float], None]  # (batch size in tiles, seconds the oldest tile waited)
Outputs = dict[str, np.ndarray]


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
    future: Future[Outputs] = field(default_factory=Future)
    enqueued: float = field(default_factory=time.monotonic)


class MicroBatcher:
    """Merges concurrent `submit` calls into model runs of at most `max_batch_size` tiles.

    There is no timer: the batcher thread takes the queue's head the moment the model is free, plus every job
    that queued while the previous batch ran (up to the batch size). A lone request therefore waits for nothing,
    and batches grow exactly as fast as requests pile up.
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
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._own_executor = executor is None
        # one device thread per model by default; pass a shared executor to serialise several models on one device
        self._executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"ort-{name}")
        self._seconds_per_tile = 0.1  # running estimate, used for Retry-After
        self.run_timeout_s = run_timeout_s
        self.stuck_since: float | None = None  # monotonic time a run passed its deadline and has not returned
        self.worker_errors = 0  # exceptions caught in the batcher's own code (each one logged)

    @property
    def queued_tiles(self) -> int:
        return self._queued_tiles

    def retry_after_s(self) -> int:
        """Seconds until the current queue has probably drained (at least 1)."""
        return max(1, math.ceil(self._queued_tiles * self._seconds_per_tile))

    def stuck_reason(self) -> str | None:
        """Why the model cannot take work now (a run past its deadline still holds the session), or None."""
        since = self.stuck_since
        if since is None:
            return None
        return (
            f"the {self.name} model run has not returned for {time.monotonic() - since + self.run_timeout_s:.0f} s "
            f"(deadline {self.run_timeout_s:.0f} s)"
        )

    def stuck_for_s(self) -> float:
        """Seconds since the current run passed its deadline (0 when no run is late)."""
        since = self.stuck_since
        return 0.0 if since is None else time.monotonic() - since

    def submit(self, tiles: np.ndarray) -> Future[Outputs]:
        """Queue uint8 [N, T, T, 3] for the model; the future's outputs keep the input order.

        A full queue or a stuck model raises Overloaded at once; a tile that then waits past the latency bound
        fails its future with Overloaded, a run past its deadline with RunTimeout."""
        n = int(tiles.shape[0])
        if n == 0:
            raise ValueError("no tiles to run")
        stuck = self.stuck_reason()
        if stuck is not None:
            raise Overloaded(f"{stuck}; retry later", max(1.0, self.run_timeout_s))
        jobs = [_Job(tiles[i : i + self.max_batch_size]) for i in range(0, n, self.max_batch_size)]
        with self._lock:
            if self._closed:
                raise RuntimeError(f"the {self.name} batcher is closed")
            if self._queued_tiles + n > self.max_queue_tiles:
                raise Overloaded(
                    f"the {self.name} model queue is full ({self._queued_tiles} tiles waiting, limit "
                    f"{self.max_queue_tiles}); retry later",
                    self.retry_after_s(),
                )
            self._queue.extend(jobs)
            self._queued_tiles += n
            self._ensure_thread()
            self._lock.notify()
        return jobs[0].future if len(jobs) == 1 else gathered([job.future for job in jobs])

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name=f"batcher-{self.name}", daemon=True)
            self._thread.start()

    def _take_batch(self) -> list[_Job]:
        """Pop jobs from the head while they fit in one batch; expire those that waited too long (lock held)."""
        batch: list[_Job] = []
        size = 0
        now = time.monotonic()
        while self._queue and size + len(self._queue[0].tiles) <= self.max_batch_size:
            job = self._queue.popleft()
            self._queued_tiles -= len(job.tiles)
            if not job.future.set_running_or_notify_cancel():  # the client went away
                continue
            waited = now - job.enqueued
            if waited > self.max_latency_s:
                job.future.set_exception(Overloaded(
                    f"the {self.name} model is overloaded: the request waited {waited:.1f} s, "
                    f"over the {self.max_latency_s:.0f} s bound; retry later",
                    self.retry_after_s(),
                ))
                continue
            batch.append(job)
            size += len(job.tiles)
        return batch

    def _work(self) -> None:
        """Until closed: take a batch, run it, answer it. Nothing raised in here may end the loop."""
        while True:
            with self._lock:
                while not self._queue and not self._closed:
                    self._lock.wait()
                if self._closed:
                    return
                batch: list[_Job] = []
                try:
                    batch = self._take_batch()
                except Exception as err:  # noqa: BLE001
                    self._worker_error(batch, err)
                    continue
            try:
                if batch:
                    self._run_batch(batch)
            except Exception as err:  # noqa: BLE001 - a bug in the bookkeeping fails its batch, not the batcher
                self._worker_error(batch, err)

    def _worker_error(self, batch: list[_Job], err: Exception) -> None:
        self.worker_errors += 1
        log.exception("%s batch worker error (the worker goes on)", self.name)
        for job in batch:
            if not job.future.done():
                settle(job.future, None, RuntimeError(f"internal error in the {self.name} batcher: {err!r}"))

    def _run_batch(self, batch: list[_Job]) -> None:
        tiles = batch[0].tiles if len(batch) == 1 else np.concatenate([job.tiles for job in batch])
        oldest_wait = time.monotonic() - min(job.enqueued for job in batch)
        started = time.monotonic()
        run = self._executor.submit(self._run, tiles)
        try:
            outputs = run.result(timeout=self.run_timeout_s)
        except TimeoutError:
            self._stuck(batch, len(tiles))
            try:
                run.result()  # one device thread: nothing else can run until this returns
            except Exception:  # noqa: BLE001 - its batch has failed already
                pass
            self.stuck_since = None
            log.warning("%s model run returned after %.0f s; accepting work again", self.name, time.monotonic() - started)
            return
        except Exception as err:  # a model failure fails this batch, not the batcher
            log.exception("%s model run failed on a batch of %d tiles", self.name, len(tiles))
            for job in batch:
                settle(job.future, None, err)
            return
        elapsed = time.monotonic() - started
        self._seconds_per_tile = 0.8 * self._seconds_per_tile + 0.2 * elapsed / len(tiles)
        start = 0
        for job in batch:
            stop = start + len(job.tiles)
            settle(job.future, {key: value[start:stop] for key, value in outputs.items()})
            start = stop
        if self._observe is not None:  # metrics last: a failure here must not cost anyone their answer
            self._observe(len(tiles), oldest_wait)

    def _stuck(self, batch: list[_Job], n_tiles: int) -> None:
        """Fail the late batch and everything queued behind it; new work is refused until the run returns."""
        self.stuck_since = time.monotonic()
        log.error("%s model run of %d tiles passed its %.0f s deadline; not ready until it returns",
                  self.name, n_tiles, self.run_timeout_s)
        error = RunTimeout(f"the {self.name} model run took longer than its {self.run_timeout_s:.0f} s deadline")
        with self._lock:
            waiting = [*batch, *self._queue]
            self._queue.clear()
            self._queued_tiles = 0
        for job in waiting:
            settle(job.future, None, error)

    def close(self) -> None:
        """Stop the batcher thread and its device thread (pending requests are cancelled)."""
        with self._lock:
            self._closed = True
            for job in self._queue:
                job.future.cancel()
            self._queue.clear()
            self._queued_tiles = 0
            self._lock.notify_all()
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)
