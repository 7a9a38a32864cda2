"""Tile pixels through the running service by the radiometry contract: 16-bit reflectance, bands, ground resolution."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from PIL import Image

from contract.radiometry import DEFAULT_STRETCH, to_uint8

pytestmark = pytest.mark.slow
rasterio = pytest.importorskip("rasterio")


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def _tif(array: np.ndarray) -> bytes:
    from rasterio.io import MemoryFile

    with MemoryFile() as memfile:
        with memfile.open(
            driver="GTiff", width=array.shape[1], height=array.shape[0], count=array.shape[2], dtype=array.dtype.name
        ) as dst:
            dst.write(np.moveaxis(array, -1, 0))
        return memfile.read()


def _rendering() -> np.ndarray:
    rng = np.random.default_rng(5)
    return np.kron(rng.integers(20, 230, (8, 8, 3)), np.ones((8, 8, 1))).astype(np.uint8)  # 64 px blocks


def test_uint16_reflectance_tile_gets_the_same_answer_as_its_8bit_rendering(client: httpx.Client) -> None:
    tile = _rendering()
    reflectance = np.rint(tile / 255.0 * 0.275 * 10000).astype(np.uint16)  # Sentinel-2 L2A-like digital numbers
    answers = []
    for name, body in (("t.png", _png(tile)), ("t.tif", _tif(reflectance))):
        response = client.post("/segment", files={"file": (name, body)}, data={"include_probability": "true"})
        assert response.status_code == 200, response.text
        answers.append(response.json()["results"][0])
    assert answers[0]["mask_rle"] == answers[1]["mask_rle"]
    assert abs(answers[0]["mean_probability"] - answers[1]["mean_probability"]) < 0.02
    # scaling=percentile: the model sees the tile's own 2-98 % stretch, exactly the 8-bit tile stretched here
    own_stretch = to_uint8(reflectance, DEFAULT_STRETCH)
    assert not np.array_equal(own_stretch, tile)  # the stretch changes the pixels the model sees
    options = {"scaling": "percentile", "include_probability": "true"}
    stretched = client.post("/segment", files={"file": ("t.tif", _tif(reflectance))}, data=options)
    assert stretched.status_code == 200, stretched.text
    plain = client.post("/segment", files={"file": ("s.png", _png(own_stretch))}, data={"include_probability": "true"})
    assert plain.status_code == 200, plain.text
    stretched_answer, plain_answer = stretched.json()["results"][0], plain.json()["results"][0]
    assert stretched_answer["mask_rle"] == plain_answer["mask_rle"]
    assert stretched_answer["mean_probability"] == pytest.approx(plain_answer["mean_probability"], abs=1e-6)
    assert stretched_answer["mean_probability"] != answers[1]["mean_probability"]  # not read as reflectance


def test_bands_pick_rgb_from_a_multiband_tile(client: httpx.Client) -> None:
    tile = _rendering()
    bgrn = np.concatenate([tile[..., ::-1], np.full(tile.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    plain = client.post("/cluster", files={"file": ("t.png", _png(tile))}).json()["results"][0]
    picked = client.post("/cluster", files={"file": ("t.tif", _tif(bgrn))}, data={"bands": "bgrn"})
    assert picked.status_code == 200, picked.text
    assert picked.json()["results"][0]["cluster"] == plain["cluster"]


def test_gsd_resamples_to_the_model_resolution_and_answers_on_the_input_grid(client: httpx.Client) -> None:
    aerial = np.kron(_rendering()[:4, :4], np.ones((32, 32, 1), np.uint8))  # 128 x 128 px "at 2.5 m"
    options = {"include_probability": "true", "mask_mode": "threshold", "include_fields": "true"}
    response = client.post("/segment", files={"file": ("a.png", _png(aerial))}, data={**options, "gsd": "2.5"})
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert (result["width"], result["height"]) == (128, 128)
    assert result["mask_rle"]["size"] == [128, 128]
    assert sum(result["mask_rle"]["counts"]) == 128 * 128
    # at 10 m the model sees the 32 x 32 px tile this test downsamples itself (as the service resamples: Lanczos)
    at_model_gsd = np.asarray(Image.fromarray(aerial).resize((32, 32), Image.Resampling.LANCZOS))
    small = client.post("/segment", files={"file": ("s.png", _png(at_model_gsd))}, data=options)
    assert small.status_code == 200, small.text
    small_result = small.json()["results"][0]
    assert (small_result["width"], small_result["height"]) == (32, 32)
    # the same probabilities, upsampled back to the input grid: same mean, same share above the cut
    assert result["mean_probability"] == pytest.approx(small_result["mean_probability"], abs=0.01)
    assert result["arable_fraction"] == pytest.approx(small_result["arable_fraction"], abs=0.05)
    # field areas count pixels of the request's ground size (2.5 m), not the model's
    for field in result["fields"]:
        assert field["area_ha"] == pytest.approx(field["pixels"] * 2.5 * 2.5 / 10_000, rel=1e-4)
    # without gsd the 128 px tile is fitted to the model tile as it is: another input, another answer
    ignored = client.post("/segment", files={"file": ("a.png", _png(aerial))}, data=options)
    assert ignored.status_code == 200, ignored.text
    assert ignored.json()["results"][0]["mean_probability"] != result["mean_probability"]
