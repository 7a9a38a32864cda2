"""`agriland batch` on a real local Ray cluster (2 CPUs) with the suite's trained tiny U-Net."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import rasterio

from agriland.cli import main as agriland_main
from batch.inputs import resolve_inputs
from contract.errors import AgrilandError
from testkit import servers
from testkit.scene_files import write_scene


@pytest.fixture(scope="module")
def ray_local():
    """A real local Ray with 2 CPUs for the module, shut down at the end."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=128 * 1024 * 1024)
    yield
    ray.shutdown()


def _scenes(folder: Path) -> Path:
    folder.mkdir()
    write_scene(folder / "north.tif", height=200, width=260)
    write_scene(folder / "south.tif", height=150, width=300, cog=True)
    write_scene(folder / "nocrs.tif", height=100, width=100, crs=None)
    (folder / "corrupt.tif").write_bytes(write_scene(folder / "x.tif", 300, 300).read_bytes()[:3000])
    (folder / "x.tif").unlink()
    return folder


def _batch(scenes: Path, out: Path, models: Path, *extra: str) -> int:
    return agriland_main(
        [
            "batch",
            str(scenes),
            "--out",
            str(out),
            "--models",
            str(models),
            "--bands",
            "sentinel2-10m",
            "--provider",
            "cpu",
            "--no-progress",
            "--overlap",
            "8",
            "--block-size",
            "128",
            *extra,
        ]
    )


@pytest.mark.slow
def test_batch_outputs_failures_and_resume(ray_local, exported_models: Path, tmp_path: Path) -> None:
    scenes, out = _scenes(tmp_path / "scenes"), tmp_path / "out"
    assert _batch(scenes, out, exported_models, "--format", "geojson", "--format", "fgb") == 1  # 2 failed
    run = json.loads((out / "run.json").read_text())
    assert run["counts"] == {"ok": 2, "skipped": 0, "failed": 2}
    assert "no CRS" in run["failures"]["nocrs"] and "corrupt" in run["failures"]["corrupt"]
    assert len(run["model"]["sha256"]) == 64 and len(run["inputs"]) == 4 and run["timings"]["tiles"] > 0
    for name in ("north", "south"):
        folder = out / "scenes" / name
        with rasterio.open(scenes / f"{name}.tif") as src, rasterio.open(folder / "mask.tif") as mask:
            assert mask.crs == src.crs and mask.transform == src.transform and mask.shape == src.shape
            assert mask.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        polygons = gpd.read_parquet(folder / "polygons.parquet")
        assert polygons.crs.to_epsg() == 32633 and len(polygons) > 0
        assert set(polygons["scene_id"]) == {name} and (polygons["area_ha"] > 0).all()
        assert set(polygons["model_version"]) == {run["model"]["version"]}
        geo = json.loads(pq.read_schema(folder / "polygons.parquet").metadata[b"geo"])
        assert geo["primary_column"] == "geometry" and "crs" in geo["columns"]["geometry"]
        assert gpd.read_file(folder / "polygons.geojson").crs.to_epsg() == 4326
        assert len(gpd.read_file(folder / "polygons.fgb")) == len(polygons)
    merged = gpd.read_parquet(out / "polygons.parquet")
    assert merged.crs.to_epsg() == 4326 and set(merged["scene_id"]) <= {"north", "south"}
    assert set(",".join(merged["scene_ids"]).split(",")) == {"north", "south"}  # the two scenes overlap
    summary = pd.read_csv(out / "summary.csv")
    total = summary[summary["scene_id"] == "TOTAL"].iloc[0]
    assert total["arable_ha"] == pytest.approx(merged["area_ha"].sum(), rel=1e-6)

    # resume: finished scenes are skipped; a scene whose folder is gone (a killed run) is done again
    north_mtime = (out / "scenes" / "north" / "mask.tif").stat().st_mtime_ns
    for leftover in (out / "scenes" / "south").iterdir():
        leftover.unlink()
    (out / "scenes" / "south").rmdir()
    (out / "scenes" / ".south.tmp-killed").mkdir()  # what a kill mid-scene leaves behind
    (scenes / "nocrs.tif").unlink()
    (scenes / "corrupt.tif").unlink()
    assert _batch(scenes, out, exported_models) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["counts"] == {"ok": 1, "skipped": 1, "failed": 0}
    assert run["scenes"]["north"]["status"] == "skipped" and run["scenes"]["south"]["status"] == "ok"
    assert (out / "scenes" / "north" / "mask.tif").stat().st_mtime_ns == north_mtime
    assert not (out / "scenes" / ".south.tmp-killed").exists()
    assert set(",".join(gpd.read_parquet(out / "polygons.parquet")["scene_ids"]).split(",")) == {"north", "south"}


