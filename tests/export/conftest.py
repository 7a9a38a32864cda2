"""Fixtures for export tests: trained tiny runs (stand-ins, or the real tiny models) exported in every variant."""

from __future__ import annotations

import importlib.util
import shutil
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest


def _load_keras_runs() -> types.ModuleType:
    """tests/export/keras_runs.py, loaded by path (pytest runs in importlib mode, tests are no package)."""
    if "export_keras_runs" in sys.modules:
        return sys.modules["export_keras_runs"]
    spec = importlib.util.spec_from_file_location("export_keras_runs", Path(__file__).with_name("keras_runs.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["export_keras_runs"] = module
    spec.loader.exec_module(module)
    return module


keras_runs = _load_keras_runs()


@dataclass
class ExportCase:
    """A runs/ folder with dec and unet runs, and the models/ folder they were exported to (all variants)."""

    label: str
    runs: Path
    models: Path
    data: Path


def _export_all(runs: Path, models: Path, data: Path | None) -> None:
    from export.cli import main

    for name in ("dec", "unet"):
        argv = [
            name,
            "--run",
            str(runs / name),
            "--models",
            str(models),
            "--variant",
            "all",
            "--parity-tiles",
            "8",
            "--gate-tiles",
            "8",
        ]  # tiny runs hold 24 tiles; the default floor is 64
        if data is not None:
            argv += ["--calibration-data", str(data)]
        assert main(argv) == 0


# "real" runs the same tests on the real tiny DEC / U-Net (trained through the training CLIs by the
# top-level `tiny_runs` fixture).
@pytest.fixture(scope="session", params=["standin", pytest.param("real", marks=pytest.mark.slow)])
def export_case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ExportCase:
    work = tmp_path_factory.mktemp(f"export-{request.param}")
    if request.param == "standin":
        data = work / "data" / "tiles"
        for name in ("unet", "dec"):
            keras_runs.make_run(work, name, data=data)
        runs = work / "runs"
    else:
        source = request.getfixturevalue("tiny_runs")
        runs = work / "runs"
        shutil.copytree(source, runs)
        data = source.parent / "data"
    models = work / "models"
    # stand-ins: tiles come from each run's training_summary.json data.source; real runs may record a
    # source relative to where they were trained, so name the data explicitly
    _export_all(runs, models, None if request.param == "standin" else data)
    return ExportCase(request.param, runs, models, data)
