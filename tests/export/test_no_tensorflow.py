"""Exported artifacts load and run where TensorFlow (and every converter) cannot be imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.exports import was_exported

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = r"""
import importlib.abc, json, sys
import numpy as np

BLOCKED = ("tensorflow", "tf_keras", "keras", "tf2onnx", "segmentation_models")

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, Blocker())
try:
    import tensorflow  # noqa: F401
    raise SystemExit("the import blocker does not work")
except ImportError:
    pass

from inference.models.onnx_model import OnnxModel
from contract.artifacts import artifact_folder

results = {}
for name in ("unet", "dec"):
    for variant in ("fp32", "fp16", "int8"):
        if not (artifact_folder(sys.argv[1], name, variant) / "manifest.json").is_file():
            continue  # dropped by its gate (the test checks the export summary says so)
        model = OnnxModel.load(artifact_folder(sys.argv[1], name, variant), providers="cpu")
        t = model.tile_size
        batch = np.random.default_rng(0).integers(0, 256, (3, t, t, 3), dtype=np.uint8)
        out = model.run(batch)
        results[f"{name}/{variant}"] = {k: list(v.shape) for k, v in out.items()}
results["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps(results))
"""


def test_artifacts_load_without_tensorflow(export_case) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(export_case.models)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    shapes = json.loads(result.stdout.strip().splitlines()[-1])
    assert shapes.pop("loaded") == []
    expected = {
        f"{name}/{variant}"
        for name in ("unet", "dec")
        for variant in ("fp32", "fp16", "int8")
        if was_exported(export_case.models, name, variant)
    }
    assert set(shapes) == expected and {"unet/fp32", "dec/fp32"} <= expected
    for key, outputs in shapes.items():
        if key.startswith("unet"):
            assert list(outputs) == ["mask"] and outputs["mask"][0] == 3 and outputs["mask"][-1] == 1
        else:
            assert list(outputs) == ["embedding", "q"] and outputs["q"][0] == 3
