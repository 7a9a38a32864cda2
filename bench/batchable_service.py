"""The U-Net behind BentoML's own adaptive batching (`batchable=True`): the other side of bench/batching_compare.py."""

from __future__ import annotations

import os
from pathlib import Path

import bentoml
import numpy as np

from contract.artifacts import artifact_folder
from inference.models.cpus import intra_op_threads
from inference.models.onnx_model import OnnxModel
from inference.tiles.decoding import decode_image
from inference.tiles.fitting import fit_tile

MAX_LATENCY_MS = int(os.environ.get("BENCH_MAX_LATENCY_MS", "60000"))


@bentoml.service(name="agriland_batchable", workers=1, traffic={"timeout": 120})
class BatchableUnet:
    """POST /segment with one PNG per request; BentoML merges concurrent requests into one model run."""

    def __init__(self) -> None:
        folder = artifact_folder(Path(os.environ.get("AGRILAND_MODELS_DIR", "models")), "unet", "fp32")
        self.model = OnnxModel.load(folder, "cpu", intra_op_threads(1))

    @bentoml.api(batchable=True, max_batch_size=16, max_latency_ms=MAX_LATENCY_MS)
    def segment(self, file: list[Path]) -> list[float]:
        """Arable fraction of each tile (threshold 0.5)."""
        tiles = [fit_tile(decode_image(path.read_bytes()), self.model.tile_size, "auto")[0] for path in file]
        masks = self.model.run(np.stack(tiles))["mask"]
        return [float((mask >= 0.5).mean()) for mask in masks]