def test_inputs_from_folders_lists_and_stac(tmp_path: Path) -> None:
    import pystac

    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for name in ("a", "b"):
        (scenes / f"{name}.tif").write_bytes(b"")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# scenes\n{scenes / 'a.tif'}\nhttps://example.invalid/c.tif\n")
    items = [
        pystac.Item(f"item-{n}", None, None, pystac.utils.str_to_datetime("2024-06-01T00:00:00Z"), {})
        for n in ("a", "b")
    ]
    for item, name in zip(items, ("a", "b")):
        item.add_asset("visual", pystac.Asset(f"scenes/{name}.tif", media_type=pystac.MediaType.COG))
    stac = tmp_path / "items.json"
    stac.write_text(json.dumps(pystac.ItemCollection(items).to_dict(transform_hrefs=False)))
    found = resolve_inputs([str(scenes), str(listing)])
    assert [s.scene_id for s in found] == ["a", "b", "c"]  # a.tif listed twice: once
    assert found[2].href == "https://example.invalid/c.tif"
    from_stac = resolve_inputs([str(stac)])
    assert [s.scene_id for s in from_stac] == ["item-a", "item-b"]
    assert from_stac[0].href == str((scenes / "a.tif").resolve())
    (tmp_path / "empty").mkdir()
    with pytest.raises(AgrilandError, match="no .tif"):
        resolve_inputs([str(tmp_path / "empty")])


@pytest.mark.slow
def test_service_cli_and_batch_give_the_same_polygons(ray_local, exported_models: Path, tmp_path: Path) -> None:
    """One scene path: the same scene and options answer the same mask, polygons and hectares everywhere (the
    plain per-pixel cut: the tiny test U-Net finds no field for the delineation to keep on this scene)."""
    import httpx
    from shapely.geometry import shape

    scene = write_scene(tmp_path / "field.tif", height=333, width=470)
    helpers = servers
    server = helpers.start_server(exported_models, tmp_path)
    try:
        assert helpers.wait_ready(server.url) == 200, server.log()[-3000:]
        with open(scene, "rb") as handle:
            answer = httpx.post(
                server.url + "/segment_scene",
                files={"file": ("field.tif", handle, "image/tiff")},
                data={"bands": "sentinel2-10m", "mask_mode": "threshold"},
                timeout=300,
            )
        assert answer.status_code == 200, answer.text
        served = answer.json()
        raster = httpx.post(
            server.url + "/segment_scene",
            params={"format": "geotiff", "bands": "sentinel2-10m", "mask_mode": "threshold"},
            content=scene.read_bytes(),
            headers={"Content-Type": "image/tiff"},
            timeout=300,
        )
        assert raster.status_code == 200
        (tmp_path / "served_mask.tif").write_bytes(raster.content)
    finally:
        server.stop()
    cli_out, batch_out = tmp_path / "cli", tmp_path / "batch"
    assert (
        agriland_main(
            [
                "segment",
                str(scene),
                "--out",
                str(cli_out),
                "--models",
                str(exported_models),
                "--bands",
                "sentinel2-10m",
                "--provider",
                "cpu",
                "--no-progress",
                "--mask-mode",
                "threshold",
            ]
        )
        == 0
    )
    assert (
        agriland_main(
            [
                "batch",
                str(scene),
                "--out",
                str(batch_out),
                "--models",
                str(exported_models),
                "--bands",
                "sentinel2-10m",
                "--provider",
                "cpu",
                "--no-progress",
                "--mask-mode",
                "threshold",
            ]
        )
        == 0
    )

    with (
        rasterio.open(tmp_path / "served_mask.tif") as served_mask,
        rasterio.open(cli_out / "mask.tif") as cli_mask,
        rasterio.open(batch_out / "scenes" / "field" / "mask.tif") as batch_mask,
    ):
        assert served_mask.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"  # the service answers a COG too
        reference = served_mask.read(1)
        assert (reference == 1).sum() > 1000
        assert (cli_mask.read(1) == reference).all() and (batch_mask.read(1) == reference).all()

    service_features = served["polygons"]["features"]
    cli_features = json.loads((cli_out / "arable.geojson").read_text())["features"]
    batch_frame = gpd.read_parquet(batch_out / "scenes" / "field" / "polygons.parquet").to_crs("EPSG:4326")
    assert len(service_features) == len(cli_features) == len(batch_frame) > 0
    assert service_features == cli_features  # the same GeoJSON, byte for byte
    for feature, (_, row) in zip(service_features, batch_frame.iterrows()):
        assert shape(feature["geometry"]).equals_exact(row.geometry, tolerance=1e-6)
        assert feature["properties"]["area_ha"] == pytest.approx(row["area_ha"], abs=1e-6)
    cli_summary = json.loads((cli_out / "summary.json").read_text())
    batch_row = json.loads((batch_out / "run.json").read_text())["scenes"]["field"]
    for key in ("arable_ha", "valid_ha", "n_polygons"):
        assert served["summary"][key] == pytest.approx(cli_summary[key], abs=1e-6)
        assert served["summary"][key] == pytest.approx(batch_row[key], abs=1e-6)


