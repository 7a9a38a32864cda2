"""The finishing stage of a windowed run on a thread of its own: one block's delineation, mask and sinks run while
the model computes the next block (the model keeps every core busy; delineation and writing mostly use one)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

log = logging.getLogger(__name__)


class FinishingStage:
    """Runs submitted jobs in order on one worker thread, at most one behind the caller.

    `submit` first waits for the previous job, so blocks reach the sinks in submission order, memory holds one
    finished block beside the one being computed, and a failed job's error surfaces at the next `submit`, at
    `drain` or on exit. Leaving the `with` block always waits for a running job, so nothing writes to a sink after
    the caller has moved on (closed or removed the outputs). `threaded=False` runs each job on the caller's thread.
    """

    def __init__(self, threaded: bool = True) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="agriland-finish") if threaded else None
        self._pending: Future[None] | None = None

    def submit(self, job: Callable[[], None]) -> None:
        self.drain()
        if self._executor is None:
            job()
        else:
            self._pending = self._executor.submit(job)

    def drain(self) -> None:
        """Wait for the job in flight; re-raise its error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> FinishingStage:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if kind is None:
                self.drain()
            elif self._pending is not None:
                # the caller failed: let the running job end, keep the caller's error
                try:
                    self._pending.result()
                except BaseException:  # noqa: BLE001 - the caller's error is the one to report
                    log.debug("a finishing job failed after the run had already failed", exc_info=True)
                self._pending = None
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
