"""The greedy micro-batcher: merging, order, splitting, overload and model errors, with a real numpy model.

`submit` hands back a concurrent.futures.Future: these tests wait on it as a scene thread does
(`.result(timeout)`), and one test awaits it from an event loop as the tile endpoints do."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from inference.models.batching import MicroBatcher, Overloaded, RunTimeout
from inference.models.futures import then


class SlowModel:
    """Returns each tile's mean pixel value; records batch sizes; can be held to let requests queue."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, tiles: np.ndarray) -> dict[str, np.ndarray]:
        self.gate.wait(5)
        self.sizes.append(len(tiles))
        return {"mean": tiles.reshape(len(tiles), -1).mean(axis=1)}


def _tiles(values: list[int]) -> np.ndarray:
    return np.stack([np.full((4, 4, 3), v, np.uint8) for v in values])


def test_lone_request_runs_at_once_and_queued_ones_merge() -> None:
    model = SlowModel()
    observed: list[int] = []
    batcher = MicroBatcher("m", model, max_batch_size=8, observe=lambda n, _: observed.append(n))
    try:
        first = batcher.submit(_tiles([1])).result(5)
        model.gate.clear()  # hold the model so that the next requests queue behind a running batch
        blocker = batcher.submit(_tiles([2]))
        time.sleep(0.05)
        queued = [batcher.submit(_tiles([10 + i])) for i in range(5)]
        time.sleep(0.05)
        model.gate.set()
        results = [first, blocker.result(5), *(f.result(5) for f in queued)]
    finally:
        batcher.close()
    assert [float(r["mean"][0]) for r in results] == [1, 2, 10, 11, 12, 13, 14]
    assert model.sizes == [1, 1, 5] and observed == [1, 1, 5]


def test_the_event_loop_awaits_the_same_future() -> None:
    batcher = MicroBatcher("m", SlowModel(), max_batch_size=4)

    async def scenario() -> list[float]:
        futures = [asyncio.wrap_future(then(batcher.submit(_tiles([v])), lambda out: float(out["mean"][0])))
                   for v in (3, 4, 5)]
        return list(await asyncio.gather(*futures))

    try:
        assert asyncio.run(scenario()) == [3.0, 4.0, 5.0]
    finally:
        batcher.close()


def test_large_requests_are_split_and_reassembled_in_order() -> None:
    model = SlowModel()
    batcher = MicroBatcher("m", model, max_batch_size=4)
    try:
        out = batcher.submit(_tiles(list(range(10)))).result(5)
    finally:
        batcher.close()
    np.testing.assert_array_equal(out["mean"], np.arange(10))
    assert max(model.sizes) <= 4 and sum(model.sizes) == 10


def test_full_queue_and_stale_requests_are_overloaded() -> None:
    model = SlowModel()
    batcher = MicroBatcher("m", model, max_batch_size=2, max_queue_tiles=3, max_latency_s=0.05)
    try:
        model.gate.clear()
        running = batcher.submit(_tiles([1]))
        time.sleep(0.02)
        stale = batcher.submit(_tiles([2, 3]))
        time.sleep(0.01)
        with pytest.raises(Overloaded) as full:
            batcher.submit(_tiles([4, 5]))
        time.sleep(0.1)  # the queued request outlives the latency bound while the model is held
        model.gate.set()
        running.result(5)
        with pytest.raises(Overloaded) as late:
            stale.result(5)
    finally:
        batcher.close()
    assert "queue is full" in str(full.value) and full.value.retry_after_s >= 1
    assert "waited" in str(late.value)


def test_model_error_fails_only_that_batch() -> None:
    calls = {"n": 0}

    def flaky(tiles: np.ndarray) -> dict[str, np.ndarray]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return {"mean": tiles.reshape(len(tiles), -1).mean(axis=1)}

    batcher = MicroBatcher("m", flaky)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            batcher.submit(_tiles([1])).result(5)
        assert float(batcher.submit(_tiles([7])).result(5)["mean"][0]) == 7.0
    finally:
        batcher.close()


def test_an_error_in_the_bookkeeping_does_not_strand_queued_requests() -> None:
    """The metrics callback raises on every batch: every queued request is still answered, in order."""
    model = SlowModel()
    calls: list[int] = []

    def broken_observe(size: int, _: float) -> None:
        calls.append(size)
        raise RuntimeError("injected bookkeeping failure")

    batcher = MicroBatcher("m", model, max_batch_size=4, observe=broken_observe)
    try:
        model.gate.clear()
        first = batcher.submit(_tiles([1]))
        time.sleep(0.05)
        queued = [batcher.submit(_tiles([10 + i])) for i in range(9)]
        time.sleep(0.05)
        model.gate.set()
        means = [float(f.result(5)["mean"][0]) for f in (first, *queued)]
        later = float(batcher.submit(_tiles([99])).result(5)["mean"][0])
        errors = batcher.worker_errors
    finally:
        batcher.close()
    assert means == [1, *range(10, 19)] and later == 99
    assert errors == len(calls) >= 3


def test_a_run_past_its_deadline_fails_its_batch_and_refuses_work_until_it_returns() -> None:
    model = SlowModel()
    batcher = MicroBatcher("m", model, max_batch_size=4, run_timeout_s=0.2)
    try:
        model.gate.clear()  # the run blocks until the gate opens (a stuck session)
        with pytest.raises(RunTimeout, match="deadline"):
            batcher.submit(_tiles([1])).result(5)
        assert batcher.stuck_reason() is not None
        with pytest.raises(Overloaded, match="has not returned"):
            batcher.submit(_tiles([2]))
        model.gate.set()
        deadline = time.monotonic() + 5
        while batcher.stuck_reason() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert batcher.stuck_reason() is None
        assert float(batcher.submit(_tiles([3])).result(5)["mean"][0]) == 3
    finally:
        batcher.close()


def test_a_cancelled_request_is_skipped() -> None:
    model = SlowModel()
    batcher = MicroBatcher("m", model, max_batch_size=8)
    try:
        model.gate.clear()
        running = batcher.submit(_tiles([1]))
        time.sleep(0.05)
        gone = batcher.submit(_tiles([2]))
        kept = batcher.submit(_tiles([3]))
        assert gone.cancel()  # the client went away while it queued
        model.gate.set()
        assert float(running.result(5)["mean"][0]) == 1 and float(kept.result(5)["mean"][0]) == 3
    finally:
        batcher.close()
    assert model.sizes == [1, 1]