@pytest.mark.slow
def test_cli_and_batch_answer_the_same_fields_with_a_field_model(
    ray_local, models_with_field_model: Path, tmp_path: Path
) -> None:
    """Where models/fields holds a field model, the default field answer of `agriland segment` and `agriland batch`
    is that model's, and the two agree field for field."""
    from contract.artifacts import verify_artifact
    from testkit.field_data import draw_fields

    image, _ = draw_fields(np.random.default_rng(5), 200)
    scene = tmp_path / "drawn.tif"
    with rasterio.open(
        scene,
        "w",
        driver="GTiff",
        width=200,
        height=200,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=rasterio.transform.from_origin(500_000.0, 4_500_000.0, 2.5, 2.5),
    ) as dst:
        dst.write(np.moveaxis(image, -1, 0))
    field_model = verify_artifact(models_with_field_model / "fields" / "fp32")
    cli_out, batch_out = tmp_path / "cli", tmp_path / "batch"
    assert (
        agriland_main(
            [
                "segment",
                str(scene),
                "--out",
                str(cli_out),
                "--models",
                str(models_with_field_model),
                "--provider",
                "cpu",
                "--no-progress",
            ]
        )
        == 0
    )
    assert (
        agriland_main(
            [
                "batch",
                str(scene),
                "--out",
                str(batch_out),
                "--models",
                str(models_with_field_model),
                "--provider",
                "cpu",
                "--no-progress",
            ]
        )
        == 0
    )
    run = json.loads((batch_out / "run.json").read_text())
    assert run["model"]["sha256"] == field_model.onnx_sha256
    assert json.loads((cli_out / "summary.json").read_text())["model_version"] == field_model.version
    with (
        rasterio.open(cli_out / "mask.tif") as cli_mask,
        rasterio.open(batch_out / "scenes" / "drawn" / "mask.tif") as batch_mask,
    ):
        assert (cli_mask.read(1) == batch_mask.read(1)).all()
    cli_features = json.loads((cli_out / "arable.geojson").read_text())["features"]
    assert len(cli_features) == len(gpd.read_parquet(batch_out / "scenes" / "drawn" / "polygons.parquet"))
    # quality changes the answer: a rerun with another one is not skipped
    assert (
        agriland_main(
            [
                "batch",
                str(scene),
                "--out",
                str(batch_out),
                "--models",
                str(models_with_field_model),
                "--provider",
                "cpu",
                "--no-progress",
                "--quality",
                "best",
            ]
        )
        == 0
    )
    rerun = json.loads((batch_out / "run.json").read_text())
    assert rerun["counts"]["ok"] == 1 and rerun["scenes"]["drawn"]["status"] == "ok"


def _shifted_copy(source: Path, dest: Path, dx_px: int) -> Path:
    """The same pixels georeferenced `dx_px` pixels further east: a scene overlapping `source`."""
    with rasterio.open(source) as src:
        profile, data = src.profile, src.read()
        profile["transform"] = src.transform * src.transform.translation(dx_px, 0)
    with rasterio.open(dest, "w", **profile) as dst:
        dst.write(data)
    return dest


