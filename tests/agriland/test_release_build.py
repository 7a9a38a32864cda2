"""`agriland release build` end to end on a few shipped sample tiles (tiny profiles): split, train, export, score on
the held-out tiles, install with a model card; and the rule that replaces a shipped model only when it is better."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agriland.release_build import is_better
from contract.artifacts import verify_artifact

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "eurosat-rgb"


def _agriland(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agriland.cli", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.mark.slow
def test_release_build_trains_scores_and_installs_with_cards(tmp_path: Path) -> None:
    eurosat = tmp_path / "data" / "eurosat-rgb"
    for folder in sorted(p for p in SAMPLE.iterdir() if p.is_dir()):
        (eurosat / folder.name).mkdir(parents=True)
        for path in sorted(folder.glob("*.jpg"))[:14]:
            shutil.copy(path, eurosat / folder.name / path.name)
    release = tmp_path / "release"
    result = _agriland(
        "release",
        "build",
        "--data",
        str(tmp_path / "data"),
        "--work",
        str(tmp_path / "work"),
        "--profile",
        "tiny",
        "--mosaics",
        "80",
        "--release-dir",
        str(release),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    outcome = json.loads((tmp_path / "work" / "release_outcome.json").read_text())
    for name in ("dec", "unet"):
        manifest = verify_artifact(release / name / "fp32")
        assert outcome[name]["installed"] and outcome[name]["shipped_heldout"] is None
        card = (release / name / "MODEL_CARD.md").read_text()
        assert manifest.version in card and "held-out tiles" in card
        held_out = {p.name for p in (tmp_path / "work" / "eurosat" / "heldout").rglob("*.jpg")}
        trained = {Path(p).name for p in (tmp_path / "work" / "eurosat" / "train").rglob("*.jpg")}
        assert held_out and not held_out & trained
    assert 0 <= outcome["dec"]["heldout"]["cropland_recall"] <= 1 and 0 <= outcome["unet"]["heldout"]["auc"] <= 1


def test_release_build_refuses_missing_data(tmp_path: Path) -> None:
    result = _agriland("release", "build", "--data", str(tmp_path), "--release-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert result.returncode == 2 and "eurosat-rgb" in result.stderr
    result = _agriland("release", "build", "--data", str(tmp_path), "--models", "dec,forest", cwd=tmp_path)
    assert result.returncode == 2 and "forest" in result.stderr
    assert not (tmp_path / "r").exists()


def test_a_candidate_replaces_a_shipped_model_only_when_better() -> None:
    assert is_better("dec", {"cropland_recall": 0.5, "false_cropland": 0.01}, None, shipped=False)
    old = {"cropland_recall": 0.90, "false_cropland": 0.02}
    assert is_better("dec", {"cropland_recall": 0.93, "false_cropland": 0.03}, old, shipped=True)
    assert not is_better("dec", {"cropland_recall": 0.95, "false_cropland": 0.08}, old, shipped=True)  # too false
    assert not is_better("dec", dict(old), old, shipped=True)  # equal is not better
    assert is_better("unet", {"auc": 0.99}, {"auc": 0.98}, shipped=True)
    assert not is_better("unet", {"auc": 0.97}, {"auc": 0.98}, shipped=True)
    assert not is_better("fields", None, None, shipped=True)  # replaced only with --replace
