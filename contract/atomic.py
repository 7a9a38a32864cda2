"""Atomic output folders: build in a temporary sibling, swap into place only when everything succeeded."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from contract.errors import AgrilandError


@contextmanager
def atomic_dir(out_dir: Path | str, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder that replaces `out_dir` only if the block finishes without error.

    An existing non-empty `out_dir` is an error unless `overwrite`; on failure the temporary folder is
    removed and `out_dir` is left as it was.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise AgrilandError(f"{out_dir} exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise AgrilandError(f"{out_dir} already exists and is not empty; choose another folder or overwrite it")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{tmp.name[-8:]}")
        out_dir.rename(old)
    tmp.rename(out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
