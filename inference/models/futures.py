"""concurrent.futures helpers of the batcher: a future of a function of a result, answers that tolerate a caller's
cancel, and one future for a request split into several batches."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
U = TypeVar("U")
Outputs = dict[str, np.ndarray]


def then(future: Future[T], fn: Callable[[T], U]) -> Future[U]:
    """A future of `fn(result)`; it fails as `future` fails, and cancelling it cancels `future`."""
    out: Future[U] = Future()

    def done(source: Future[T]) -> None:
        if source.cancelled():
            out.cancel()
            return
        error = source.exception()
        try:
            settle(out, None if error is not None else fn(source.result()), error)
        except Exception as err:  # noqa: BLE001 - a failing `fn` fails the future, never the batcher
            settle(out, None, err)

    out.add_done_callback(lambda f: f.cancelled() and future.cancel())
    future.add_done_callback(done)
    return out


def settle(future: Future[Any], result: Any, error: BaseException | None = None) -> None:
    """Answer `future` unless its caller cancelled it meanwhile."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass  # cancelled by its caller (the client went away)


def gathered(parts: list[Future[Outputs]]) -> Future[Outputs]:
    """One future of the parts' outputs concatenated in order; the first failure fails it."""
    out: Future[Outputs] = Future()
    remaining = [len(parts)]
    lock = threading.Lock()

    def done(_: Future[Outputs]) -> None:
        with lock:
            remaining[0] -= 1
            last = remaining[0] == 0
        failed = next((p for p in parts if p.done() and (p.cancelled() or p.exception() is not None)), None)
        if failed is not None:
            settle(out, None, failed.exception() if not failed.cancelled() else RuntimeError("a part was cancelled"))
        elif last:
            results = [p.result() for p in parts]
            settle(out, {key: np.concatenate([r[key] for r in results]) for key in results[0]})

    out.add_done_callback(lambda f: f.cancelled() and [p.cancel() for p in parts])
    for part in parts:
        part.add_done_callback(done)
    return out
