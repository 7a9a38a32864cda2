"""Batch inputs: scene files, folders, path lists, URLs and STAC ItemCollections to (scene id, href) pairs."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from contract.errors import AgrilandError
from contract.radiometry import Calibration
from inference.scenes.geo import parse_bands
from inference.scenes.source import is_url

log = logging.getLogger(__name__)

SCENE_SUFFIXES = (".tif", ".tiff")
_GEOTIFF_TYPES = ("image/tiff", "image/geotiff")


@dataclass(frozen=True)
class SceneInput:
    """One scene to segment: a file-system-safe id (unique in the run), where to read it, and what its
    catalogue says of its radiometry (a `contract.radiometry.Calibration` as JSON, "" when nothing)."""

    scene_id: str
    href: str
    calibration: str = ""

    def pixel_calibration(self) -> Calibration | None:
        return Calibration.model_validate_json(self.calibration) if self.calibration else None


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text).strip("._") or "scene"


def _is_geotiff(asset) -> bool:  # noqa: ANN001 - a pystac.Asset
    media = (asset.media_type or "").split(";")[0].strip()
    return media in _GEOTIFF_TYPES or media.startswith("image/tiff")


def _band_count(asset) -> int | None:  # noqa: ANN001
    """Bands an asset declares (raster:bands or eo:bands, on the asset), or None when it says nothing."""
    counts = [
        len(asset.extra_fields[key])
        for key in ("raster:bands", "eo:bands")
        if isinstance(asset.extra_fields.get(key), list)
    ]
    return max(counts) if counts else None


def _calibration(asset, where: str) -> str:  # noqa: ANN001
    """The asset's raster:bands scale/offset as Calibration JSON ("" when it states none)."""
    bands = asset.extra_fields.get("raster:bands")
    if not isinstance(bands, list) or not bands:
        return ""
    try:
        gains = tuple(float(b.get("scale", 1.0)) for b in bands)
        biases = tuple(float(b.get("offset", 0.0)) for b in bands)
    except (AttributeError, TypeError, ValueError):
        return ""
    if all(g == 1.0 for g in gains) and all(o == 0.0 for o in biases):
        return ""
    return Calibration(gain=gains, bias=biases, source=f"STAC raster:bands scale/offset of {where}").model_dump_json()


def _choose_asset(item, asset: str | None, needed: int, path: Path):  # noqa: ANN001, ANN202
    """The named asset, else the first GeoTIFF asset that can hold the bands asked for (>= 3 for RGB)."""
    if asset is not None:
        chosen = item.assets.get(asset)
        if chosen is None:
            raise AgrilandError(
                f"STAC item {item.id} in {path.name} has no asset {asset!r}; it has {', '.join(item.assets) or 'none'}"
            )
        count = _band_count(chosen)
        if count is not None and count < needed:
            raise AgrilandError(
                f"STAC item {item.id}: asset {asset!r} has {count} band(s), {needed} are needed; "
                "choose another --asset or --bands"
            )
        return asset, chosen
    tiffs = [(key, a) for key, a in item.assets.items() if _is_geotiff(a)]
    known = [(key, a) for key, a in tiffs if (_band_count(a) or 0) >= needed]
    unknown = [(key, a) for key, a in tiffs if _band_count(a) is None]
    if known or unknown:
        return (known or unknown)[0]
    described = ", ".join(f"{key} ({_band_count(a)} band(s))" for key, a in tiffs) or "no GeoTIFF asset"
    raise AgrilandError(
        f"STAC item {item.id} in {path.name} has no GeoTIFF asset with {needed} bands ({described}); "
        "choose one with --asset, or stack the bands into one file"
    )


def _stac_hrefs(path: Path, asset: str | None, needed: int = 3) -> list[tuple[str, str, str]]:
    """(item id, asset href, calibration JSON) of every item in a STAC ItemCollection (or a single Item) file."""
    import pystac

    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise AgrilandError(f"{path} is not readable JSON: {err}") from err
    try:
        if payload.get("type") == "Feature":
            items = [pystac.Item.from_dict(payload)]
        else:
            items = list(pystac.ItemCollection.from_dict(payload, preserve_dict=False))
    except Exception as err:  # pystac raises several types for malformed documents
        raise AgrilandError(f"{path} is not a STAC Item or ItemCollection: {err}") from err
    found = []
    for item in items:
        key, chosen = _choose_asset(item, asset, needed, path)
        href = chosen.href
        if not is_url(href) and not Path(href).is_absolute():
            href = str((path.parent / href).resolve())
        found.append((item.id, href, _calibration(chosen, f"item {item.id} asset {key}")))
    return found


def _expand(arg: str, asset: str | None, needed: int = 3) -> list[tuple[str, str, str]]:
    if is_url(arg):
        return [(Path(arg.split("?")[0]).stem, arg, "")]
    path = Path(arg)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SCENE_SUFFIXES and p.is_file())
        if not files:
            raise AgrilandError(f"{path} holds no .tif/.tiff scenes")
        return [(p.stem, str(p.resolve()), "") for p in files]
    if path.suffix.lower() == ".json":
        return _stac_hrefs(path, asset, needed)
    if path.suffix.lower() == ".txt":
        lines = [line.strip() for line in path.read_text().splitlines()]
        return [pair for line in lines if line and not line.startswith("#") for pair in _expand(line, asset, needed)]
    if path.suffix.lower() in SCENE_SUFFIXES:
        # missing or broken files are kept: they fail alone at run time and are reported in the run manifest
        return [(path.stem, str(path.resolve()), "")]
    raise AgrilandError(f"{arg}: not a folder, a .tif/.tiff scene, a STAC .json, a .txt list or a URL")


def resolve_inputs(args: list[str], asset: str | None = None, bands: str | None = None) -> list[SceneInput]:
    """Every scene named by the arguments, in order, duplicates (same href) dropped, ids made unique.

    A STAC item's asset must hold the bands asked for (`bands`, default RGB: 3), so a one-band asset is
    never taken for an RGB scene; its raster:bands scale/offset travel with the scene.
    """
    chosen = parse_bands(bands)
    needed = 3 if chosen is None else max(max(chosen), 1)
    if not args:
        raise AgrilandError("no inputs: give scene files, folders, a STAC ItemCollection .json or a .txt list")
    seen_hrefs: set[str] = set()
    used: dict[str, int] = {}
    scenes: list[SceneInput] = []
    for arg in args:
        for raw_id, href, calibration in _expand(arg, asset, needed):
            if href in seen_hrefs:
                continue
            seen_hrefs.add(href)
            base = _safe_id(raw_id)
            used[base] = used.get(base, 0) + 1
            scene_id = base if used[base] == 1 else f"{base}-{used[base]}"
            scenes.append(SceneInput(scene_id, href, calibration))
    log.info("%d scene(s) to segment", len(scenes))
    return scenes
