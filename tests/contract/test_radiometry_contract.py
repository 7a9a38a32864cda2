"""The radiometry contract round trip: 8-bit, uint16 reflectance and float tiles give training and serving the same input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from contract.errors import AgrilandError
from contract.manifest import read_manifest
from contract.radiometry import DEFAULT_RADIOMETRY, Radiometry, to_model_input

rasterio = pytest.importorskip("rasterio")


def _rendering(seed: int = 0) -> np.ndarray:
    """An 8-bit tile as the training data renders it."""
    return np.random.default_rng(seed).integers(0, 256, (32, 32, 3)).astype(np.uint8)


def _as_reflectance(tile: np.ndarray, radiometry: Radiometry) -> np.ndarray:
    return tile.astype(np.float64) / 255.0 * radiometry.reflectance_white


def _write_tif(path: Path, array: np.ndarray) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=array.shape[1],
        height=array.shape[0],
        count=array.shape[2],
        dtype=array.dtype.name,
        crs="EPSG:32633",
        transform=rasterio.Affine(10, 0, 500000, 0, -10, 5000000),
    ) as dst:
        dst.write(np.moveaxis(array, -1, 0))
    return path


def test_uint16_l2a_like_and_float_tiles_become_the_8bit_rendering(tmp_path: Path) -> None:
    from inference.tiles.decoding import decode_image
    from training.tile_io import read_rgb

    tile = _rendering()
    reflectance = _as_reflectance(tile, DEFAULT_RADIOMETRY)
    inputs = {
        "uint8": tile,
        "uint16": np.rint(reflectance * DEFAULT_RADIOMETRY.reflectance_scale).astype(np.uint16),
        "float32": reflectance.astype(np.float32),
    }
    for name, array in inputs.items():
        path = _write_tif(tmp_path / f"{name}.tif", array)
        trained = read_rgb(path, 32)  # what training reads
        served = decode_image(path.read_bytes())  # what /segment and /cluster decode
        np.testing.assert_array_equal(trained, served, err_msg=name)
        assert np.abs(trained.astype(int) - tile.astype(int)).max() <= 1, name


def test_thirteen_band_sentinel2_stack_uses_b4_b3_b2(tmp_path: Path) -> None:
    from inference.tiles.decoding import decode_image
    from training.tile_io import read_rgb

    tile = _rendering(1)
    stack = np.zeros((32, 32, 13), np.uint16)
    stack[..., [3, 2, 1]] = np.rint(_as_reflectance(tile, DEFAULT_RADIOMETRY) * 10000).astype(np.uint16)
    stack[..., 0] = 9000  # B1 (coastal aerosol): must not be read as red
    path = _write_tif(tmp_path / "s2.tif", stack)
    for decoded in (read_rgb(path, 32), decode_image(path.read_bytes())):
        assert np.abs(decoded.astype(int) - tile.astype(int)).max() <= 1


def test_percentile_scaling_and_float_digital_numbers() -> None:
    dn = np.random.default_rng(2).integers(7000, 20000, (16, 16, 3)).astype(np.uint16)  # Landsat C2-like DNs
    stretched = to_model_input(dn, DEFAULT_RADIOMETRY, scaling="percentile")
    assert stretched.min() == 0 and stretched.max() == 255
    as_float = to_model_input(dn.astype(np.float32), DEFAULT_RADIOMETRY)  # floats > 2: digital numbers, not 0..1
    np.testing.assert_array_equal(as_float, to_model_input(dn, DEFAULT_RADIOMETRY))


def test_nodata_stays_zero_and_nan_is_not_a_value() -> None:
    array = np.full((8, 8, 3), 0.1, np.float32)
    array[0, 0] = np.nan
    out = to_model_input(array, DEFAULT_RADIOMETRY)
    assert out[0, 0].tolist() == [0, 0, 0] and out[1, 1, 0] == round(0.1 / 0.275 * 255)


def test_a_manifest_without_radiometry_is_refused(tmp_path: Path) -> None:
    payload = {
        "name": "unet",
        "task": "segmentation",
        "version": "1",
        "tile_size": 64,
        "input": {"name": "image", "dtype": "uint8", "shape": [None, 64, 64, 3]},
        "outputs": [{"name": "mask", "dtype": "float32", "shape": [None, 64, 64, 1]}],
        "onnx_sha256": "0" * 64,
    }
    (tmp_path / "manifest.json").write_text(json.dumps(payload))
    with pytest.raises(AgrilandError, match="no radiometry contract .* export the model again"):
        read_manifest(tmp_path)
    payload["radiometry"] = {"gsd_m": -1}
    (tmp_path / "manifest.json").write_text(json.dumps(payload))
    with pytest.raises(AgrilandError, match="not a valid manifest"):
        read_manifest(tmp_path)
    payload["radiometry"] = DEFAULT_RADIOMETRY.model_dump(mode="json")
    (tmp_path / "manifest.json").write_text(json.dumps(payload))
    assert read_manifest(tmp_path).radiometry.gsd_m == 10.0
