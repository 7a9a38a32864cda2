"""Atomic outputs, the one way agriland writes files and folders: build beside the target, swap in only on success."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from contract.errors import AgrilandError

SHARED_FILE_MODE = 0o644  # mkstemp makes 0600; outputs are for analysts and other services to read


@contextmanager
def atomic_file(path: Path | str, suffix: str = ".tmp", placeholder: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; it replaces `path` only if the block finishes.

    On any error the temporary file is removed and `path` is left as it was, so no reader ever sees a
    half-written file. `suffix` lets writers that infer the format from the name (GDAL drivers) see it;
    `placeholder=False` removes the reserved empty file first, for writers that refuse to overwrite one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    if not placeholder:
        tmp.unlink()
    try:
        yield tmp
        os.chmod(tmp, SHARED_FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path | str, data: bytes) -> Path:
    """Write a whole file or nothing."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write a whole UTF-8 text file or nothing (newlines as given)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


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
    replace_dir(tmp, out_dir)


def replace_dir(staging: Path, final: Path) -> None:
    """Swap a finished staging folder into `final` (an existing `final` is moved aside first, then removed)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{staging.name[-8:]}")
        final.rename(old)
    staging.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
