"""Tiny field data sets the tests draw themselves: images of flat-coloured, textured rectangular fields split by
roads, with the fields as a VIA export (every region a field), plus a tiny trained and exported field model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def draw_fields(rng: np.random.Generator, size: int = 128) -> tuple[np.ndarray, list[list[tuple[int, int]]]]:
    """An RGB image of a 2x2..3x3 grid of fields (each its own colour and texture) between 3 px grey roads, and each
    field's polygon (x, y corners in pixel edges). Two fields share no pixels."""
    image = np.full((size, size, 3), 120, np.uint8)  # road / farmstead grey
    n = int(rng.integers(2, 4))
    cuts = np.linspace(0, size, n + 1).astype(int)
    polygons = []
    for i in range(n):
        for j in range(n):
            y0, y1, x0, x1 = cuts[i] + 2, cuts[i + 1] - 2, cuts[j] + 2, cuts[j + 1] - 2
            colour = rng.integers(30, 220, 3)
            noise = rng.normal(0, 6, (y1 - y0, x1 - x0, 3))
            image[y0:y1, x0:x1] = np.clip(colour + noise, 0, 255).astype(np.uint8)
            polygons.append([(int(x0), int(y0)), (int(x1), int(y0)), (int(x1), int(y1)), (int(x0), int(y1))])
    return image, polygons


def write_via_set(folder: Path, n_images: int = 6, size: int = 128, seed: int = 0) -> Path:
    """`folder/images/*.png` and `folder/via.json`; returns the VIA path."""
    rng = np.random.default_rng(seed)
    images = folder / "images"
    images.mkdir(parents=True, exist_ok=True)
    via = {}
    for k in range(n_images):
        image, polygons = draw_fields(rng, size)
        name = f"fields_{k}.png"
        Image.fromarray(image).save(images / name)
        regions = [
            {
                "shape_attributes": {
                    "name": "polygon",
                    "all_points_x": [p[0] for p in poly],
                    "all_points_y": [p[1] for p in poly],
                },
                "region_attributes": {},
            }
            for poly in polygons
        ]
        via[f"{name}0"] = {"filename": name, "size": 0, "regions": regions}
    path = folder / "via.json"
    path.write_text(json.dumps(via))
    return path


def agriland(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agriland.cli", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def build_field_model(work: Path, models: Path) -> Path:
    """A tiny field model trained on a drawn VIA set and exported into `models/fields/fp32` through the CLIs."""
    via = write_via_set(work / "fieldset")
    run = work / "runs" / "fields"
    for args in (
        (
            "train-fields",
            "--polygons",
            str(via),
            "--images",
            str(via.parent / "images"),
            "--gsd",
            "2.5",
            "--run",
            str(run),
            "--profile",
            "tiny",
            "--quiet",
        ),
        ("export", "fields", "--run", str(run), "--models", str(models)),
    ):
        result = agriland(*args, cwd=work)
        if result.returncode != 0:
            raise RuntimeError(f"agriland {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return models / "fields" / "fp32"


def models_with_fields(exported_models: Path, work: Path) -> Path:
    """A models dir holding the suite's tiny dec and unet plus a tiny field model."""
    models = work / "models"
    for name in ("dec", "unet"):
        shutil.copytree(exported_models / name, models / name)
    build_field_model(work, models)
    return models
