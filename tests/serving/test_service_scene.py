"""/segment_scene and /cluster_scene on a real `bentoml serve`: GeoTIFF scenes in, georeferenced answers out."""

from __future__ import annotations

import base64
import json
import warnings
from pathlib import Path

import httpx
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from contract.manifest import read_manifest
from testkit.scene_posts import (
    BOTTOM,
    LEFT,
    UTM,
    UTM_TRANSFORM,
    WGS_TRANSFORM,
    post_scene,
    read_tif,
    standard_scenes,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return standard_scenes(tmp_path_factory.mktemp("scenes"))


def test_segment_scene_json_summary_polygons_and_mask(client: httpx.Client, scenes: dict[str, Path]) -> None:
    response = post_scene(
        client, "/segment_scene", scenes["utm"], bands="sentinel2-10m", threshold="0", include_mask="true"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    summary = body["summary"]
    assert (summary["width"], summary["height"]) == (1000, 777) and "32633" in summary["crs"]
    assert body["bands"] == [3, 2, 1] and body["source_dtype"] == "uint16" and body["n_tiles"] > 0
    valid_ha = (1000 - LEFT) * (777 - BOTTOM) * 100 / 10_000  # 10 m pixels
    assert summary["valid_ha"] == pytest.approx(valid_ha, rel=0.01)
    # threshold 0: every valid pixel is arable, and only those
    assert summary["arable_ha"] == pytest.approx(valid_ha, rel=0.01) and summary["n_polygons"] >= 1
    polygons = body["polygons"]
    assert polygons["type"] == "FeatureCollection" and "crs" not in polygons
    areas = sum(f["properties"]["area_ha"] for f in polygons["features"])
    assert areas == pytest.approx(summary["arable_ha"], rel=0.01)
    mask, crs, transform, nodata = read_tif(base64.b64decode(body["mask_geotiff_base64"]))
    assert mask.shape == (777, 1000) and crs.to_epsg() == 32633 and transform.almost_equals(UTM_TRANSFORM)
    assert nodata == 255 and set(np.unique(mask)) <= {1, 255}
    assert np.all(mask[:, :LEFT] == 255) and np.all(mask[777 - BOTTOM :, :] == 255), "nodata is never arable"
    assert np.all(mask[: 777 - BOTTOM, LEFT:] == 1)


def test_segment_scene_geotiff_round_trips_crs_and_transform(client: httpx.Client, scenes: dict[str, Path]) -> None:
    response = client.post(
        "/segment_scene",
        params={"format": "geotiff", "bands": "3,2,1", "overlap": "16"},
        content=scenes["utm"].read_bytes(),
        headers={"Content-Type": "image/tiff"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/tiff"
    mask, crs, transform, nodata = read_tif(response.content)
    assert crs.to_epsg() == 32633 and transform.almost_equals(UTM_TRANSFORM) and mask.shape == (777, 1000)
    assert np.all(mask[:, :LEFT] == nodata) and not np.any(mask[: 777 - BOTTOM, LEFT:] == nodata)
    assert set(np.unique(mask)) <= {0, 1, 255}
    probability = client.post(
        "/segment_scene",
        params={"format": "geotiff", "product": "probability"},
        content=scenes["small"].read_bytes(),
        headers={"Content-Type": "image/tiff"},
    )
    assert probability.status_code == 200, probability.text
    values, _, _, _ = read_tif(probability.content)
    assert values.dtype == np.float32 and np.all((values >= 0) & (values <= 1))


def test_wgs84_option_answers_lon_lat(client: httpx.Client, scenes: dict[str, Path]) -> None:
    response = post_scene(
        client, "/segment_scene", scenes["utm"], format="geojson", wgs84="true", threshold="0", bands="sentinel2-10m"
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/geo+json"
    collection = response.json()
    assert "crs" not in collection and collection["features"]
    lon, lat = np.array(collection["features"][0]["geometry"]["coordinates"][0]).T
    assert 14.9 < lon.min() and lon.max() < 15.2 and 44.9 < lat.min() and lat.max() < 45.2


def test_epsg4326_scene_with_nodata_tag(client: httpx.Client, scenes: dict[str, Path]) -> None:
    response = post_scene(client, "/segment_scene", scenes["wgs84"], threshold="0", include_mask="true")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["summary"]["crs"] == "EPSG:4326"
    lon, lat = np.array(body["polygons"]["features"][0]["geometry"]["coordinates"][0]).T
    assert 15.0 <= lon.min() and lon.max() <= 15.0 + 257e-4 and 45.0 - 300e-4 <= lat.min() and lat.max() <= 45.0
    mask, crs, transform, _ = read_tif(base64.b64decode(body["mask_geotiff_base64"]))
    assert crs.to_epsg() == 4326 and transform.almost_equals(WGS_TRANSFORM)
    assert np.all(mask[:, :20] == 255) and np.all(mask[:, 20:] == 1)


def test_cluster_scene_grid_matches_the_tile_grid(
    client: httpx.Client, scenes: dict[str, Path], exported_models: Path
) -> None:
    manifest = read_manifest(exported_models / "dec" / "fp32")
    t = manifest.tile_size
    response = post_scene(client, "/cluster_scene", scenes["utm"], bands="sentinel2-10m")
    assert response.status_code == 200, response.text
    grid = response.json()
    rows, cols = -(-777 // t), -(-1000 // t)
    assert (grid["agriland"]["rows"], grid["agriland"]["cols"]) == (rows, cols)
    assert grid["agriland"]["cell_px"] == t and grid["agriland"]["gsd_m"] == 10.0  # a 10 m scene: cells are tiles
    valid = np.zeros((rows * t, cols * t), dtype=bool)
    valid[: 777 - BOTTOM, LEFT:1000] = True
    expected = int((valid.reshape(rows, t, cols, t).sum(axis=(1, 3)) > 0).sum())  # all-nodata cells are left out
    cells = grid["features"]
    assert len(cells) == expected
    assert len({(c["properties"]["row"], c["properties"]["col"]) for c in cells}) == expected
    for cell in cells:
        props = cell["properties"]
        assert 0 <= props["cluster"] < (manifest.n_clusters or 1_000) and 0.0 < props["confidence"] <= 1.0
        assert props["name"] == manifest.cluster_name(props["cluster"])
        assert props["is_arable"] == manifest.is_arable_cluster(props["cluster"])
        assert props["cropland"] == manifest.is_cropland_cluster(props["cluster"])
        assert props["land_cover"] == manifest.land_cover(props["cluster"])
        assert props["cropland"] or not props["is_arable"]  # arable land is cropland


# ----- bad input -------------------------------------------------------------------------------------------


TOA = {
    "crop": (0.11, 0.09, 0.08, 0.06, 0.32, 0.20, 0.11),
    "ripe": (0.13, 0.12, 0.13, 0.15, 0.28, 0.30, 0.22),
    "soil": (0.13, 0.12, 0.13, 0.17, 0.24, 0.32, 0.27),
    "forest": (0.10, 0.08, 0.06, 0.04, 0.25, 0.12, 0.05),
    "water": (0.11, 0.09, 0.06, 0.04, 0.02, 0.01, 0.01),
}


def write_landsat_l1(path: Path, height: int = 400, width: int = 400, seed: int = 4) -> Path:
    """uint16 DN = (TOA + 0.1) / 2e-5 (the L1 rescaling), 30 m UTM; parcels of crops, soil, forest, a lake."""
    rng = np.random.default_rng(seed)
    cover = np.full((height, width), "forest", dtype=object)
    for y in range(0, height, 40):
        for x in range(0, width, 50):
            cover[y : y + 38, x : x + 48] = rng.choice(["crop", "ripe", "soil", "crop", "forest"])
    yy, xx = np.mgrid[:height, :width]
    cover[((yy - 300) / 60.0) ** 2 + ((xx - 90) / 80.0) ** 2 <= 1] = "water"
    toa = np.zeros((7, height, width), dtype=np.float64)
    for name, means in TOA.items():
        inside = cover == name
        for band, mean in enumerate(means):
            toa[band][inside] = mean
    stripes = 1.0 + 0.08 * np.sin(2 * np.pi * (xx + yy) / 6.0)
    toa *= np.where(np.isin(cover, ["crop", "ripe", "soil"]), stripes, 1.0)
    toa += rng.normal(0, 0.004, toa.shape)
    dn = np.clip(np.rint((toa + 0.1) / 2e-5), 1, 65535).astype(np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=width,
            height=height,
            count=7,
            dtype="uint16",
            crs="EPSG:32633",
            transform=from_origin(600_000, 5_100_000, 30, 30),
        ) as dst:
            dst.write(dn)
    return path


def test_level1_dn_scene_falls_back_to_the_stretch_and_says_so(
    client: httpx.Client, tmp_path: Path, exported_models: Path
) -> None:
    """Read as DN / 10000 this scene is white (0.6-2.3 'reflectance'); the answer must not silently be that."""
    scene = write_landsat_l1(tmp_path / "LC08_L1TP_193027_20230701_20230711_02_T1.tif")
    default = post_scene(client, "/segment_scene", scene, bands="landsat8")
    assert default.status_code == 200, default.text
    applied = default.json()["radiometry"]
    assert applied["scaling"] == "percentile" and applied["clipped_fraction"] > 0.9
    assert "scaling=percentile" in applied["warning"] and "gdal_edit.py" in applied["warning"]
    asked = post_scene(client, "/segment_scene", scene, bands="landsat8", scaling="percentile").json()
    assert asked["radiometry"]["warning"] is None and asked["radiometry"]["source"].startswith("requested")
    assert default.json()["summary"] == asked["summary"]  # the fallback is exactly the stretch
    forced = post_scene(client, "/segment_scene", scene, bands="landsat8", scaling="reflectance").json()
    assert forced["radiometry"]["scaling"] == "reflectance" and "saturate" in forced["radiometry"]["warning"]
    geojson = post_scene(client, "/segment_scene", scene, bands="landsat8", format="geojson").json()
    assert geojson["agriland"]["radiometry"]["scaling"] == "percentile"

    from agriland.cli import main as agriland_main

    out = tmp_path / "cli"
    assert (
        agriland_main(
            [
                "segment",
                str(scene),
                "--out",
                str(out),
                "--models",
                str(exported_models),
                "--bands",
                "landsat8",
                "--provider",
                "cpu",
                "--no-progress",
                "--mask-mode",
                "threshold",
            ]
        )
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["radiometry"] == applied and summary["arable_ha"] == pytest.approx(asked["summary"]["arable_ha"])
    with rasterio.open(out / "mask.tif") as mask:
        assert json.loads(mask.tags()["AGRILAND_RADIOMETRY"])["scaling"] == "percentile"


# ----- bounded polygon answers: sieve and the polygon cap --------------------------------------------------


def write_speckled(path: Path, side: int = 120, step: int = 3, block: int = 0) -> Path:
    """A uint8 scene that is nodata (all zero) except single valid pixels every `step` pixels and, with
    `block`, one solid valid square: at threshold 0 every valid pixel is arable, so the mask is that pattern."""
    data = np.zeros((3, side, side), dtype=np.uint8)
    data[:, ::step, ::step] = 100
    if block:
        data[:, side - block :, side - block :] = 100
    with rasterio.open(
        path, "w", driver="GTiff", height=side, width=side, count=3, dtype="uint8", crs=UTM, transform=UTM_TRANSFORM
    ) as dst:
        dst.write(data)
    return path


def test_sieve_removes_single_pixel_specks(client: httpx.Client, tmp_path: Path) -> None:
    scene = write_speckled(tmp_path / "specks.tif", block=30)
    kept = post_scene(client, "/segment_scene", scene, threshold="0", sieve_px="0")
    assert kept.status_code == 200, kept.text
    n_specks = kept.json()["summary"]["n_polygons"]
    assert n_specks > 1000 and kept.json()["summary"]["sieve_px"] == 0
    sieved = post_scene(client, "/segment_scene", scene, threshold="0")  # the default sieve
    assert sieved.status_code == 200, sieved.text
    summary = sieved.json()["summary"]
    assert summary["n_polygons"] == 1 and summary["sieve_px"] >= 2, summary
    assert summary["arable_ha"] == pytest.approx(30 * 30 * 100 / 10_000, rel=0.01)  # the block, 10 m pixels
    raster = client.post(
        "/segment_scene",
        params={"format": "geotiff", "threshold": "0", "mask_mode": "threshold"},
        content=scene.read_bytes(),
        headers={"Content-Type": "image/tiff"},
    )
    mask, _, _, _ = read_tif(raster.content)
    assert int((mask == 1).sum()) == 30 * 30, "the GeoTIFF answer is the mask the polygons were made of"
    raw = client.post(
        "/segment_scene",
        params={"format": "geotiff", "threshold": "0", "sieve_px": "0", "mask_mode": "threshold"},
        content=scene.read_bytes(),
        headers={"Content-Type": "image/tiff"},
    )
    assert int((read_tif(raw.content)[0] == 1).sum()) > 30 * 30 + 1000


@pytest.fixture(scope="module")
def capped_url(exported_models: Path, server_factory, poll_ready) -> str:
    """A server that answers at most 200 polygons."""
    running = server_factory(exported_models, env={"AGRILAND_MAX_POLYGONS": "200"})
    assert poll_ready(running.url) == 200, running.log()[-3000:]
    return running.url


def test_too_many_polygons_is_a_clear_422(capped_url: str, tmp_path: Path) -> None:
    scene = write_speckled(tmp_path / "specks.tif").read_bytes()  # 1,600 one-pixel regions
    with httpx.Client(base_url=capped_url, timeout=120) as http:
        for fmt in ("json", "geojson"):
            for extra in ({}, {"min_area_ha": "0.001"}):  # the cap counts what would be answered
                over = post_scene(http, "/segment_scene", scene, threshold="0", sieve_px="0", format=fmt, **extra)
                assert over.status_code == 422, over.text
                assert over.headers["content-type"].startswith("application/json") and len(over.content) < 2000
                error = over.json()
                for hint in ("min_area_ha", "format=geotiff", "batch", "200"):
                    assert hint in error["error"], error
                assert error["detail"]["max_polygons"] == 200 and error["detail"]["n_polygons"] >= 200
        raster = http.post(
            "/segment_scene",
            params={"format": "geotiff", "threshold": "0", "sieve_px": "0", "mask_mode": "threshold"},
            content=scene,
            headers={"Content-Type": "image/tiff"},
        )
        assert raster.status_code == 200 and raster.headers["content-type"] == "image/tiff"
        fewer = post_scene(http, "/segment_scene", scene, threshold="0", sieve_px="0", min_area_ha="0.02")
        assert fewer.status_code == 200 and fewer.json()["summary"]["n_polygons"] == 0, fewer.text
        sieved = post_scene(http, "/segment_scene", scene, threshold="0")  # the default sieve: no specks left
        assert sieved.status_code == 200 and sieved.json()["summary"]["n_polygons"] == 0, sieved.text
