"""The fixed held-out split of the release models: the same tiles on every machine, none in both sides."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from contract.errors import AgrilandError
from training.holdout_split import HELDOUT_PERCENT, is_heldout, split_class_folders


def _class_folders(root: Path, per_class: int = 40) -> Path:
    for name in ("AnnualCrop", "Forest"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (8, 8), (i, 2 * i, 3)).save(root / name / f"{name}_{i}.jpg")
    return root


def test_split_is_by_name_disjoint_and_complete(tmp_path: Path) -> None:
    source = _class_folders(tmp_path / "tiles")
    counts = split_class_folders(source, tmp_path / "split")
    for name in ("AnnualCrop", "Forest"):
        train = {p.name for p in (tmp_path / "split" / "train" / name).iterdir()}
        heldout = {p.name for p in (tmp_path / "split" / "heldout" / name).iterdir()}
        assert not train & heldout and len(train | heldout) == 40
        assert heldout == {f for f in train | heldout if is_heldout(name, f)}
        assert counts["heldout"][name] == len(heldout) and counts["train"][name] == len(train)
        assert (tmp_path / "split" / "heldout" / name / next(iter(heldout))).resolve().parent == source / name
    share = sum(counts["heldout"].values()) / 80
    assert 0.02 < share < 0.4, f"{share:.2f} far from {HELDOUT_PERCENT} %"
    # the same names give the same split again, and a second build replaces the first whole
    assert split_class_folders(source, tmp_path / "split") == counts


def test_split_refuses_a_folder_without_classes(tmp_path: Path) -> None:
    with pytest.raises(AgrilandError, match="not found"):
        split_class_folders(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "flat").mkdir()
    with pytest.raises(AgrilandError, match="no class subfolders"):
        split_class_folders(tmp_path / "flat", tmp_path / "out")
    assert not (tmp_path / "out").exists()
