"""The bounded scene queue of one worker: a few scenes run, more wait their turn in order, only past the bound 503.

`AGRILAND_MAX_SCENES` scenes are decoded and stitched at once; up to `AGRILAND_MAX_SCENE_QUEUE` more are admitted
(uploading, or spooled and waiting for a slot) and run in arrival order. A scene past that bound is refused before
any byte is spooled, with a Retry-After estimated from the scenes this worker ran lately. A client that sends an
`X-Agriland-Ticket` header can read its place in the queue (`GET /map/api/queue?ticket=`), which the map page shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Literal

from serving.schemas import ApiError

TICKET_HEADER = "x-agriland-ticket"
_TICKET = re.compile(r"[A-Za-z0-9_-]{8,64}")
DEFAULT_RETRY_AFTER_S = 10  # before this worker has run any scene
MAX_RETRY_AFTER_S = 120

QueueState = Literal["waiting", "running", "unknown"]


@dataclass(eq=False)
class QueueEntry:
    """One admitted scene request: its ticket (if the client sent one) and whether it holds a slot yet."""

    ticket: str | None
    admitted_at: float = field(default_factory=time.monotonic)
    running: bool = False


_CURRENT: ContextVar[QueueEntry | None] = ContextVar("agriland_scene_entry", default=None)


def parse_ticket(value: str | None) -> str | None:
    """The X-Agriland-Ticket header: absent, or 8-64 letters, digits, `-` or `_` (else a 400)."""
    if value is None:
        return None
    if not _TICKET.fullmatch(value):
        raise ApiError(
            400,
            "X-Agriland-Ticket must be 8-64 letters, digits, '-' or '_' (a random id the client "
            "chooses to read its place in the scene queue)",
        )
    return value


class SceneQueue:
    """Admission (bounded), the running slots and queue positions of this worker's scene requests."""

    def __init__(self, max_running: int, max_waiting: int) -> None:
        self.max_running = max_running
        self.max_waiting = max_waiting
        self._slots = asyncio.Semaphore(max_running)
        self._entries: list[QueueEntry] = []  # in admission order
        self._durations: deque[float] = deque(maxlen=16)

    @property
    def running(self) -> int:
        return sum(e.running for e in self._entries)

    @property
    def waiting(self) -> int:
        return sum(not e.running for e in self._entries)

    def retry_after_s(self) -> int:
        """Seconds until a place is likely free: the mean time of this worker's recent scenes (10 s before any)."""
        if not self._durations:
            return DEFAULT_RETRY_AFTER_S
        mean = sum(self._durations) / len(self._durations)
        return max(1, min(MAX_RETRY_AFTER_S, round(mean)))

    @contextlib.asynccontextmanager
    async def admitted(self, ticket: str | None = None) -> AsyncIterator[QueueEntry]:
        """Hold a place for one scene request from before its upload to its answer; 503 past the bound."""
        if ticket is not None and self.find(ticket) is not None:
            raise ApiError(409, f"a scene with ticket {ticket} is already queued or running; use a new ticket")
        if len(self._entries) >= self.max_running + self.max_waiting:
            raise ApiError(
                503,
                f"the scene queue is full: {self.running} scene(s) running and {self.waiting} waiting (limit "
                f"{self.max_running} running + {self.max_waiting} waiting per worker, AGRILAND_MAX_SCENES and "
                "AGRILAND_MAX_SCENE_QUEUE); retry after the Retry-After seconds",
                retry_after_s=self.retry_after_s(),
            )
        entry = QueueEntry(ticket)
        self._entries.append(entry)
        token = _CURRENT.set(entry)
        try:
            yield entry
        finally:
            _CURRENT.reset(token)
            self._entries.remove(entry)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a running slot (in arrival order) for the current request's scene, and hold it."""
        entry = _CURRENT.get()
        async with self._slots:
            if entry is not None:
                entry.running = True
            started = time.monotonic()
            try:
                yield
            finally:
                self._durations.append(time.monotonic() - started)
                if entry is not None:
                    entry.running = False

    def find(self, ticket: str) -> QueueEntry | None:
        return next((e for e in self._entries if e.ticket == ticket), None)

    def position(self, ticket: str) -> dict[str, object]:
        """Where a ticket's scene stands: running, or waiting with its 1-based place among the waiting ones."""
        entry = self.find(ticket)
        state: QueueState = "unknown" if entry is None else ("running" if entry.running else "waiting")
        place = None
        if entry is not None and not entry.running:
            place = 1 + sum(not e.running for e in self._entries[: self._entries.index(entry)])
        return {
            "ticket": ticket,
            "state": state,
            "position": place,
            "running": self.running,
            "waiting": self.waiting,
            "max_running": self.max_running,
            "max_waiting": self.max_waiting,
            "retry_after_s": self.retry_after_s(),
        }
