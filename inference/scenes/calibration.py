"""What a scene file says about its radiometry: GDAL scale/offset, Sentinel-2 L2A offsets, Landsat C2 L2 factors."""

from __future__ import annotations

import logging
import re

from rasterio.io import DatasetReader

from contract.radiometry import Calibration

log = logging.getLogger(__name__)

# Sentinel-2 L2A from processing baseline 04.00 (25 January 2022) stores DN = 10000 * reflectance + 1000.
S2_BOA_OFFSET_SINCE = 4.0
S2_DEFAULT_OFFSET = -1000.0
S2_QUANTIFICATION = 10000.0
# Landsat Collection 2 Level-2 surface reflectance: reflectance = DN * 2.75e-05 - 0.2 (USGS product guide).
LANDSAT_C2_L2_GAIN = 2.75e-5
LANDSAT_C2_L2_BIAS = -0.2

_S2_L2A_NAME = re.compile(r"S2[A-D]_MSIL2A_\d{8}T\d{6}_N(\d{2})(\d{2})_")
_LANDSAT_L2_NAME = re.compile(r"L[COTEM]0[4-9]_L2S[PR]_", re.IGNORECASE)


def _tags(ds: DatasetReader) -> dict[str, str]:
    """Dataset tags plus the first band's, upper-cased keys (GDAL drivers put these in either place)."""
    tags = {str(k).upper(): str(v) for k, v in ds.tags().items()}
    for key, value in ds.tags(1).items():
        tags.setdefault(str(key).upper(), str(value))
    return tags


def gdal_scale_offset(ds: DatasetReader) -> Calibration | None:
    """The bands' GDAL scale/offset (`gdal_edit.py -scale -offset`, rasterio `scales`/`offsets`) when any is set."""
    scales, offsets = tuple(float(s) for s in ds.scales), tuple(float(o) for o in ds.offsets)
    if all(s == 1.0 for s in scales) and all(o == 0.0 for o in offsets):
        return None
    return Calibration(gain=scales, bias=offsets, source="the file's GDAL band scale/offset")


def _baseline(tags: dict[str, str], name: str) -> float | None:
    text = tags.get("PROCESSING_BASELINE")
    if text:
        try:
            return float(text)
        except ValueError:
            pass
    match = _S2_L2A_NAME.search(name)
    return float(f"{match.group(1)}.{match.group(2)}") if match else None


def sentinel2_l2a(tags: dict[str, str], name: str) -> Calibration | None:
    """BOA_ADD_OFFSET from the product's metadata, or -1000 for an L2A product of baseline >= 04.00."""
    quantification = S2_QUANTIFICATION
    for key in ("BOA_QUANTIFICATION_VALUE", "QUANTIFICATION_VALUE"):
        if key in tags:
            try:
                quantification = float(tags[key])
            except ValueError:
                pass
    offsets = [v for k, v in sorted(tags.items()) if k.startswith("BOA_ADD_OFFSET")]
    if offsets:
        try:
            offset = float(offsets[0])
        except ValueError:
            offset = None
        if offset is not None:
            return Calibration(
                gain=(1.0 / quantification,),
                bias=(offset / quantification,),
                source=f"Sentinel-2 L2A BOA_ADD_OFFSET {offset:g} and quantification "
                f"{quantification:g} from the file's metadata",
            )
    is_l2a = (
        "2A" in tags.get("PRODUCT_TYPE", "").upper()
        or "L2A" in tags.get("PROCESSING_LEVEL", "").upper()
        or bool(_S2_L2A_NAME.search(name))
    )
    baseline = _baseline(tags, name)
    if not is_l2a or baseline is None:
        return None
    offset = S2_DEFAULT_OFFSET if baseline >= S2_BOA_OFFSET_SINCE else 0.0
    return Calibration(
        gain=(1.0 / quantification,),
        bias=(offset / quantification,),
        source=f"Sentinel-2 L2A processing baseline {baseline:05.2f}: BOA_ADD_OFFSET {offset:g}",
    )


def landsat_c2_l2(tags: dict[str, str], name: str) -> Calibration | None:
    """Landsat Collection 2 Level-2 surface reflectance, named by its product id (file name or tags)."""
    product = " ".join(tags.get(k, "") for k in ("LANDSAT_PRODUCT_ID", "PRODUCT_ID", "PROCESSING_LEVEL"))
    if not (
        _LANDSAT_L2_NAME.search(name) or _LANDSAT_L2_NAME.search(product) or "L2SP" in product or "L2SR" in product
    ):
        return None
    return Calibration(
        gain=(LANDSAT_C2_L2_GAIN,),
        bias=(LANDSAT_C2_L2_BIAS,),
        source="Landsat Collection 2 Level-2 surface reflectance (DN * 2.75e-05 - 0.2)",
    )


def file_calibration(ds: DatasetReader, name: str, stated: Calibration | None = None) -> Calibration | None:
    """How DN become reflectance for this file, or None when nothing says.

    In order: what the caller was told (a STAC item's `raster:bands` scale/offset), the bands' GDAL
    scale/offset, Sentinel-2 L2A offsets (metadata or the product name's baseline), Landsat C2 L2 factors.
    """
    if stated is not None:
        return stated
    tags = _tags(ds)
    for found in (gdal_scale_offset(ds), sentinel2_l2a(tags, name), landsat_c2_l2(tags, name)):
        if found is not None:
            log.info("%s: radiometry from %s", name, found.source)
            return found
    return None
