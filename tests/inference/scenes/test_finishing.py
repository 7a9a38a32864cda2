"""The finishing stage: jobs in order, one at a time beside the caller, errors surfaced, nothing left running."""

from __future__ import annotations

import threading
import time

import pytest

from inference.scenes.finishing import FinishingStage


@pytest.mark.parametrize("threaded", [True, False])
def test_jobs_run_in_submission_order(threaded: bool) -> None:
    done: list[int] = []
    with FinishingStage(threaded=threaded) as stage:
        for i in range(20):
            stage.submit(lambda i=i: done.append(i))
    assert done == list(range(20))


def test_a_job_runs_on_its_own_thread_while_the_caller_goes_on() -> None:
    started, release = threading.Event(), threading.Event()
    names: list[str] = []

    def job() -> None:
        names.append(threading.current_thread().name)
        started.set()
        release.wait(5)

    with FinishingStage() as stage:
        stage.submit(job)
        assert started.wait(5)  # the caller got here while the job is still running
        release.set()
    assert names and names[0].startswith("agriland-finish")


def test_a_failed_job_is_raised_at_the_next_submit() -> None:
    def fail() -> None:
        raise ValueError("sink full")

    ran: list[int] = []
    with pytest.raises(ValueError, match="sink full"):
        with FinishingStage() as stage:
            stage.submit(fail)
            stage.submit(lambda: ran.append(1))
    assert ran == []  # the job after the failure never ran


def test_a_failed_last_job_is_raised_on_exit() -> None:
    def fail() -> None:
        raise ValueError("last block")

    with pytest.raises(ValueError, match="last block"):
        with FinishingStage() as stage:
            stage.submit(fail)


def test_when_the_caller_fails_the_running_job_ends_first_and_the_callers_error_wins() -> None:
    finished = threading.Event()

    def slow() -> None:
        time.sleep(0.2)
        finished.set()
        raise OSError("ignored: the run had already failed")

    with pytest.raises(KeyError):
        with FinishingStage() as stage:
            stage.submit(slow)
            raise KeyError("read failed")
    assert finished.is_set()  # nothing was still writing when the caller's error left the block
