"""Nothing waits forever: the scene bridge gives up on a wedged batcher; cancelled job ids are forgotten."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from inference.models.batching import RunTimeout
from serving.scene_bridge import BatcherBridge
from serving.scene_jobs import SceneJobs


def test_bridge_gives_up_on_a_batch_that_never_answers() -> None:
    """A submit that never resolves (a wedged batcher) fails the scene with RunTimeout instead of hanging."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    never = asyncio.Event()

    async def submit(batch: np.ndarray) -> np.ndarray:
        await never.wait()
        return batch

    try:
        bridge = BatcherBridge(loop, submit, threading.Event(), patience_s=0.05, run_timeout_s=0.05)
        bridge.wait_s = 0.3  # (the margin is for real runs; the rule is the same)
        with pytest.raises(RunTimeout, match="no answer"):
            bridge(np.zeros((1, 8, 8, 3), np.uint8))

        async def left_running() -> list[asyncio.Task]:
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if others:
                await asyncio.wait(others, timeout=10)
            return [t for t in others if not t.done()]

        assert asyncio.run_coroutine_threadsafe(left_running(), loop).result() == [], "the submit was cancelled"
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


def test_cancelled_job_ids_do_not_pile_up() -> None:
    jobs = SceneJobs()

    async def job(task_id: str) -> str:
        jobs.started(task_id)
        try:
            await asyncio.sleep(3600)
            return "done"
        except asyncio.CancelledError:
            assert task_id in jobs.cancelled  # the job can tell a cancel from a shutdown
            return "cancelled"
        finally:
            jobs.finished(task_id)

    async def scenario() -> list[str]:
        answers = []
        for k in range(200):
            task = asyncio.create_task(job(f"task-{k}"))
            await asyncio.sleep(0)
            answers.append(await jobs.cancel(f"task-{k}"))
            await task
        return answers

    assert asyncio.run(scenario()) == ["cancelled"] * 200
    assert jobs.cancelled == set() and jobs.running == {}
