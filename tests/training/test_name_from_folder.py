"""`agriland clusters name --from-labels FOLDER` on a really trained tiny DEC run: names, and clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from agriland.cli import main as agriland
from training.cluster_naming import names_from_labeled_tiles

pytestmark = pytest.mark.slow


@pytest.fixture()
def dec_run(tiny_runs: Path, tmp_path: Path) -> Path:
    run = tmp_path / "dec"
    shutil.copytree(tiny_runs / "dec", run)
    return run


@pytest.fixture()
def labeled(tiny_runs: Path, tmp_path: Path) -> Path:
    """A few labeled tiles per class of the run's own data (EuroSAT layout)."""
    source = tiny_runs.parent / "data" / "eurosat"
    folder = tmp_path / "labeled"
    for class_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        (folder / class_dir.name).mkdir(parents=True)
        for tile in sorted(class_dir.iterdir())[:4]:
            shutil.copy(tile, folder / class_dir.name / tile.name)
    return folder


def test_names_every_cluster_from_a_small_labeled_folder(
    dec_run: Path, labeled: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert agriland(["clusters", "name", "--from-labels", str(labeled), "--run", str(dec_run)]) == 0
    names = json.loads((dec_run / "cluster_names.json").read_text())
    k = json.loads((dec_run / "training_summary.json").read_text())["n_clusters"]
    assert sorted(int(c) for c in names) == list(range(k))
    assert set(names.values()) <= {p.name for p in labeled.iterdir()}
    assert "majority of" in capsys.readouterr().out


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "no folder at"),
        ("empty", "no class subfolders"),
        ("missing_class", "has no folder for class"),
        ("unknown_class", "not among the classes"),
        ("empty_class", "holds no image files"),
    ],
)
def test_bad_labeled_folders_are_clear_errors(
    dec_run: Path, labeled: Path, tmp_path: Path, case: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = labeled
    if case == "missing":
        folder = tmp_path / "nothing"
    elif case == "empty":
        folder = tmp_path / "empty"
        folder.mkdir()
    elif case == "missing_class":
        shutil.rmtree(next(p for p in sorted(labeled.iterdir())))
    elif case == "unknown_class":
        shutil.copytree(next(p for p in sorted(labeled.iterdir())), labeled / "desert")
    elif case == "empty_class":
        for tile in next(p for p in sorted(labeled.iterdir())).iterdir():
            tile.unlink()
    before = (dec_run / "cluster_names.json").read_text()
    assert agriland(["clusters", "name", "--from-labels", str(folder), "--run", str(dec_run)]) == 2
    assert message in capsys.readouterr().err
    assert (dec_run / "cluster_names.json").read_text() == before  # nothing written


def test_a_cluster_without_labeled_tiles_takes_the_nearest_labeled_class() -> None:
    labels = np.array([0, 0, 1])
    embeddings = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0]])
    centroids = np.array([[0.0, 0.0], [5.0, 5.0], [4.0, 4.5]])
    names, how = names_from_labeled_tiles(labels, ["crop", "water"], np.array([0, 0, 1]), embeddings, centroids)
    assert names == {"0": "crop", "1": "water", "2": "water"}
    assert "nearest" in how["2"]
