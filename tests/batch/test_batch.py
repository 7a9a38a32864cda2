"""`agriland batch` on a real local Ray cluster (2 CPUs) with the suite's trained tiny U-Net."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow.parquet as pq
import pytest
import rasterio

from agriland.cli import main as agriland_main
from batch.inputs import resolve_inputs
from contract.errors import AgrilandError


def _scene_writer():
    """tests/serving/test_windowed.py's scene writer (loaded by path: importlib mode)."""
    path = Path(__file__).resolve().parents[1] / "serving" / "test_windowed.py"
    spec = importlib.util.spec_from_file_location("windowed_scenes", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module.write_scene


write_scene = _scene_writer()


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
    return agriland_main(["batch", str(scenes), "--out", str(out), "--models", str(models), "--bands",
                          "sentinel2-10m", "--provider", "cpu", "--no-progress", "--overlap", "8",
                          "--block-size", "128", *extra])


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
    assert merged.crs.to_epsg() == 4326 and set(merged["scene_id"]) == {"north", "south"}
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
    assert set(gpd.read_parquet(out / "polygons.parquet")["scene_id"]) == {"north", "south"}


def test_inputs_from_folders_lists_and_stac(tmp_path: Path) -> None:
    import pystac

    scenes = tmp_path / "scenes"
    scenes.mkdir()
    for name in ("a", "b"):
        (scenes / f"{name}.tif").write_bytes(b"")
    listing = tmp_path / "list.txt"
    listing.write_text(f"# scenes\n{scenes / 'a.tif'}\nhttps://example.invalid/c.tif\n")
    items = [pystac.Item(f"item-{n}", None, None, pystac.utils.str_to_datetime("2024-06-01T00:00:00Z"), {})
             for n in ("a", "b")]
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
