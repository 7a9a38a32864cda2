"""Session fixtures: really trained, really exported tiny models shared by the whole suite."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# fixtures shared across packages live in tests/testkit (on the path through pyproject's `pythonpath`)
pytest_plugins = ("testkit.servers",)
# Everything that changes what the tiny models are; a change to any of these rebuilds them.
_MODEL_SOURCES = ("training", "export", "contract", "inference/models", "tests/conftest.py")


def _source_key() -> str:
    digest = hashlib.sha256()
    for entry in _MODEL_SOURCES:
        path = ROOT / entry
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def _agriland(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "agriland.cli", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"agriland {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")


def build_tiny_models(work: Path) -> Path:
    """Synthetic tiles -> tiny DEC and U-Net runs -> fp32 + int8 ONNX exports, all through the real CLIs."""
    data = work / "data"
    _agriland("synth", "--out", str(data), "--tiles", "96", "--tile-size", "64", "--seed", "3", cwd=work)
    _agriland("train-dec", *TINY_DEC_ARGS, "--data", str(data), "--run", str(work / "runs/dec"), cwd=work)
    _agriland("clusters", "name", "--from-labels", "--run", str(work / "runs/dec"), cwd=work)
    _agriland(
        "train-unet", *TINY_UNET_ARGS, "--data", str(data / "pairs.csv"), "--run", str(work / "runs/unet"), cwd=work
    )
    models = work / "models"
    for name in ("dec", "unet"):
        _agriland(
            "export",
            name,
            "--run",
            str(work / f"runs/{name}"),
            "--models",
            str(models),
            "--variant",
            "int8",
            "--parity-tiles",
            "8",
            "--gate-tiles",
            "8",
            cwd=work,
        )  # tiny data
    return models


TINY_DEC_ARGS = ("--profile", "tiny")
TINY_UNET_ARGS = ("--profile", "tiny")


@pytest.fixture(scope="session")
def exported_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models dir with dec/{fp32,int8} and unet/{fp32,int8}, trained and exported for real.

    Built once per source state and cached under .pytest_cache (CI starts from a clean clone, so it
    always builds there). AGRILAND_TEST_MODELS points at a ready folder to skip the build.
    """
    if os.environ.get("AGRILAND_TEST_MODELS"):
        return Path(os.environ["AGRILAND_TEST_MODELS"])
    cache = ROOT / ".pytest_cache" / "agriland-models" / _source_key()
    if (cache / "models" / "unet" / "fp32" / "manifest.json").is_file() and (
        cache / "models" / "dec" / "fp32" / "manifest.json"
    ).is_file():
        return cache / "models"
    work = tmp_path_factory.mktemp("tiny-models")
    build_tiny_models(work)
    if cache.exists():
        shutil.rmtree(cache)
    cache.mkdir(parents=True)
    shutil.copytree(work / "models", cache / "models")
    for name in ("dec", "unet"):  # keep the runs: export/keras comparisons use them
        shutil.copytree(work / "runs" / name, cache / "runs" / name)
    shutil.copytree(work / "data", cache / "data")
    return cache / "models"


@pytest.fixture(scope="session")
def tiny_runs(exported_models: Path) -> Path:
    """The runs/ folder (dec, unet) next to the exported tiny models."""
    runs = exported_models.parent / "runs"
    if not runs.is_dir():
        pytest.skip("AGRILAND_TEST_MODELS points at a models folder without runs/")
    return runs


@pytest.fixture(scope="session")
def models_with_field_model(exported_models: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The suite's tiny dec and unet plus a tiny field model trained on drawn fields and exported, all for real."""
    from testkit.field_data import models_with_fields

    return models_with_fields(exported_models, tmp_path_factory.mktemp("field-models"))
