"""The greedy micro-batcher: merging, order, splitting, overload and model errors, with a real numpy model."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from inference.models.batching import MicroBatcher, Overloaded, RunTimeout


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

    async def scenario() -> list[np.ndarray]:
        batcher = MicroBatcher("m", model, max_batch_size=8, observe=lambda n, _: observed.append(n))
        first = await batcher.submit(_tiles([1]))
        model.gate.clear()  # hold the model so that the next requests queue behind a running batch
        blocker = asyncio.create_task(batcher.submit(_tiles([2])))
        await asyncio.sleep(0.05)
        queued = [asyncio.create_task(batcher.submit(_tiles([10 + i]))) for i in range(5)]
        await asyncio.sleep(0.05)
        model.gate.set()
        results = [first, await blocker, *await asyncio.gather(*queued)]
        batcher.close()
        return [r["mean"] for r in results]

    results = asyncio.run(scenario())
    assert [float(r[0]) for r in results] == [1, 2, 10, 11, 12, 13, 14]
    assert model.sizes == [1, 1, 5] and observed == [1, 1, 5]


def test_large_requests_are_split_and_reassembled_in_order() -> None:
    model = SlowModel()

    async def scenario() -> np.ndarray:
        batcher = MicroBatcher("m", model, max_batch_size=4)
        out = await batcher.submit(_tiles(list(range(10))))
        batcher.close()
        return out["mean"]

    np.testing.assert_array_equal(asyncio.run(scenario()), np.arange(10))
    assert max(model.sizes) <= 4 and sum(model.sizes) == 10


def test_full_queue_and_stale_requests_are_overloaded() -> None:
    model = SlowModel()

    async def scenario() -> tuple[Exception, Exception]:
        batcher = MicroBatcher("m", model, max_batch_size=2, max_queue_tiles=3, max_latency_s=0.05)
        model.gate.clear()
        running = asyncio.create_task(batcher.submit(_tiles([1])))
        await asyncio.sleep(0.02)
        stale = asyncio.create_task(batcher.submit(_tiles([2, 3])))
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded) as full:
            await batcher.submit(_tiles([4, 5]))
        time.sleep(0.1)  # the queued request outlives the latency bound while the model is held
        model.gate.set()
        await running
        with pytest.raises(Overloaded) as late:
            await stale
        batcher.close()
        return full.value, late.value

    full, late = asyncio.run(scenario())
    assert "queue is full" in str(full) and full.retry_after_s >= 1
    assert "waited" in str(late)


def test_model_error_fails_only_that_batch() -> None:
    calls = {"n": 0}

    def flaky(tiles: np.ndarray) -> dict[str, np.ndarray]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("boom")
        return {"mean": tiles.reshape(len(tiles), -1).mean(axis=1)}

    async def scenario() -> float:
        batcher = MicroBatcher("m", flaky)
        with pytest.raises(RuntimeError):
            await batcher.submit(_tiles([1]))
        out = await batcher.submit(_tiles([7]))
        batcher.close()
        return float(out["mean"][0])

    assert asyncio.run(scenario()) == 7.0


def test_an_error_in_the_bookkeeping_does_not_strand_queued_requests() -> None:
    """The metrics callback raises on every batch: every queued request is still answered, in order."""
    model = SlowModel()
    calls: list[int] = []

    def broken_observe(size: int, _: float) -> None:
        calls.append(size)
        raise RuntimeError("injected bookkeeping failure")

    async def scenario() -> list[float]:
        batcher = MicroBatcher("m", model, max_batch_size=4, observe=broken_observe)
        model.gate.clear()
        first = asyncio.create_task(batcher.submit(_tiles([1])))
        await asyncio.sleep(0.05)
        queued = [asyncio.create_task(batcher.submit(_tiles([10 + i]))) for i in range(9)]
        await asyncio.sleep(0.05)
        model.gate.set()
        results = [await first, *await asyncio.gather(*queued)]
        later = await batcher.submit(_tiles([99]))
        errors = batcher.worker_errors
        batcher.close()
        return [float(r["mean"][0]) for r in results] + [float(later["mean"][0]), errors]

    *means, errors = asyncio.run(scenario())
    assert means == [1, *range(10, 19), 99]
    assert errors == len(calls) >= 3


def test_a_run_past_its_deadline_fails_its_batch_and_refuses_work_until_it_returns() -> None:
    model = SlowModel()

    async def scenario() -> tuple[str, str | None, str, str | None, float]:
        batcher = MicroBatcher("m", model, max_batch_size=4, run_timeout_s=0.2)
        model.gate.clear()  # the run blocks until the gate opens (a stuck session)
        with pytest.raises(RunTimeout) as late:
            await batcher.submit(_tiles([1]))
        stuck = batcher.stuck_reason()
        with pytest.raises(Overloaded) as refused:
            await batcher.submit(_tiles([2]))
        model.gate.set()
        while batcher.stuck_reason() is not None:
            await asyncio.sleep(0.01)
        after = await batcher.submit(_tiles([3]))
        batcher.close()
        return str(late.value), stuck, str(refused.value), batcher.stuck_reason(), float(after["mean"][0])

    late, stuck, refused, cleared, after = asyncio.run(scenario())
    assert "deadline" in late and stuck is not None and "has not returned" in refused
    assert cleared is None and after == 3
