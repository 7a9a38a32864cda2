"""VIA JSON -> masks: every shape against hand-computed masks, attribute selection, both file forms, bad inputs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agriland.cli import main as agriland_main
from contract.errors import AgrilandError
from training.annotations import read_via, region_mask, via_to_masks
from training.annotations_cli import main as via_main
from training.data import load_pairs_csv

W, H = 12, 10


def _poly(name: str, points: list[tuple[float, float]]) -> dict:
    return {"name": name, "all_points_x": [p[0] for p in points], "all_points_y": [p[1] for p in points]}


def _expected(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[rows, cols] = True
    return mask


TRIANGLE = np.add.outer(np.arange(H), np.arange(W)) <= 6  # pixel centres with x + y < 8
CIRCLE = _expected(slice(3, 7), slice(3, 7))
CIRCLE[[3, 3, 6, 6], [3, 6, 3, 6]] = False  # corners of the 4x4 block are outside r=2

CASES = {
    "rect": ({"name": "rect", "x": 2, "y": 3, "width": 4, "height": 2}, _expected(slice(3, 5), slice(2, 6))),
    "square polygon": (_poly("polygon", [(1, 1), (5, 1), (5, 4), (1, 4)]), _expected(slice(1, 4), slice(1, 5))),
    "triangle polygon": (_poly("polygon", [(0, 0), (8, 0), (0, 8)]), TRIANGLE),
    "polyline closes": (_poly("polyline", [(0, 0), (8, 0), (0, 8)]), TRIANGLE),
    "circle": ({"name": "circle", "cx": 5, "cy": 5, "r": 2}, CIRCLE),
    "ellipse": ({"name": "ellipse", "cx": 6, "cy": 5, "rx": 4, "ry": 1.2}, _expected(slice(4, 6), slice(2, 10))),
    "rotated ellipse": (
        {"name": "ellipse", "cx": 6, "cy": 5, "rx": 1.2, "ry": 4, "theta": math.pi / 2},
        _expected(slice(4, 6), slice(2, 10)),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_every_shape_matches_its_hand_computed_mask(name: str) -> None:
    shape, expected = CASES[name]
    np.testing.assert_array_equal(region_mask(shape, H, W), expected)


def _region(shape: dict, **attributes: object) -> dict:
    return {"shape_attributes": shape, "region_attributes": attributes}


def _project(tmp_path: Path, metadata: dict, bare: bool = False) -> Path:
    path = tmp_path / "project.json"
    body = metadata if bare else {"_via_settings": {}, "_via_img_metadata": metadata, "_via_attributes": {}}
    path.write_text(json.dumps(body))
    return path


def _images(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir(exist_ok=True)
    for name in names:
        Image.new("RGB", (W, H), (90, 120, 60)).save(folder / name)
    return folder


def _entry(filename: str, regions: list[dict]) -> dict:
    return {f"{filename}123": {"filename": filename, "size": 123, "regions": regions, "file_attributes": {}}}


def _masks(out: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted((out / "masks").iterdir())}


@pytest.mark.parametrize("bare", [False, True])
def test_project_and_bare_forms_write_masks_and_pairs(tmp_path: Path, bare: bool) -> None:
    metadata = {
        **_entry("a.png", [_region(CASES["rect"][0]), _region(CASES["circle"][0])]),
        **_entry("b.png", []),
    }
    images = _images(tmp_path, "a.png", "b.png")
    out = via_to_masks(_project(tmp_path, metadata, bare=bare), images, tmp_path / "out")
    masks = _masks(out)
    np.testing.assert_array_equal(masks["a.png"], (CASES["rect"][1] | CIRCLE) * 255)
    assert not masks["b.png"].any()
    with open(out / "pairs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [
        {"image": "../imgs/a.png", "mask": "masks/a.png"},
        {"image": "../imgs/b.png", "mask": "masks/b.png"},
    ]
    data = load_pairs_csv(out / "pairs.csv", 16)  # the loader reads what we wrote
    assert data.masks.shape == (2, 16, 16) and data.masks[0].any()


def test_attribute_selection_class_values_and_copy(tmp_path: Path) -> None:
    regions = [
        _region(CASES["rect"][0], landcover="arable"),
        _region(CASES["circle"][0], landcover="forest"),
        _region(CASES["ellipse"][0], landcover={"arable": True, "forest": False}),  # checkbox attribute
    ]
    project = _project(tmp_path, _entry("a.png", regions))
    images = _images(tmp_path, "a.png")
    out = via_to_masks(project, images, tmp_path / "arable", attribute="landcover", value="arable", copy_images=True)
    expected = CASES["rect"][1] | CASES["ellipse"][1]
    np.testing.assert_array_equal(_masks(out)["a.png"], expected * 255)
    assert (out / "images" / "a.png").is_file()
    multi = via_to_masks(
        project, images, tmp_path / "multi", attribute="landcover", class_values={"arable": 1, "forest": 2}
    )
    painted = np.zeros((H, W), np.uint8)  # later regions paint over earlier ones
    for shape, value in ((CASES["rect"][1], 1), (CIRCLE, 2), (CASES["ellipse"][1], 1)):
        painted[shape] = value
    np.testing.assert_array_equal(_masks(multi)["a.png"], painted)


def test_skip_empty_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metadata = {**_entry("a.png", [_region(CASES["rect"][0], kind="arable")]), **_entry("b.png", [])}
    project, images = _project(tmp_path, metadata), _images(tmp_path, "a.png", "b.png")
    code = via_main(
        [
            str(project),
            "--images",
            str(images),
            "--out",
            str(tmp_path / "o"),
            "--attribute",
            "kind",
            "--value",
            "arable",
            "--skip-empty",
        ]
    )
    assert code == 0 and "wrote 1 masks" in capsys.readouterr().out
    assert list(_masks(tmp_path / "o")) == ["a.png"]


BAD_REGIONS = {
    "unknown shape": ({"name": "point", "cx": 3, "cy": 3}, "region 1: unknown shape 'point'"),
    "outside": ({"name": "rect", "x": 40, "y": 2, "width": 5, "height": 5}, "region 1: rect lies outside the 12x10"),
    "too few points": (_poly("polygon", [(1, 1), (4, 4)]), "region 1: polygon needs at least 3 points"),
    "bad number": ({"name": "circle", "cx": "5", "cy": 5, "r": 2}, "region 1: circle needs a number 'cx'"),
}


@pytest.mark.parametrize("case", BAD_REGIONS)
def test_bad_regions_name_file_and_region_and_leave_nothing(tmp_path: Path, case: str) -> None:
    shape, message = BAD_REGIONS[case]
    project = _project(tmp_path, _entry("a.png", [_region(CASES["rect"][0]), _region(shape)]))
    images = _images(tmp_path, "a.png")
    with pytest.raises(AgrilandError, match="project.json: image 'a.png', " + message):
        via_to_masks(project, images, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imgs", "project.json"]


def test_bad_files(tmp_path: Path) -> None:
    images = _images(tmp_path, "a.png")
    broken = tmp_path / "broken.json"
    broken.write_text('{"_via_img_metadata": {')
    with pytest.raises(AgrilandError, match=r"broken.json is not valid JSON: .* line 1"):
        read_via(broken)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"images": [1, 2]}))
    with pytest.raises(AgrilandError, match="other.json is not a VIA 2 file"):
        read_via(other)
    with pytest.raises(AgrilandError, match="VIA file not found"):
        read_via(tmp_path / "nope.json")
    project = _project(tmp_path, _entry("missing.png", []))
    with pytest.raises(AgrilandError, match="image file not found for 'missing.png'"):
        via_to_masks(project, images, tmp_path / "out")
    with pytest.raises(AgrilandError, match="images folder not found"):
        via_to_masks(project, tmp_path / "nowhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_dispatcher_prints_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = agriland_main(
        ["via-to-masks", str(tmp_path / "nope.json"), "--images", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("agriland via-to-masks: error: VIA file not found")


def test_jpeg_bytes_under_a_png_name(tmp_path: Path) -> None:
    """Real VIA exports ship JPEG bytes named .png (the NAIP field set does): masks and pairs still come out."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.new("RGB", (W, H), (90, 120, 60)).save(folder / "field.png", format="JPEG")
    assert (folder / "field.png").read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG magic, PNG name
    metadata = _entry("field.png", [_region(CASES["square polygon"][0])])
    out = via_to_masks(_project(tmp_path, metadata), folder, tmp_path / "out")
    np.testing.assert_array_equal(_masks(out)["field.png"], CASES["square polygon"][1] * 255)
    data = load_pairs_csv(out / "pairs.csv", 16)
    assert data.images.shape == (1, 16, 16, 3) and data.masks[0].any()
