"""/segment_scene and /cluster_scene on a real `bentoml serve`: GeoTIFF scenes in, georeferenced answers out."""

from __future__ import annotations

import base64
import threading

import httpx
import numpy as np
import pytest
import rasterio
from rasterio.io import MemoryFile
from rasterio.transform import from_origin

from serving.manifest import read_manifest

pytestmark = pytest.mark.slow

UTM = "EPSG:32633"


def _scene_tif(height: int, width: int, crs: str | None = UTM, bands: int = 3, dtype: str = "uint16",
               margin: int = 0, transform=None) -> bytes:
    """A field-like scene: a bright-green square on brown soil, nodata (0) margins on the left."""
    rng = np.random.default_rng(0)
    scale = 40 if dtype == "uint16" else 1
    data = np.empty((bands, height, width), dtype=dtype)
    data[:] = (rng.integers(60, 90, (bands, height, width)) * scale).astype(dtype)
    data[1, height // 4 : height // 2, width // 4 : width // 2] = 200 * scale
    if margin:
        data[:, :, :margin] = 0
    profile = {"driver": "GTiff", "height": height, "width": width, "count": bands, "dtype": dtype, "nodata": 0,
               "transform": transform or from_origin(500_000, 5_000_000, 10, 10)}
    if crs is not None:
        profile["crs"] = crs
    with MemoryFile() as memfile:
        with memfile.open(**profile) as dataset:
            dataset.write(data)
        return memfile.read()


def _post_scene(client: httpx.Client, path: str, data: bytes, **fields: str) -> httpx.Response:
    return client.post(path, files={"file": ("scene.tif", data, "image/tiff")}, data=fields)


def test_segment_scene_json_summary_and_polygons(client: httpx.Client) -> None:
    response = _post_scene(client, "/segment_scene", _scene_tif(777, 1000, margin=40), include_mask="true")
    assert response.status_code == 200, response.text
    body = response.json()
    summary = body["summary"]
    assert summary["width"] == 1000 and summary["height"] == 777 and "32633" in summary["crs"]
    # valid area excludes the 40-px nodata margin: 960 x 777 pixels of 100 m^2
    assert summary["valid_ha"] == pytest.approx(960 * 777 * 100 / 10_000, rel=0.01)
    assert 0.0 <= summary["arable_fraction"] <= 1.0
    assert body["polygons"]["type"] == "FeatureCollection"
    areas = sum(f["properties"]["area_ha"] for f in body["polygons"]["features"])
    assert areas == pytest.approx(summary["arable_ha"], rel=0.01, abs=0.01)
    with MemoryFile(base64.b64decode(body["mask_geotiff_base64"])) as memfile, memfile.open() as mask:
        values = mask.read(1)
    assert values.shape == (777, 1000)
    assert not np.any(values[:, :40] == 1), "nodata must never be arable"


def test_segment_scene_geotiff_keeps_crs_and_transform(client: httpx.Client) -> None:
    transform = from_origin(612_345.0, 5_432_100.0, 3.0, 3.0)
    response = client.post("/segment_scene?format=geotiff", content=_scene_tif(300, 257, transform=transform),
                           headers={"Content-Type": "image/tiff"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/tiff"
    with MemoryFile(response.content) as memfile, memfile.open() as mask:
        assert mask.crs.to_epsg() == 32633
        assert mask.transform.almost_equals(transform)
        assert (mask.height, mask.width) == (300, 257)


def test_segment_scene_geojson_in_wgs84(client: httpx.Client) -> None:
    response = _post_scene(client, "/segment_scene", _scene_tif(256, 256, dtype="uint8"), format="geojson",
                           wgs84="true", threshold="0.0")
    assert response.status_code == 200, response.text
    features = response.json()["features"]
    assert features, "threshold 0 makes every valid pixel arable"
    lon, lat = np.array(features[0]["geometry"]["coordinates"][0]).T
    assert 14.0 < lon.min() and lon.max() < 16.0 and 44.0 < lat.min() and lat.max() < 46.0


def test_cluster_scene_grid(client: httpx.Client, exported_models) -> None:
    manifest = read_manifest(exported_models / "dec" / "fp32")
    tile = manifest.tile_size
    response = _post_scene(client, "/cluster_scene", _scene_tif(3 * tile + 5, 2 * tile))
    assert response.status_code == 200, response.text
    cells = response.json()["features"]
    assert len(cells) == 4 * 2
    for cell in cells:
        props = cell["properties"]
        assert 0 <= props["cluster"] < manifest.n_clusters
        assert props["name"] == manifest.cluster_names.get(str(props["cluster"]))
        assert props["is_arable"] == (props["name"] == "arable")


BAD_SCENES = {
    "no CRS": (lambda: _scene_tif(64, 64, crs=None), 400, "CRS"),
    "not a TIFF": (lambda: b"\x89PNG\r\n\x1a\n" + b"0" * 100, 400, "TIFF"),
    "truncated": (lambda: _scene_tif(128, 128)[:600], 400, ""),
    "too few bands": (lambda: _scene_tif(64, 64, bands=2), 400, "band"),
    "too many pixels": (lambda: _scene_tif(3000, 3000, dtype="uint8"), 413, "limit"),
}


@pytest.mark.parametrize("case", sorted(BAD_SCENES))
def test_bad_scenes_are_4xx_and_the_server_still_serves(client: httpx.Client, case: str) -> None:
    make, status, word = BAD_SCENES[case]
    response = _post_scene(client, "/segment_scene", make())
    assert response.status_code == status, response.text
    assert word.lower() in response.json()["error"].lower()
    assert _post_scene(client, "/segment_scene", _scene_tif(64, 64), format="geojson").status_code == 200


@pytest.mark.parametrize(
    ("fields", "word"),
    [({"overlap": "60"}, "overlap"), ({"bands": "nir-only"}, "band"), ({"colour": "red"}, "colour"),
     ({"format": "shapefile"}, "format")],
)
def test_bad_scene_options_are_400(client: httpx.Client, fields: dict[str, str], word: str) -> None:
    response = _post_scene(client, "/segment_scene", _scene_tif(64, 64), **fields)
    assert response.status_code == 400, response.text
    assert word in response.json()["error"].lower()


def test_wrong_content_type_and_empty_body(client: httpx.Client) -> None:
    assert client.post("/segment_scene", content=b"x", headers={"Content-Type": "text/plain"}).status_code == 415
    empty = client.post("/segment_scene", content=b"", headers={"Content-Type": "image/tiff"})
    assert empty.status_code == 400 and "empty" in empty.json()["error"]


def test_tile_requests_are_answered_while_a_scene_runs(server, exported_models) -> None:
    scene = _scene_tif(1500, 1500, dtype="uint8")
    outcome: dict[str, int] = {}

    def post_scene() -> None:
        with httpx.Client(base_url=server.url, timeout=300) as scene_client:
            outcome["scene"] = _post_scene(scene_client, "/segment_scene", scene, format="geojson").status_code

    worker = threading.Thread(target=post_scene)
    worker.start()
    tile = _scene_tif(64, 64, dtype="uint8")
    with httpx.Client(base_url=server.url, timeout=300) as tile_client:
        statuses = [tile_client.post("/segment", content=tile, headers={"Content-Type": "image/tiff"}).status_code
                    for _ in range(5)]
    worker.join(timeout=300)
    assert statuses == [200] * 5
    assert outcome.get("scene") == 200
