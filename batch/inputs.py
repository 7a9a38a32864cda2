"""Batch inputs: scene files, folders, path lists, URLs and STAC ItemCollections to (scene id, href) pairs."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from contract.errors import AgrilandError
from serving.scene_source import is_url

log = logging.getLogger(__name__)

SCENE_SUFFIXES = (".tif", ".tiff")
_GEOTIFF_TYPES = ("image/tiff", "image/geotiff")


@dataclass(frozen=True)
class SceneInput:
    """One scene to segment: a file-system-safe id (unique in the run) and where to read it."""

    scene_id: str
    href: str


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text).strip("._") or "scene"


def _stac_hrefs(path: Path, asset: str | None) -> list[tuple[str, str]]:
    """(item id, asset href) of every item in a STAC ItemCollection (or a single Item) JSON file."""
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
        if asset is not None:
            chosen = item.assets.get(asset)
        else:
            chosen = next((a for a in item.assets.values() if (a.media_type or "").split(";")[0] in _GEOTIFF_TYPES
                           or (a.media_type or "").startswith("image/tiff")), None)
        if chosen is None:
            raise AgrilandError(f"STAC item {item.id} in {path.name} has no {asset or 'GeoTIFF'} asset; choose one with --asset")
        href = chosen.href
        if not is_url(href) and not Path(href).is_absolute():
            href = str((path.parent / href).resolve())
        found.append((item.id, href))
    return found


def _expand(arg: str, asset: str | None) -> list[tuple[str, str]]:
    if is_url(arg):
        return [(Path(arg.split("?")[0]).stem, arg)]
    path = Path(arg)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in SCENE_SUFFIXES and p.is_file())
        if not files:
            raise AgrilandError(f"{path} holds no .tif/.tiff scenes")
        return [(p.stem, str(p.resolve())) for p in files]
    if path.suffix.lower() == ".json":
        return _stac_hrefs(path, asset)
    if path.suffix.lower() == ".txt":
        lines = [line.strip() for line in path.read_text().splitlines()]
        return [pair for line in lines if line and not line.startswith("#") for pair in _expand(line, asset)]
    if path.suffix.lower() in SCENE_SUFFIXES:
        # missing or broken files are kept: they fail alone at run time and are reported in the run manifest
        return [(path.stem, str(path.resolve()))]
    raise AgrilandError(f"{arg}: not a folder, a .tif/.tiff scene, a STAC .json, a .txt list or a URL")


def resolve_inputs(args: list[str], asset: str | None = None) -> list[SceneInput]:
    """Every scene named by the arguments, in order, duplicates (same href) dropped, ids made unique."""
    if not args:
        raise AgrilandError("no inputs: give scene files, folders, a STAC ItemCollection .json or a .txt list")
    seen_hrefs: set[str] = set()
    used: dict[str, int] = {}
    scenes: list[SceneInput] = []
    for arg in args:
        for raw_id, href in _expand(arg, asset):
            if href in seen_hrefs:
                continue
            seen_hrefs.add(href)
            base = _safe_id(raw_id)
            used[base] = used.get(base, 0) + 1
            scene_id = base if used[base] == 1 else f"{base}-{used[base]}"
            scenes.append(SceneInput(scene_id, href))
    log.info("%d scene(s) to segment", len(scenes))
    return scenes
