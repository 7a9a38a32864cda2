"""A GeoTIFF or COG (local path or GDAL URL) as a windowed scene source: header checks, scene-wide scaling."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from contract.errors import AgrilandError
from contract.radiometry import (
    IMPLAUSIBLE_CLIPPED,
    AppliedRadiometry,
    Calibration,
    clipped_fraction,
    looks_like_reflectance,
)
from inference.pixels import MAX_STRETCH_SAMPLES, SCENE_STRETCH, PixelSpec, SampleCollector, WindowScaler, scene_valid
from inference.scenes.calibration import file_calibration
from inference.scenes.geo import (
    SceneLimits,
    band_positions,
    check_header,
    gdal_io_problems,
    has_dataset_mask,
    open_error,
    parse_bands,
)

log = logging.getLogger(__name__)

NO_PIXEL_LIMIT = SceneLimits(max_pixels=1 << 62)
STRIP_PIXELS = 4_000_000  # pixels per strip while gathering statistics


def is_url(path: str | Path) -> bool:
    """A GDAL-readable remote path: http(s)/s3/gs URLs or /vsi... virtual file systems."""
    text = str(path)
    return text.startswith(("/vsi", "http://", "https://", "s3://", "gs://"))


class GeoTiffSource:
    """Opens a scene, checks its header, fixes its scaling, then serves windows as uint8 RGB + valid mask.

    Use as a context manager. Memory never holds more than one window (or one statistics strip).
    """

    def __init__(
        self,
        path: str | Path,
        bands: str | tuple[int, ...] | None = None,
        pixels: PixelSpec = SCENE_STRETCH,
        limits: SceneLimits | None = None,
    ) -> None:
        self.path = str(path)
        self.name = Path(self.path).name
        self._bands = parse_bands(bands)
        self._pixels = pixels
        self._limits = limits or NO_PIXEL_LIMIT
        self._stack = ExitStack()

    def __enter__(self) -> GeoTiffSource:
        if not is_url(self.path) and not Path(self.path).is_file():
            raise AgrilandError(f"no such scene file: {self.path}")
        try:
            self._problems = self._stack.enter_context(gdal_io_problems())
            self.ds = self._stack.enter_context(rasterio.open(self.path))
            self.chosen = check_header(self.ds, self.name, self._bands, self._limits)
        except RasterioError as err:
            self._stack.close()
            raise open_error(self.name, err) from err
        except BaseException:
            self._stack.close()
            raise
        self.unique = tuple(dict.fromkeys(self.chosen))
        self.height, self.width = self.ds.height, self.ds.width
        self.crs, self.transform = self.ds.crs, self.ds.transform
        self.nodata = None if self.ds.nodata is None else float(self.ds.nodata)
        self.source_dtype = str(self.ds.dtypes[0])
        self.band_count = self.ds.count
        self._masked = has_dataset_mask(self.ds)
        self.radiometry = self._fit()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _raw(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """[h, w, B] of the unique bands and the valid mask of a window."""
        try:
            data = self.ds.read(indexes=list(self.unique), window=window)
            extra = self.ds.dataset_mask(window=window) if self._masked else None
        except RasterioError as err:
            raise AgrilandError(f"{self.name} is truncated or corrupt: {err}") from err
        if self._problems.messages:
            raise AgrilandError(f"{self.name} is truncated or corrupt: {self._problems.messages[0]}")
        hwc = np.moveaxis(data, 0, -1)
        return hwc, scene_valid(hwc, self.nodata, extra)

    def _strips(self) -> list[Window]:
        rows = max(1, STRIP_PIXELS // self.width)
        return [Window(0, y, self.width, min(rows, self.height - y)) for y in range(0, self.height, rows)]

    def _fit(self) -> WindowScaler:
        """Scene-wide scaling, and what it was: 8-bit as is; reflectance from what the file (or its catalogue)
        says, else the model's default, checked on a preview for saturation; or a percentile stretch."""
        index = band_positions(self.unique, self.chosen)
        dtype = np.dtype(self.source_dtype)
        chosen = self._pixels.scaling_for(dtype)
        if chosen is None:
            return WindowScaler(
                index,
                self._pixels,
                applied=AppliedRadiometry(
                    scaling="as is", source="8-bit pixels taken as they are (the model's own input type)"
                ),
            )
        if chosen == "percentile":
            asked = "requested (scaling=percentile)" if self._pixels.scaling else "the model manifest's radiometry"
            return self._stretch(index, asked)
        scaler, said = self._calibrated(index, dtype)
        hwc, valid = self._raw_preview(512)
        clipped = round(clipped_fraction(scaler.apply(hwc, valid), valid), 4)
        applied = scaler.applied.model_copy(update={"clipped_fraction": clipped})  # type: ignore[union-attr]
        if clipped <= IMPLAUSIBLE_CLIPPED:
            return replace(scaler, applied=applied)
        share = f"{100 * clipped:.0f} %"
        if not said and self._pixels.scaling is None:
            lo, hi = self._pixels.radiometry.percentiles
            warning = (
                f"{share} of the valid pixels saturate (white or black) when read as reflectance by the model's "
                f"default (DN / {self._pixels.radiometry.reflectance_scale:g}): they are not surface-reflectance "
                f"numbers (Landsat Level-1 DN, radiance, another product's scale?). Fell back to a {lo:g}-{hi:g} % "
                "percentile stretch. To choose it yourself pass scaling=percentile (--scaling percentile); if the "
                "file holds calibrated reflectance, record its scale/offset (gdal_edit.py -scale GAIN -offset BIAS, "
                "or a STAC item's raster:bands scale/offset)"
            )
            log.warning("%s: %s", self.name, warning)
            stretched = self._stretch(index, "fallback from the model's default reflectance reading (saturated)")
            return replace(
                stretched,
                applied=stretched.applied.model_copy(  # type: ignore[union-attr]
                    update={"warning": warning, "clipped_fraction": clipped}
                ),
            )
        warning = (
            f"{share} of the valid pixels saturate (white or black) under {applied.source}; the answer is "
            "probably wrong: check the file's calibration or pass scaling=percentile"
        )
        log.warning("%s: %s", self.name, warning)
        return replace(scaler, applied=applied.model_copy(update={"warning": warning}))

    def _calibrated(self, index: tuple[int, ...], dtype: np.dtype) -> tuple[WindowScaler, bool]:
        """Per-pixel reflectance scaling and whether anything (file, catalogue, float values) said how."""
        calibration = file_calibration(self.ds, self.name, self._pixels.calibration)
        if calibration is None and np.issubdtype(dtype, np.floating):
            hwc, valid = self._raw_preview(512)
            samples = hwc[valid].astype(np.float32)
            if not len(samples) or looks_like_reflectance(samples, np.ones(len(samples), bool)):
                calibration = Calibration(gain=(1.0,), bias=(0.0,), source="float pixels holding reflectance (0..~1)")
        said = calibration is not None
        calibration = calibration or Calibration.of(self._pixels.radiometry)
        gain, bias = calibration.for_bands(self.chosen)
        applied = AppliedRadiometry(
            scaling="reflectance",
            source=calibration.source,
            gain=gain.tolist(),
            bias=bias.tolist(),
            reflectance_white=self._pixels.radiometry.reflectance_white,
        )
        return WindowScaler(index, self._pixels, gain=gain, bias=bias, applied=applied), said

    def _stretch(self, index: tuple[int, ...], source: str) -> WindowScaler:
        """Percentile limits from at most MAX_STRETCH_SAMPLES valid pixels (one or two streamed passes)."""
        n_valid = None
        if self.width * self.height > MAX_STRETCH_SAMPLES:
            n_valid = sum(int(self._raw(w)[1].sum()) for w in self._strips())
        collector = SampleCollector(index, n_valid or 0)
        for window in self._strips():
            hwc, valid = self._raw(window)
            collector.add(hwc, valid)
        samples = collector.samples()
        scaler = WindowScaler.from_samples(index, self._pixels, samples)
        log.info(
            "%s: scaling from %d of %d valid pixels: low %s high %s",
            self.name,
            len(samples),
            collector.seen,
            scaler.low,
            scaler.high,
        )
        applied = AppliedRadiometry(
            scaling="percentile",
            source=source,
            percentiles=list(self._pixels.radiometry.percentiles),
            low=[] if scaler.low is None else [float(v) for v in scaler.low],
            high=[] if scaler.high is None else [float(v) for v in scaler.high],
        )
        return replace(scaler, applied=applied)

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [h, w, 3] (0 on nodata) and bool [h, w] valid of one window."""
        hwc, valid = self._raw(window)
        return self.radiometry.apply(hwc, valid), valid

    def _raw_preview(self, max_side: int) -> tuple[np.ndarray, np.ndarray]:
        """Decimated [h, w, B] of the unique bands and its valid mask (longest side at most `max_side`)."""
        # Every `step`-th pixel, read strip by strip at full resolution: GDAL's own decimated read (`out_shape`) of a
        # file without overviews re-reads its blocks and took 43 s for a 100 px preview of a 10,980 px Sentinel-2
        # tile (issue 22), the strips 7 s for 1,000 px.
        step = max(1, -(-max(self.height, self.width) // max_side))
        rows = max(step, (1024 // step) * step)  # a strip height that keeps the row phase
        data_parts, mask_parts = [], []
        try:
            for y in range(0, self.height, rows):
                window = Window(0, y, self.width, min(rows, self.height - y))
                data_parts.append(self.ds.read(indexes=list(self.unique), window=window)[:, ::step, ::step])
                if self._masked:
                    mask_parts.append(self.ds.dataset_mask(window=window)[::step, ::step])
        except RasterioError as err:
            raise AgrilandError(f"{self.name} is truncated or corrupt: {err}") from err
        hwc = np.moveaxis(np.concatenate(data_parts, axis=1), 0, -1)
        extra = np.concatenate(mask_parts, axis=0) if self._masked else None
        return hwc, scene_valid(hwc, self.nodata, extra)

    def preview(self, max_side: int) -> tuple[np.ndarray, np.ndarray]:
        """A decimated uint8 RGB + valid of the whole scene (longest side at most `max_side`)."""
        hwc, valid = self._raw_preview(max_side)
        return self.radiometry.apply(hwc, valid), valid
