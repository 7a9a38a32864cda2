"""Single images through the field model's working resolution and back: tiles cut, planes blended, fields found on
the input grid (the /segment answer of a field model)."""

from __future__ import annotations

import numpy as np

from contract.manifest import FieldModelSpec
from inference.field_tiles import field_tiles, fields_of_tiles
from training.field_targets import BOUNDARY, targets_of


def _fields(size: int) -> np.ndarray:
    """Four touching 2 x 2 fields on a background margin: instance labels."""
    labels = np.zeros((size, size), np.int32)
    half, margin = size // 2, size // 10
    labels[margin:half, margin:half], labels[margin:half, half : size - margin] = 1, 2
    labels[half : size - margin, margin:half], labels[half : size - margin, half : size - margin] = 3, 4
    return labels


def test_a_perfect_model_gives_back_the_fields_on_the_input_grid() -> None:
    spec = FieldModelSpec(work_gsd_m=2.5, max_gsd_m=10.0)
    image = np.zeros((100, 100, 3), np.uint8)  # 5 m pixels -> answered at 5 m (within 2.5-10 m)
    tiles = field_tiles([image, image[:40, :70]], 5.0, spec, tile=64)
    assert tiles.batch.shape[1:] == (64, 64, 3)
    assert [(g.height, g.width) for g in tiles.grids] == [(100, 100), (40, 70)]
    # a 'perfect' model: the planes of the drawn fields, tile by tile
    truth = targets_of(_fields(100))
    planes = np.zeros((len(tiles.batch), 64, 64, 2), np.float32)
    first = tiles.grids[0]
    for k, (y, x) in enumerate(first.origins):
        window = truth[y : y + 64, x : x + 64]
        planes[k, ..., 0] = window > 0
        planes[k, ..., 1] = window == BOUNDARY
    valids = [np.ones((100, 100), bool), np.ones((40, 70), bool)]
    (found, extent), (empty, _) = fields_of_tiles(planes, tiles, spec, valids)
    assert found.mask.shape == (100, 100) and len(found.confidence) == 4
    areas = np.bincount(found.labels.ravel())[1:] * 25 / 10_000  # 5 m pixels
    assert np.allclose(areas, areas[0], rtol=0.15) and 0.7 < areas.sum() / (80 * 80 * 25 / 10_000) <= 1.0
    assert extent.shape == (100, 100) and extent[50, 50] > 0.9 and extent[2, 2] < 0.1
    assert len(empty.confidence) == 0  # the second image's planes were all zero


def test_finer_images_are_answered_at_the_working_resolution() -> None:
    spec = FieldModelSpec(work_gsd_m=2.5, max_gsd_m=10.0)
    tiles = field_tiles([np.zeros((500, 300, 3), np.uint8)], 1.0, spec, tile=64)
    assert (tiles.grids[0].height, tiles.grids[0].width) == (200, 120)
    assert spec.working_gsd(1.0) == 2.5 and spec.working_gsd(30.0) == 10.0 and spec.working_gsd(10.0, "best") == 5.0
    assert spec.working_gsd(None) == 10.0
