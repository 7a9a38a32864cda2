"""Scene jobs run as BentoML tasks: which job runs where, and a cancel that returns only once the work stopped."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class SceneJobs:
    """The asyncio task of every scene job running in this worker, by BentoML task id."""

    running: dict[str, asyncio.Task[object]] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)

    def started(self, task_id: str | None) -> None:
        """Called from inside the job's own coroutine."""
        current = asyncio.current_task()
        if task_id and current is not None:
            self.running[task_id] = current

    def finished(self, task_id: str | None) -> None:
        """Called from the job's own `finally`: forgets it (the cancelled set holds running jobs only)."""
        if task_id:
            self.running.pop(task_id, None)
            self.cancelled.discard(task_id)

    async def cancel(self, task_id: str) -> str:
        """Cancel a running job and wait until its work stopped and released its folder and slot.

        Returns "cancelled", or "not running" for an id this worker does not run (finished, unknown).
        """
        job = self.running.get(task_id)
        if job is None:
            return "not running"
        self.cancelled.add(task_id)
        job.cancel()
        await asyncio.wait([job])  # the job's own cleanup (thread stopped, temp folder removed) ran by now
        log.info("scene job %s cancelled; its work has stopped", task_id)
        return "cancelled"
