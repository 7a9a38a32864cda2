"""`agriland segment`: a real exported U-Net on a uint16 GeoTIFF scene, outputs and error lines."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from agriland.cli import main as agriland_main
from testkit.exports import was_exported
from testkit.scene_models import build_unet_artifact

UTM_TRANSFORM = from_origin(500_000.0, 5_000_000.0, 10.0, 10.0)
FIELD = (slice(60, 200), slice(120, 300))


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tf2onnx-exported U-Net whose head scores greenness, so the field it must find is known."""
    models_dir = tmp_path_factory.mktemp("models")
    build_unet_artifact(models_dir)
    return models_dir


def _scene(path: Path, height: int = 333, width: int = 411) -> Path:
    """uint16 B2,B3,B4,B8 stack with a green field and zero (nodata) margins."""
    rng = np.random.default_rng(3)
    data = np.empty((4, height, width), dtype=np.uint16)
    data[0] = rng.integers(900, 1100, (height, width))
    data[1] = rng.integers(1400, 1600, (height, width))
    data[2] = rng.integers(1900, 2100, (height, width))
    data[3] = rng.integers(2500, 3000, (height, width))
    data[1][FIELD] += 1500
    data[2][FIELD] -= 800
    data[:, :, :30] = 0
    data[:, -20:, :] = 0
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=4,
        dtype="uint16",
        crs="EPSG:32633",
        transform=UTM_TRANSFORM,
    ) as dst:
        dst.write(data)
    return path


@pytest.mark.slow
def test_segment_writes_georeferenced_outputs(models_dir: Path, tmp_path: Path, capsys) -> None:
    scene = _scene(tmp_path / "scene.tif")
    out = tmp_path / "out"
    code = agriland_main(
        [
            "segment",
            str(scene),
            "--out",
            str(out),
            "--models",
            str(models_dir),
            "--overlap",
            "16",
            "--bands",
            "sentinel2-10m",
            "--min-area-ha",
            "1",
            "--no-progress",
            "--provider",
            "cpu",
            "--scaling",
            "percentile",
        ]
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "arable.geojson",
        "mask.tif",
        "probability.tif",
        "quicklook.png",
        "summary.json",
    ]
    assert "ha arable" in capsys.readouterr().out
    with rasterio.open(scene) as src, rasterio.open(out / "mask.tif") as mask_ds:
        assert mask_ds.crs == src.crs and mask_ds.transform == src.transform
        assert mask_ds.shape == src.shape and mask_ds.nodata == 255
        mask = mask_ds.read(1)
    assert (mask[:, :30] == 255).all() and (mask[-20:, :] == 255).all()  # nodata is never arable
    truth = np.zeros(mask.shape, dtype=bool)
    truth[FIELD] = True
    found = mask == 1
    assert (found & truth).sum() / (found | truth).sum() > 0.9
    collection = json.loads((out / "arable.geojson").read_text())
    assert "crs" not in collection and len(collection["features"]) == 1  # RFC 7946 lon/lat
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arable_ha"] == pytest.approx(found.sum() * 0.01, rel=0.01)
    assert summary["valid_ha"] == pytest.approx((mask != 255).sum() * 0.01, rel=0.01)
    assert summary["tiles"] > 0


@pytest.mark.slow
def test_segment_geojson_is_lon_lat(models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert (
        agriland_main(
            [
                "segment",
                str(_scene(tmp_path / "s.tif")),
                "--out",
                str(out),
                "--models",
                str(models_dir),
                "--overlap",
                "8",
                "--bands",
                "3,2,1",
                "--no-progress",
                "--provider",
                "cpu",
            ]
        )
        == 0
    )
    collection = json.loads((out / "arable.geojson").read_text())
    assert "crs" not in collection
    lon, lat = np.asarray(collection["features"][0]["geometry"]["coordinates"][0]).T
    assert 14.9 < lon.min() < 15.1 and 45.0 < lat.min() < 45.2


@pytest.mark.slow
def test_bad_scene_is_one_clear_line(models_dir: Path, tmp_path: Path, capsys) -> None:
    no_crs = tmp_path / "nocrs.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(no_crs, "w", driver="GTiff", width=8, height=8, count=3, dtype="uint8") as dst:
            dst.write(np.ones((3, 8, 8), dtype=np.uint8))
    out = tmp_path / "out"
    assert agriland_main(["segment", str(no_crs), "--out", str(out), "--models", str(models_dir)]) == 2
    assert "nocrs.tif has no CRS" in capsys.readouterr().err
    assert not out.exists()
    assert agriland_main(["segment", str(no_crs), "--out", str(out), "--models", str(tmp_path / "none")]) == 2
    assert "no manifest.json" in capsys.readouterr().err


@pytest.mark.slow
def test_segment_with_the_suite_models(exported_models: Path, tmp_path: Path) -> None:
    """The shared trained + exported U-Net (fp32, and int8 where its gate kept it): model-agnostic checks."""
    scene = _scene(tmp_path / "scene.tif")
    for variant in [v for v in ("fp32", "int8") if was_exported(exported_models, "unet", v)]:
        out = tmp_path / variant
        assert (
            agriland_main(
                [
                    "segment",
                    str(scene),
                    "--out",
                    str(out),
                    "--models",
                    str(exported_models),
                    "--variant",
                    variant,
                    "--overlap",
                    "16",
                    "--bands",
                    "sentinel2-10m",
                    "--no-progress",
                    "--provider",
                    "cpu",
                ]
            )
            == 0
        )
        with rasterio.open(scene) as src, rasterio.open(out / "mask.tif") as mask_ds:
            assert mask_ds.crs == src.crs and mask_ds.transform == src.transform
            mask = mask_ds.read(1)
        assert (mask[:, :30] == 255).all() and set(np.unique(mask[:-20, 30:])) <= {0, 1}
        summary = json.loads((out / "summary.json").read_text())
        assert summary["valid_ha"] == pytest.approx((mask != 255).sum() * 0.01, rel=0.01)
        assert summary["arable_ha"] == pytest.approx((mask == 1).sum() * 0.01, rel=0.01, abs=1e-6)


@pytest.mark.slow
def test_a_30m_scene_is_resampled_to_the_model_gsd_and_answered_on_its_own_grid(
    models_dir: Path, tmp_path: Path
) -> None:
    scene = _scene(tmp_path / "landsat.tif")
    with rasterio.open(scene, "r+") as ds:  # the same pixels, taken as 30 m Landsat-like ground samples
        ds.transform = from_origin(500_000.0, 5_000_000.0, 30.0, 30.0)
    out = tmp_path / "out"
    code = agriland_main(
        [
            "segment",
            str(scene),
            "--out",
            str(out),
            "--models",
            str(models_dir),
            "--bands",
            "sentinel2-10m",
            "--no-progress",
            "--provider",
            "cpu",
            "--scaling",
            "percentile",
        ]
    )
    assert code == 0
    with rasterio.open(scene) as src, rasterio.open(out / "mask.tif") as mask_ds:
        assert mask_ds.transform == src.transform and mask_ds.shape == src.shape
        mask = mask_ds.read(1)
    truth = np.zeros(mask.shape, dtype=bool)
    truth[FIELD] = True
    found = mask == 1
    assert (found & truth).sum() / (found | truth).sum() > 0.85
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arable_ha"] == pytest.approx(found.sum() * 0.09, rel=0.02)  # 30 m pixels are 0.09 ha
    assert summary["tile_size"] == 21  # 64 model px of 10 m = 21 source px of 30 m
