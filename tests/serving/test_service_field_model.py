"""A tiny field model, trained on drawn fields and exported for real, answering fields on a real `bentoml serve`:
/segment_scene and /segment take their fields from it, the plain cut stays the U-Net's, bad options get a 4xx."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from contract.manifest import read_manifest
from inference.fields import FOUR_CONNECTED
from testkit.field_data import draw_fields

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def field_server(models_with_field_model: Path, server_factory, poll_ready):
    server = server_factory(models_with_field_model)
    poll_ready(server.url)
    yield server
    server.stop()


@pytest.fixture()
def field_client(field_server) -> httpx.Client:
    with httpx.Client(base_url=field_server.url, timeout=120) as client:
        yield client


def _scene(tmp_path: Path, gsd: float = 2.5) -> Path:
    image, _ = draw_fields(np.random.default_rng(7), 192)
    path = tmp_path / "fields.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=192,
        height=192,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(500_000.0, 4_500_000.0, gsd, gsd),
    ) as dst:
        dst.write(np.moveaxis(image, -1, 0))
    return path


def test_segment_scene_fields_come_from_the_field_model(
    field_client: httpx.Client, tmp_path: Path, models_with_field_model: Path
) -> None:
    scene = _scene(tmp_path)
    response = field_client.post(
        "/segment_scene", files={"file": ("s.tif", scene.read_bytes(), "image/tiff")}, data={"mask_mode": "fields"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    manifest = read_manifest(models_with_field_model / "fields" / "fp32")
    assert body["model"] == "fields" and body["model_version"] == manifest.version
    features = body["polygons"]["features"]
    assert body["summary"]["n_polygons"] == len(features)
    for feature in features:  # each field with its hectares
        assert feature["properties"]["area_ha"] > 0
    plain = field_client.post(
        "/segment_scene", files={"file": ("s.tif", scene.read_bytes(), "image/tiff")}, data={"mask_mode": "threshold"}
    )
    assert plain.status_code == 200 and plain.json()["model"] == "unet"
    best = field_client.post(
        "/segment_scene",
        files={"file": ("s.tif", scene.read_bytes(), "image/tiff")},
        data={"mask_mode": "fields", "quality": "best", "format": "geotiff"},
    )
    assert best.status_code == 200 and best.headers["content-type"] == "image/tiff"


def test_bad_quality_is_a_4xx_and_the_service_still_answers(field_client: httpx.Client, tmp_path: Path) -> None:
    scene = _scene(tmp_path)
    bad = field_client.post(
        "/segment_scene",
        files={"file": ("s.tif", scene.read_bytes(), "image/tiff")},
        data={"mask_mode": "fields", "quality": "perfect"},
    )
    assert 400 <= bad.status_code < 500 and "quality" in bad.text
    assert "error" in bad.json() or "detail" in bad.json()
    again = field_client.post(
        "/segment_scene", files={"file": ("s.tif", scene.read_bytes(), "image/tiff")}, data={"mask_mode": "fields"}
    )
    assert again.status_code == 200


def test_segment_tile_fields_from_the_field_model(field_client: httpx.Client) -> None:
    image, _ = draw_fields(np.random.default_rng(3), 96)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    response = field_client.post(
        "/segment",
        files={"file": ("t.png", buffer.getvalue())},
        data={"include_fields": "true", "gsd": "2.5", "crop_veto": "0"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "unet+fields"
    (result,) = body["results"]
    assert result["n_fields"] == len(result["fields"])
    # the answered mask's 4-connected regions are exactly the answered fields
    from scipy import ndimage

    mask = np.asarray(Image.open(io.BytesIO(__import__("base64").b64decode(result["mask_png_base64"])))) > 0
    assert ndimage.label(mask, structure=FOUR_CONNECTED)[1] == result["n_fields"]
    total_ha = sum(f["area_ha"] for f in result["fields"])
    assert total_ha == pytest.approx(mask.sum() * 2.5 * 2.5 / 10_000, rel=1e-3)
    plain = field_client.post("/segment", files={"file": ("t.png", buffer.getvalue())}, data={"mask_mode": "threshold"})
    assert plain.status_code == 200 and plain.json()["model"] == "unet"
    # the strictest veto (mean U-Net probability >= 1) keeps at most those fields; an impossible one is a 400
    strict = field_client.post(
        "/segment", files={"file": ("t.png", buffer.getvalue())}, data={"gsd": "2.5", "crop_veto": "1"}
    ).json()["results"][0]
    assert strict["n_fields"] <= result["n_fields"] and strict["arable_fraction"] <= result["arable_fraction"]
    bad = field_client.post("/segment", files={"file": ("t.png", buffer.getvalue())}, data={"crop_veto": "2"})
    assert bad.status_code == 400 and "crop_veto" in bad.text


def test_ready_with_the_optional_field_model(field_client: httpx.Client) -> None:
    assert field_client.get("/readyz").status_code == 200
