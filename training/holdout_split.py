"""A fixed held-out split of a class-folder tile set (EuroSAT layout), by a hash of each tile's class and name.

The release models train on the `train` side only and their model cards report on the `heldout` side, so every
release measures on tiles none of its models saw. The split depends on nothing but the file names: the same
tiles are held out on every machine and in every release.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from contract.atomic import atomic_dir
from contract.errors import AgrilandError
from training.tile_io import image_files

log = logging.getLogger(__name__)

HELDOUT_PERCENT = 15


def is_heldout(class_name: str, file_name: str, percent: int = HELDOUT_PERCENT) -> bool:
    """True for the `percent` % of tiles whose sha256(class/name) falls in the held-out bucket."""
    digest = hashlib.sha256(f"{class_name}/{file_name}".encode()).hexdigest()
    return int(digest[:8], 16) % 100 < percent


def split_class_folders(source: Path, out: Path, percent: int = HELDOUT_PERCENT) -> dict[str, dict[str, int]]:
    """Write `out/train/<Class>/` and `out/heldout/<Class>/` as symbolic links to the tiles of `source`.

    Returns the tile counts per split and class. The folder is replaced whole (built aside, then renamed).
    """
    if not source.is_dir():
        raise AgrilandError(f"tile folder not found: {source} (expected <folder>/<ClassName>/*.jpg)")
    classes = sorted(d for d in source.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise AgrilandError(f"{source} has no class subfolders (expected <folder>/<ClassName>/*.jpg)")
    counts: dict[str, dict[str, int]] = {"train": {}, "heldout": {}}
    with atomic_dir(out, overwrite=True) as staging:
        for folder in classes:
            for split in counts:
                (staging / split / folder.name).mkdir(parents=True, exist_ok=True)
                counts[split][folder.name] = 0
            for path in image_files(folder):
                split = "heldout" if is_heldout(folder.name, path.name, percent) else "train"
                os.symlink(path.resolve(), staging / split / folder.name / path.name)
                counts[split][folder.name] += 1
    log.info(
        "held-out split of %s: %d train / %d held-out tiles (%d %%)",
        source,
        sum(counts["train"].values()),
        sum(counts["heldout"].values()),
        percent,
    )
    return counts
