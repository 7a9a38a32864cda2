"""Nothing waits forever: a scene's predict gives up on a wedged batcher; cancelled job ids are forgotten."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

import numpy as np
import pytest

from inference.models.batching import Overloaded, RunTimeout
from serving.scene_jobs import SceneJobs
from serving.scene_work import SceneCancelled, ScenePredict


def test_scene_predict_gives_up_on_a_batch_that_never_answers() -> None:
    """A submit that never resolves (a wedged batcher) fails the scene with RunTimeout instead of hanging."""
    submitted: list[Future] = []

    def submit(batch: np.ndarray) -> Future:
        submitted.append(Future())
        return submitted[-1]

    predict = ScenePredict(submit, threading.Event(), patience_s=0.05, run_timeout_s=0.05)
    predict.wait_s = 0.3  # (the margin is for real runs; the rule is the same)
    with pytest.raises(RunTimeout, match="no answer"):
        predict(np.zeros((1, 8, 8, 3), np.uint8))
    assert [f.cancelled() for f in submitted] == [True], "the batch was withdrawn"


def test_scene_predict_retries_a_full_queue_then_stops_when_cancelled() -> None:
    calls = {"n": 0}

    def submit(batch: np.ndarray) -> Future:
        calls["n"] += 1
        if calls["n"] < 3:
            raise Overloaded("queue is full", 0.01)
        done: Future = Future()
        done.set_result(batch.shape[0])
        return done

    cancelled = threading.Event()
    predict = ScenePredict(submit, cancelled, patience_s=5.0)
    assert predict(np.zeros((2, 8, 8, 3), np.uint8)) == 2 and calls["n"] == 3 and predict.batches == 1
    cancelled.set()
    with pytest.raises(SceneCancelled):
        predict(np.zeros((1, 8, 8, 3), np.uint8))


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
