"""The tiles an export checks and calibrates on: a run's recorded training data (or its synthetic set), or a folder."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from contract.errors import AgrilandError
from contract.run_summary import RunData

log = logging.getLogger(__name__)


def load_reference_tiles(source: str | Path | RunData, tile_size: int, origin: str) -> np.ndarray:
    """uint8 tiles from a data source readable by training.data.load_tiles, or a run's seeded synthetic set."""
    from training.data import load_tiles

    if isinstance(source, RunData) and source.synthetic is not None:  # regenerate the run's synthetic tiles
        from training.synthetic import make_tiles

        log.info("regenerating the run's synthetic training tiles (%s)", source.source)
        return make_tiles(source.synthetic.n_tiles, tile_size, seed=source.synthetic.seed).images
    text = source.source if isinstance(source, RunData) else str(source)
    try:
        images = load_tiles(Path(text), tile_size).images
    except AgrilandError as err:
        raise AgrilandError(
            f"cannot read parity/calibration tiles from {origin} {text!r}: {err}. Pass "
            "--calibration-data PATH (a folder or pairs CSV of real training tiles)"
        ) from err
    if len(images) == 0:
        raise AgrilandError(f"{origin} {text!r} holds no tiles; pass --calibration-data PATH")
    return np.asarray(images, dtype=np.uint8)


def tile_sources(
    run_dir: Path, summary: dict, tile: int, calibration_source: Path | None, parity_source: Path | None
) -> tuple[np.ndarray, str, np.ndarray, str]:
    """(parity images, their source, calibration images, their source); both may be the same array."""
    data = RunData.of_summary(summary)
    recorded = data.source
    run_origin = f"{run_dir}/training_summary.json data.source"
    parity_images: np.ndarray | None = None
    parity_from = ""
    if parity_source is not None:
        parity_images, parity_from = load_reference_tiles(parity_source, tile, "--parity-data"), str(parity_source)
    elif recorded:
        try:
            parity_images, parity_from = load_reference_tiles(data, tile, run_origin), recorded
        except AgrilandError as err:
            if calibration_source is None:
                raise
            log.warning("%s; the parity tiles come from --calibration-data %s instead", err, calibration_source)
    elif calibration_source is None:
        raise AgrilandError(f"{run_origin} is missing: pass --calibration-data PATH (real training tiles)")
    if calibration_source is None:
        return parity_images, parity_from, parity_images, parity_from  # type: ignore[return-value]
    calibration = load_reference_tiles(calibration_source, tile, "--calibration-data")
    if parity_images is None:
        return calibration, str(calibration_source), calibration, str(calibration_source)
    return parity_images, parity_from, calibration, str(calibration_source)