@pytest.mark.slow
def test_overlapping_scenes_count_each_hectare_once(ray_local, exported_models: Path, tmp_path: Path) -> None:
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    west = write_scene(scenes / "a_west.tif", height=200, width=400)
    _shifted_copy(west, scenes / "b_east.tif", 200)  # its western half lies on a_west's eastern half
    out = tmp_path / "out"
    assert _batch(scenes, out, exported_models) == 0
    alone = {
        sid: gpd.read_parquet(out / "scenes" / sid / "polygons.parquet").to_crs(4326) for sid in ("a_west", "b_east")
    }
    merged = gpd.read_parquet(out / "polygons.parquet")
    union = alone["a_west"].geometry.union_all().union(alone["b_east"].geometry.union_all())
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    union_ha = sum(abs(geod.geometry_area_perimeter(p)[0]) for p in getattr(union, "geoms", [union])) / 10_000
    naive_ha = sum(frame["area_ha"].sum() for frame in alone.values())
    assert merged["area_ha"].sum() < 0.8 * naive_ha  # the shared half is not counted twice
    # the first scene answers wherever it has data; the second adds only ground the first does not cover
    assert alone["a_west"]["area_ha"].sum() * 0.999 <= merged["area_ha"].sum() <= union_ha * 1.001
    overlaps = sum(a.intersection(b).area for i, a in enumerate(merged.geometry) for b in merged.geometry[i + 1 :])
    assert overlaps < 1e-12, "no two merged polygons cover the same ground"
    run = json.loads((out / "run.json").read_text())
    assert run["overlap"]["shared_valid_ha"] > 0
    total = pd.read_csv(out / "summary.csv").set_index("scene_id").loc["TOTAL"]
    assert total["arable_ha"] == pytest.approx(merged["area_ha"].sum(), rel=1e-6)
    per_scene_valid = sum(run["scenes"][sid]["valid_ha"] for sid in ("a_west", "b_east"))
    # valid columns: a_west 40..400, b_east 240..600 (each has a 40 px nodata margin on its west side)
    assert total["valid_ha"] == pytest.approx(per_scene_valid * 560 / 720, rel=0.01)


@pytest.mark.slow
def test_rerun_with_other_options_is_not_skipped(ray_local, exported_models: Path, tmp_path: Path) -> None:
    scenes = tmp_path / "scenes"
    scenes.mkdir()
    write_scene(scenes / "one.tif", height=150, width=160)
    out = tmp_path / "out"
    assert _batch(scenes, out, exported_models) == 0
    first = json.loads((out / "scenes" / "one" / "scene.json").read_text())
    assert first["answer_key"]["threshold"] == first["threshold"] and first["radiometry"]["scaling"]
    assert _batch(scenes, out, exported_models) == 0  # the same run again: resumed
    assert json.loads((out / "run.json").read_text())["counts"] == {"ok": 0, "skipped": 1, "failed": 0}
    for option in (["--threshold", "0.3"], ["--sieve-px", "0"], ["--bands", "1,2,3"], ["--scaling", "percentile"]):
        assert _batch(scenes, out, exported_models, *option) == 0
        counts = json.loads((out / "run.json").read_text())["counts"]
        assert counts == {"ok": 1, "skipped": 0, "failed": 0}, option


def test_stac_assets_must_hold_the_bands_asked_for(tmp_path: Path) -> None:
    import pystac

    scenes = tmp_path / "scenes"
    scenes.mkdir()
    item = pystac.Item("s2", None, None, pystac.utils.str_to_datetime("2024-06-01T00:00:00Z"), {})
    item.add_asset(
        "B04",
        pystac.Asset(
            "scenes/b04.tif",
            media_type=pystac.MediaType.COG,
            extra_fields={"raster:bands": [{"scale": 0.0001, "offset": -0.1}]},
        ),
    )
    item.add_asset(
        "visual",
        pystac.Asset(
            "scenes/tci.tif",
            media_type=pystac.MediaType.COG,
            extra_fields={"eo:bands": [{"name": n} for n in ("red", "green", "blue")]},
        ),
    )
    item.add_asset(
        "stack",
        pystac.Asset(
            "scenes/stack.tif",
            media_type=pystac.MediaType.COG,
            extra_fields={"raster:bands": [{"scale": 0.0001, "offset": -0.1}] * 4},
        ),
    )
    stac = tmp_path / "item.json"
    stac.write_text(json.dumps(item.to_dict(transform_hrefs=False)))
    (chosen,) = resolve_inputs([str(stac)])
    assert chosen.href.endswith("tci.tif") and chosen.calibration == ""  # not the first, one-band asset
    (stack,) = resolve_inputs([str(stac)], bands="sentinel2-10m")  # bands 3,2,1 -> needs 3
    assert stack.href.endswith("tci.tif")
    (four,) = resolve_inputs([str(stac)], bands="4,3,2")
    assert four.href.endswith("stack.tif")
    calibration = four.pixel_calibration()
    assert calibration is not None and calibration.gain == (0.0001,) * 4 and calibration.bias == (-0.1,) * 4
    assert "STAC raster:bands" in calibration.source
    with pytest.raises(AgrilandError, match="1 band"):
        resolve_inputs([str(stac)], asset="B04")
