"""`agriland clusters name` and the naming helpers, on a hand-made run folder (no training needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agriland.cli import main as agriland
from contract.errors import AgrilandError
from contract.radiometry import Radiometry
from training.cluster_naming import parse_name_pairs, write_assignments
from training.clusters_cli import main as clusters


@pytest.fixture()
def run(tmp_path: Path) -> Path:
    """A run folder with a summary (K=3), an assignments.csv with labels and no names yet."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "training_summary.json").write_text(json.dumps({"task": "clustering", "n_clusters": 3}))
    q = np.array([[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    labels = np.array([0, 0, 1, 1, 1, 2])
    write_assignments(
        run / "assignments.csv", [f"t{i}.png" for i in range(6)], q, labels, ["arable", "forest", "water"]
    )
    return run


def test_name_pairs_update_names_file(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert clusters(["name", "2=arable", "0=forest", "--run", str(run)]) == 0
    assert json.loads((run / "cluster_names.json").read_text()) == {"0": "forest", "2": "arable"}
    assert clusters(["name", "2=wheat", "--run", str(run)]) == 0
    assert json.loads((run / "cluster_names.json").read_text()) == {"0": "forest", "2": "wheat"}
    assert "named 1 cluster(s)" in capsys.readouterr().out


def test_name_from_labels_uses_majority(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert clusters(["name", "--from-labels", "--run", str(run)]) == 0
    assert json.loads((run / "cluster_names.json").read_text()) == {"0": "arable", "1": "forest", "2": "water"}
    out = capsys.readouterr().out
    assert "cluster 0: arable (67% of its tiles)" in out


def test_names_flow_into_exported_manifests(run: Path, tmp_path: Path) -> None:
    from contract.manifest import Manifest, TensorSpec, read_manifest, write_manifest

    models = tmp_path / "models"
    for variant in ("fp32", "int8"):
        folder = models / "dec" / variant
        folder.mkdir(parents=True)
        write_manifest(
            folder,
            Manifest(
                radiometry=Radiometry(),
                name="dec",
                task="clustering",
                version="1",
                variant=variant,
                tile_size=64,
                input=TensorSpec(name="image", dtype="uint8", shape=[None, 64, 64, 3]),
                outputs=[TensorSpec(name="q", dtype="float32", shape=[None, 3])],
                onnx_sha256="0" * 64,
            ),
        )
    assert clusters(["name", "1=arable", "--run", str(run), "--models", str(models)]) == 0
    for variant in ("fp32", "int8"):
        assert read_manifest(models / "dec" / variant).cluster_names == {"1": "arable"}


@pytest.mark.parametrize("pairs", [["7=arable"], ["arable"], ["x=arable"], ["1="]])
def test_bad_names_exit_2(run: Path, pairs: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert agriland(["clusters", "name", *pairs, "--run", str(run)]) == 2
    assert "error" in capsys.readouterr().err
    assert not (run / "cluster_names.json").exists()


def test_missing_run_and_missing_models(tmp_path: Path, run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert agriland(["clusters", "name", "1=arable", "--run", str(tmp_path / "nope")]) == 2
    assert "training_summary.json" in capsys.readouterr().err
    assert agriland(["clusters", "name", "1=arable", "--run", str(run), "--models", str(tmp_path / "m")]) == 2
    assert "no exported DEC model" in capsys.readouterr().err


def test_parse_name_pairs() -> None:
    assert parse_name_pairs([" 07 = arable land "], 10) == {"7": "arable land"}
    with pytest.raises(AgrilandError, match="ID=NAME"):
        parse_name_pairs(["7:arable"])
