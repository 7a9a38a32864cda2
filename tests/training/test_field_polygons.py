"""Field polygon readers: VIA exports over plain images, GeoJSON / GeoParquet over GeoTIFFs, and their refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contract.errors import AgrilandError
from testkit.field_data import write_via_set
from training.field_polygons import read_fields, read_vector_fields, read_via_fields


def test_via_export_gives_one_instance_per_drawn_field(tmp_path: Path) -> None:
    via = write_via_set(tmp_path, n_images=2, size=64)
    images = read_via_fields(via, tmp_path / "images", gsd_m=2.5)
    assert [im.name for im in images] == ["fields_0", "fields_1"]
    regions = json.loads(via.read_text())
    for image, entry in zip(images, regions.values()):
        assert image.n_fields == len(entry["regions"]) and image.gsd_m == 2.5
        first = entry["regions"][0]["shape_attributes"]
        x0, y0 = first["all_points_x"][0], first["all_points_y"][0]
        assert image.instances[y0 + 1, x0 + 1] == 1 and image.instances[0, 0] == 0


def test_via_refusals_name_the_problem(tmp_path: Path) -> None:
    via = write_via_set(tmp_path, n_images=1, size=64)
    with pytest.raises(AgrilandError, match="image folder not found"):
        read_via_fields(via, tmp_path / "nowhere")
    (tmp_path / "images" / "fields_0.png").unlink()
    with pytest.raises(AgrilandError, match="image not found"):
        read_via_fields(via, tmp_path / "images")
    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    with pytest.raises(AgrilandError, match="no images"):
        read_via_fields(empty, tmp_path / "images")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(AgrilandError, match="not valid JSON"):
        read_fields(bad, tmp_path / "images")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "images" / "fields_0.png")
    outside = tmp_path / "outside.json"
    outside.write_text(
        json.dumps(
            {
                "a": {
                    "filename": "fields_0.png",
                    "regions": [
                        {
                            "shape_attributes": {
                                "name": "polygon",
                                "all_points_x": [100, 120, 120],
                                "all_points_y": [100, 100, 120],
                            }
                        }
                    ],
                }
            }
        )
    )
    with pytest.raises(AgrilandError, match="outside the 64x64 image"):
        read_via_fields(outside, tmp_path / "images")
    no_regions = tmp_path / "none.json"
    no_regions.write_text(json.dumps({"a": {"filename": "fields_0.png", "regions": []}}))
    with pytest.raises(AgrilandError, match="no field polygons"):
        read_via_fields(no_regions, tmp_path / "images")


def _geotiff(path: Path, size: int = 50, gsd: float = 10.0) -> tuple[float, float]:
    import rasterio
    from rasterio.transform import from_origin

    origin = (500_000.0, 4_500_000.0)
    rgb = np.full((3, size, size), 90, np.uint8)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(*origin, gsd, gsd),
    ) as dst:
        dst.write(rgb)
    return origin


def _frame(origin: tuple[float, float], boxes: list[tuple[float, float, float, float]]):
    import geopandas as gpd
    from shapely.geometry import box

    x, y = origin
    return gpd.GeoDataFrame(
        {"id": list(range(len(boxes)))},
        geometry=[box(x + a, y - d, x + c, y - b) for a, b, c, d in boxes],
        crs="EPSG:32633",
    )


@pytest.mark.parametrize("suffix", [".geojson", ".parquet", ".gpkg"])
def test_vector_fields_over_a_geotiff_in_another_crs(tmp_path: Path, suffix: str) -> None:
    raster = tmp_path / "scene.tif"
    origin = _geotiff(raster)
    frame = _frame(origin, [(0, 0, 200, 250), (200, 0, 400, 250)]).to_crs("EPSG:4326")  # two touching fields
    path = tmp_path / f"fields{suffix}"
    frame.to_parquet(path) if suffix == ".parquet" else frame.to_file(path)
    (image,) = read_fields(path, [raster])
    assert image.gsd_m == pytest.approx(10.0) and image.n_fields == 2
    assert image.instances[10, 5] != image.instances[10, 30] and image.instances[10, 5] > 0
    assert (image.instances[30:] == 0).all()  # south of 250 m: not a field
    assert np.count_nonzero(image.instances) == pytest.approx(40 * 25, abs=40)


def test_vector_refusals_name_the_problem(tmp_path: Path) -> None:
    raster = tmp_path / "scene.tif"
    origin = _geotiff(raster)
    far = tmp_path / "far.geojson"
    _frame((origin[0] + 50_000, origin[1]), [(0, 0, 100, 100)]).to_crs("EPSG:4326").to_file(far)
    with pytest.raises(AgrilandError, match="outside every image"):
        read_vector_fields(far, [raster])
    empty = tmp_path / "empty.geojson"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(AgrilandError, match="no field polygons"):
        read_fields(empty, [raster])
    inside = tmp_path / "inside.geojson"
    _frame(origin, [(0, 0, 100, 100)]).to_crs("EPSG:4326").to_file(inside)
    with pytest.raises(AgrilandError, match="image not found"):
        read_fields(inside, [tmp_path / "missing.tif"])
    with pytest.raises(AgrilandError, match="field polygons not found"):
        read_fields(tmp_path / "missing.geojson", [raster])
    (tmp_path / "no_rasters").mkdir()
    with pytest.raises(AgrilandError, match="no GeoTIFF"):
        read_fields(inside, [tmp_path / "no_rasters"])
    odd = tmp_path / "fields.csv"
    odd.write_text("a,b\n")
    with pytest.raises(AgrilandError, match="unknown polygon format"):
        read_fields(odd, [raster])
