"""What /cluster and /segment compute around the model: decoding, fitting, and per-tile results."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from contract.manifest import Manifest
from inference.field_instances import crop_vetoed
from inference.fields import FieldOptions, Fields, delineate
from inference.scenes.geo import parse_bands
from inference.scenes.ground_resolution import TILE_GSD_TOLERANCE, at_model_gsd, resample_rgb
from inference.tiles.decoding import DecodeLimits, ImageDecodeError, PixelSpec, decode_image
from inference.tiles.fitting import FitInfo, FitMode, fit_tile, restore_probability
from serving.http_input import TileUpload
from serving.mask_encoding import instances_png_base64, mask_png_base64, rle_encode
from serving.schemas import (
    ApiError,
    ClusterOptions,
    ClusterResult,
    ClusterScore,
    PixelOptions,
    RleMask,
    SegmentOptions,
    SegmentResult,
    TileField,
)


@dataclass
class PreparedTiles:
    """Model-size uint8 tiles [N, T, T, 3] and how each input was fitted."""

    batch: np.ndarray
    fits: list[FitInfo]
    names: list[str | None]
    sources: list[np.ndarray] | None = None  # the decoded uint8 RGB at the input's own size (field delineation)


def pixel_spec(options: PixelOptions, manifest: Manifest) -> PixelSpec:
    """The manifest's radiometry contract with the request's band and scaling choices."""
    return PixelSpec(manifest.radiometry, parse_bands(options.bands), options.scaling)


def to_model_gsd(image: np.ndarray, gsd: float | None, model_gsd: float, label: str) -> np.ndarray:
    """Resample a tile taken at `gsd` metres per pixel to the model's ground resolution (no-op without a gsd)."""
    if at_model_gsd(gsd, model_gsd, TILE_GSD_TOLERANCE):
        return image
    assert gsd is not None
    factor = gsd / model_gsd
    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    if size[0] * size[1] > 64 * 1024 * 1024:
        raise ApiError(
            413,
            f"{label}: {width}x{height} at {gsd} m/px is {size[0]}x{size[1]} at the model's "
            f"{model_gsd} m/px: too large for a tile; use the scene segmentation",
        )
    return resample_rgb(image, size)


def prepare_tiles(
    uploads: list[TileUpload],
    tile_size: int,
    fit: FitMode,
    limits: DecodeLimits,
    max_side: int,
    pixels: PixelSpec | None = None,
    gsd: float | None = None,
) -> PreparedTiles:
    """Decode every upload (limits checked from headers first), bring it to the model's ground resolution when
    the request gives the tile's `gsd`, and fit it to the model size."""
    pixels = pixels or PixelSpec()
    tiles, fits, sources = [], [], []
    for upload in uploads:
        try:
            image = decode_image(upload.data, limits, upload.label, pixels)
        except ImageDecodeError as err:
            raise ApiError(err.status, str(err)) from err
        source = image.shape[:2]
        sources.append(image)
        image = to_model_gsd(image, gsd, pixels.radiometry.gsd_m, upload.label)
        height, width = image.shape[:2]
        if height > max_side or width > max_side:
            raise ApiError(
                413,
                f"{upload.label}: {width}x{height} is larger than this endpoint accepts ({max_side}x{max_side}, "
                f"{max_side // tile_size} model tiles of {tile_size}); use the scene segmentation for large images",
            )
        if fit == "pad" and (height > tile_size or width > tile_size):
            raise ApiError(
                400, f"{upload.label}: {width}x{height} cannot be padded to the model size {tile_size}; use fit=resize"
            )
        tile, info = fit_tile(image, tile_size, fit)
        if image.shape[:2] != source:
            info = replace(info, source=(int(source[0]), int(source[1])))
        tiles.append(tile)
        fits.append(info)
    return PreparedTiles(np.stack(tiles), fits, [u.name for u in uploads], sources)


