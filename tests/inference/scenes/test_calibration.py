"""Scene radiometry read from the file: GDAL scale/offset, Sentinel-2 L2A offsets, Landsat C2 L2, STAC, fallback."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from contract.radiometry import DEFAULT_RADIOMETRY, Calibration
from inference.pixels import PixelSpec
from inference.scenes.source import GeoTiffSource

MODEL = PixelSpec(DEFAULT_RADIOMETRY)  # the manifest default: reflectance for 16-bit
WHITE = DEFAULT_RADIOMETRY.reflectance_white


def write(
    path: Path,
    data: np.ndarray,
    scales: list[float] | None = None,
    offsets: list[float] | None = None,
    tags: dict[str, str] | None = None,
    pixel: float = 10.0,
) -> Path:
    count, height, width = data.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(
            path,
            "w",
            driver="GTiff",
            width=width,
            height=height,
            count=count,
            dtype=data.dtype,
            crs="EPSG:32633",
            transform=from_origin(500_000, 5_000_000, pixel, pixel),
        ) as dst:
            dst.write(data)
            if scales:
                dst.scales = scales
            if offsets:
                dst.offsets = offsets
            if tags:
                dst.update_tags(**tags)
    return path


def reflectance_stack(reflectance: float = 0.1, shape: tuple[int, int] = (64, 80), bands: int = 3) -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.clip(reflectance + rng.normal(0, 0.01, (bands, *shape)), 0.01, 0.9)


def rendered(path: Path, pixels: PixelSpec = MODEL, bands: str | None = None):
    with GeoTiffSource(path, bands, pixels) as source:
        rgb, _ = source.read(Window(0, 0, source.width, source.height))
        return rgb, source.radiometry.applied


def expected(reflectance: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(np.moveaxis(reflectance, 0, -1) * 255 / WHITE), 0, 255)


def test_gdal_scale_and_offset_are_applied(tmp_path: Path) -> None:
    refl = reflectance_stack()
    dn = np.rint((refl + 0.1) / 2e-5).astype(np.uint16)  # a product with its own scaling, stated in the file
    rgb, applied = rendered(write(tmp_path / "scaled.tif", dn, scales=[2e-5] * 3, offsets=[-0.1] * 3))
    assert applied.scaling == "reflectance" and "GDAL" in applied.source and applied.warning is None
    assert applied.gain == pytest.approx([2e-5] * 3) and applied.bias == pytest.approx([-0.1] * 3)
    assert np.abs(rgb.astype(int) - expected(refl)).max() <= 1


@pytest.mark.parametrize(
    "name, tags, offset",
    [
        ("S2B_MSIL2A_20230612T101559_N0509_R065_T32UQD_20230612T131237.tif", {}, -1000),
        ("S2A_MSIL2A_20210612T101559_N0300_R065_T32UQD_20210612T131237.tif", {}, 0),
        ("l2a.tif", {"PRODUCT_TYPE": "S2MSI2A", "PROCESSING_BASELINE": "04.00"}, -1000),
        ("l2a_tagged.tif", {"BOA_ADD_OFFSET_B4": "-1000", "BOA_QUANTIFICATION_VALUE": "10000"}, -1000),
    ],
)
def test_sentinel2_l2a_boa_offset(tmp_path: Path, name: str, tags: dict[str, str], offset: int) -> None:
    refl = reflectance_stack(0.08)
    dn = np.rint(refl * 10_000 - offset).astype(np.uint16)
    rgb, applied = rendered(write(tmp_path / name, dn, tags=tags))
    assert "Sentinel-2 L2A" in applied.source and applied.bias == pytest.approx([offset / 10_000] * 3)
    assert np.abs(rgb.astype(int) - expected(refl)).max() <= 1


def test_landsat_collection2_level2_factors(tmp_path: Path) -> None:
    refl = reflectance_stack(0.12, bands=7)
    dn = np.rint((refl + 0.2) / 2.75e-5).astype(np.uint16)
    path = write(tmp_path / "LC08_L2SP_193027_20230701_20230711_02_T1_SR.tif", dn, pixel=30.0)
    rgb, applied = rendered(path, bands="landsat8")
    assert "Landsat Collection 2 Level-2" in applied.source and applied.warning is None
    assert np.abs(rgb.astype(int) - expected(refl[[3, 2, 1]])).max() <= 1


def test_stac_raster_bands_calibration_wins(tmp_path: Path) -> None:
    refl = reflectance_stack()
    dn = np.rint((refl + 0.1) * 10_000).astype(np.uint16)  # e.g. an L2A COG whose STAC item says offset -0.1
    stated = Calibration(gain=(1e-4,), bias=(-0.1,), source="STAC raster:bands scale/offset")
    rgb, applied = rendered(write(tmp_path / "cog.tif", dn), PixelSpec(DEFAULT_RADIOMETRY, calibration=stated))
    assert applied.source.startswith("STAC") and np.abs(rgb.astype(int) - expected(refl)).max() <= 1


def test_nothing_said_and_plausible_keeps_the_model_default(tmp_path: Path) -> None:
    refl = reflectance_stack()
    rgb, applied = rendered(write(tmp_path / "l1c.tif", np.rint(refl * 10_000).astype(np.uint16)))
    assert applied.scaling == "reflectance" and "default" in applied.source and applied.warning is None
    assert applied.clipped_fraction == 0.0 and np.abs(rgb.astype(int) - expected(refl)).max() <= 1


def test_saturated_default_falls_back_to_the_stretch_with_a_warning(tmp_path: Path) -> None:
    dn = np.random.default_rng(2).integers(6_000, 30_000, (3, 64, 80)).astype(np.uint16)  # Level-1 DN
    path = write(tmp_path / "l1.tif", dn)
    rgb, applied = rendered(path)
    assert applied.scaling == "percentile" and applied.clipped_fraction > 0.9
    assert "scaling=percentile" in applied.warning and "gdal_edit.py" in applied.warning
    stretched, asked = rendered(path, PixelSpec(DEFAULT_RADIOMETRY, scaling="percentile"))
    assert np.array_equal(rgb, stretched) and asked.warning is None and asked.source.startswith("requested")
    forced, kept = rendered(path, PixelSpec(DEFAULT_RADIOMETRY, scaling="reflectance"))
    assert kept.scaling == "reflectance" and "saturate" in kept.warning and (forced == 255).mean() > 0.9
