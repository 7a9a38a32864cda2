"""Run small CPU work inline on the event loop and large work in a worker thread (one hop only when it pays)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

P = ParamSpec("P")
R = TypeVar("R")

# Below this many input bytes a request's decoding/encoding takes well under a millisecond (a 64 px tile:
# ~0.1 ms), less than the thread hand-off itself costs on busy cores; above it the event loop would stall.
INLINE_MAX_BYTES = 256 * 1024


async def run_sized(work_bytes: int, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`fn(*args)` on the event loop when `work_bytes` is small, else in anyio's worker threads."""
    if work_bytes <= INLINE_MAX_BYTES:
        return fn(*args, **kwargs)
    return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
