"""POST /segment and /cluster: tiles decoded off the loop when large, through the micro-batchers, answered as JSON or PNG."""

from __future__ import annotations

import numpy as np
from starlette.requests import Request
from starlette.responses import Response

from contract.errors import AgrilandError
from inference.field_tiles import field_tiles, fields_of_tiles
from inference.fields import Fields
from inference.tiles.decoding import DecodeLimits, decode_cost
from serving.config import ServeSettings
from serving.endpoints import PreparedTiles, cluster_results, pixel_spec, prepare_tiles, segment_results
from serving.engine import Engine
from serving.http_input import TileUpload, image_tiles
from serving.mask_encoding import mask_png
from serving.offload import run_sized
from serving.request_body import accepted
from serving.schemas import ApiError, ClusterOptions, ClusterResponse, PixelOptions, SegmentOptions, SegmentResponse


def _wants_png(request: Request) -> bool:
    flag = request.query_params.get("format", "json").lower()
    if flag not in {"json", "png"}:
        raise ApiError(400, f"query parameter format={flag!r}: use json or png")
    return flag == "png" or accepted(request) == "image/png"


def tile_limits(settings: ServeSettings, tile_size: int) -> DecodeLimits:
    """Header-checked bounds of /segment and /cluster uploads: at most `max_side_factor` model tiles a side."""
    max_side = min(tile_size * settings.max_side_factor, 16384)
    return DecodeLimits(
        max_bytes=settings.max_upload_bytes,
        max_pixels=min(settings.max_pixels, max_side * max_side),
        max_side=max_side,
        hint=f"; that is larger than this endpoint accepts ({max_side // tile_size} model tiles of {tile_size}), "
        "send larger images to /segment_scene",
    )


def _decode_cost(uploads: list[TileUpload], options: PixelOptions) -> int:
    """Bytes the uploads decode to, from their headers; a ground-resolution resampling is never cheap."""
    return (1 << 40) if options.gsd is not None else sum(decode_cost(upload.data) for upload in uploads)


async def segment_handler(request: Request, engine: Engine, settings: ServeSettings) -> Response:
    """POST /segment: the arable mask of one or more tiles (JSON, or a PNG mask with Accept: image/png)."""
    want_png = _wants_png(request)
    uploads, options = await image_tiles(request, SegmentOptions, settings.max_upload_bytes, settings.max_tiles)
    if want_png and len(uploads) != 1:
        raise ApiError(400, f"a mask image (format=png / Accept: image/png) needs exactly one tile, got {len(uploads)}")
    model = engine.models["unet"]
    limits = tile_limits(settings, model.tile_size)
    prepared = await run_sized(
        _decode_cost(uploads, options),
        prepare_tiles,
        uploads,
        model.tile_size,
        options.fit,
        limits,
        limits.max_side,
        pixel_spec(options, model.manifest),
        options.gsd,
    )
    probabilities = await engine.predict_masks(prepared.batch)
    model_fields = await _model_fields(engine, prepared, options, model.manifest.radiometry.gsd_m)
    encodings: frozenset[str] | None = (
        frozenset() if want_png else None
    )  # the PNG answer encodes its one mask below, once
    # field delineation (watershed, CIELAB) takes ~6 ms per 64 px tile: never on the event loop; the plain cut
    # and the encodings of a few tiles take well under a millisecond: inline
    cost = (1 << 40) if options.mask_mode == "fields" else probabilities.nbytes // 4
    results, masks = await run_sized(
        cost,
        segment_results,
        probabilities,
        prepared,
        options,
        model.manifest,
        encodings,
        model_fields,
    )
    if want_png:
        headers = {"X-Arable-Fraction": f"{results[0].arable_fraction:.6f}", "X-Threshold": str(results[0].threshold)}
        return Response(mask_png(masks[0]), media_type="image/png", headers=headers)
    name = "unet" if model_fields is None else "unet+fields"
    version = (
        model.manifest.version
        if model_fields is None
        else (f"{model.manifest.version}+{engine.models['fields'].manifest.version}")
    )
    body = SegmentResponse(model=name, model_version=version, results=results)
    return Response(body.model_dump_json(exclude_none=False, exclude=_unasked(options)), media_type="application/json")


async def _model_fields(
    engine: Engine, prepared: PreparedTiles, options: SegmentOptions, default_gsd: float
) -> list[Fields] | None:
    """The field model's fields of every tile (at the tile's own size) when it answers this mask mode, else None.

    The arable probability (`mean_probability`) stays the U-Net's; the mask and the fields are the field model's."""
    field_model = engine.field_model_for(options.mask_mode)
    if field_model is None or not prepared.sources:
        return None
    spec = field_model.manifest.field_model
    assert spec is not None  # a loaded field model has its spec (Engine._check_contract)
    gsd = options.gsd or default_gsd
    try:
        tiles = await run_sized(1 << 40, field_tiles, prepared.sources, gsd, spec, field_model.tile_size)
    except AgrilandError as err:  # an image too large at the field model's working resolution
        raise ApiError(413, str(err)) from err
    planes = await engine.predict_field_planes(tiles.batch)
    valids = [
        np.asarray(source.any(axis=-1)) for source in prepared.sources
    ]  # all-zero pixels are nodata, as in scenes
    answered = await run_sized(1 << 40, fields_of_tiles, planes, tiles, spec, valids)
    return [found for found, _ in answered]


def _unasked(options: SegmentOptions) -> dict | None:
    """The mask encoding a request did not ask for is left out of the JSON (not sent as null)."""
    if options.mask_encoding == "both":
        return None
    dropped = "mask_rle" if options.mask_encoding == "png" else "mask_png_base64"
    return {"results": {"__all__": {dropped}}}


async def cluster_handler(request: Request, engine: Engine, settings: ServeSettings) -> Response:
    """POST /cluster: the DEC cluster, its name and arable flag of one or more tiles."""
    uploads, options = await image_tiles(request, ClusterOptions, settings.max_upload_bytes, settings.max_tiles)
    model = engine.models["dec"]
    limits = tile_limits(settings, model.tile_size)
    prepared = await run_sized(
        _decode_cost(uploads, options),
        prepare_tiles,
        uploads,
        model.tile_size,
        options.fit,
        limits,
        limits.max_side,
        pixel_spec(options, model.manifest),
        options.gsd,
    )
    q, embedding = await engine.predict_clusters(prepared.batch)
    results = cluster_results(q, embedding, prepared, options, model.manifest)
    n_clusters = model.manifest.n_clusters or int(q.shape[1])
    body = ClusterResponse(model="dec", model_version=model.manifest.version, n_clusters=n_clusters, results=results)
    # `embedding` only when asked: a null list is what BentoML's clients cannot decode
    exclude = None if options.include_embedding else {"results": {"__all__": {"embedding"}}}
    return Response(body.model_dump_json(exclude=exclude), media_type="application/json")