def segment_results(
    probabilities: np.ndarray,
    prepared: PreparedTiles,
    options: SegmentOptions,
    manifest: Manifest,
    encodings: frozenset[str] | None = None,
    model_fields: list[Fields] | None = None,
) -> tuple[list[SegmentResult], list[np.ndarray]]:
    """Per-tile results plus the 0/1 masks; only the mask encodings asked for (`png`, `rle`) are computed.

    `encodings` defaults to the request's `mask_encoding`; the image/png answer passes an empty set and encodes
    its one PNG itself, so no mask is ever encoded twice.
    """
    if encodings is None:
        encodings = frozenset({"png", "rle"}) if options.mask_encoding == "both" else frozenset({options.mask_encoding})
    threshold = manifest.cut(options.mask_mode, options.threshold)
    gsd = options.gsd or manifest.radiometry.gsd_m
    field_options = FieldOptions.parse(options.mask_mode)
    sources: list[np.ndarray | None] = list(prepared.sources or []) or [None] * len(prepared.fits)
    results, masks = [], []
    for k, (probability, info, name, source) in enumerate(zip(probabilities, prepared.fits, prepared.names, sources)):
        restored = restore_probability(probability, info)
        tile_options = field_options
        if model_fields is not None and model_fields[k].mask.shape == restored.shape:
            # the field model's fields (interiors split by its boundaries), those the U-Net calls cropland
            veto = manifest.cut("fields") if options.crop_veto is None else options.crop_veto
            found = crop_vetoed(model_fields[k], restored, veto)
        else:
            if source is None or source.shape[:2] != restored.shape:
                source = np.zeros((*restored.shape, 3), np.uint8)  # no pixels kept: the plain cut
                tile_options = FieldOptions(mode="threshold")
            # all-zero pixels are nodata (as in scenes) for fields; the plain cut keeps its old meaning
            valid = np.asarray(source.any(axis=-1)) if tile_options.mode == "fields" else np.ones(restored.shape, bool)
            found = delineate(source, restored, valid, threshold, gsd, tile_options)
        mask = found.mask
        masks.append(mask)
        height, width = info.output_size
        fields: list[TileField] = []
        if options.include_fields:
            pixels = np.bincount(found.labels.ravel(), minlength=len(found.confidence) + 1)[1:]
            fields = [
                TileField(
                    id=k + 1,
                    pixels=int(n),
                    area_ha=round(float(n) * gsd * gsd / 10_000, 6),
                    confidence=round(float(c), 4),
                )
                for k, (n, c) in enumerate(zip(pixels, found.confidence))
            ]
        results.append(
            SegmentResult(
                name=name,
                width=width,
                height=height,
                threshold=threshold,
                arable_fraction=float(np.count_nonzero(mask)) / mask.size,
                mean_probability=float(restored.mean()) if options.include_probability else None,
                fit=info.mode,
                mask_png_base64=mask_png_base64(mask) if "png" in encodings else None,
                mask_rle=RleMask(size=(height, width), counts=rle_encode(mask)) if "rle" in encodings else None,
                n_fields=len(found.confidence),
                instances_png_base64=instances_png_base64(found.labels) if options.include_fields else None,
                fields=fields,
            )
        )
    return results, masks


def cluster_results(
    q: np.ndarray, embedding: np.ndarray, prepared: PreparedTiles, options: ClusterOptions, manifest: Manifest
) -> list[ClusterResult]:
    """Per-tile cluster, confidence, top-k and the manifest's name / arable verdict."""
    k = min(options.top_k, q.shape[1])
    results = []
    for row, emb, info, name in zip(q, embedding, prepared.fits, prepared.names):
        order = np.argsort(-row, kind="stable")[:k]
        best = int(order[0])
        results.append(
            ClusterResult(
                name=name,
                width=info.output_size[1],
                height=info.output_size[0],
                cluster=best,
                confidence=float(row[best]),
                cluster_name=manifest.cluster_name(best),
                land_cover=manifest.land_cover(best),
                cropland=manifest.is_cropland_cluster(best),
                is_arable=manifest.is_arable_cluster(best),
                top_k=[
                    ClusterScore(cluster=int(c), probability=float(row[c]), name=manifest.cluster_name(int(c)))
                    for c in order
                ],
                embedding=[float(v) for v in emb] if options.include_embedding else None,
            )
        )
    return results
