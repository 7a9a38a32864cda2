"""The worker's engine: both models loaded from a models folder, warmed up before it says ready, refusals kept."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from serving.config import ServeSettings
from serving.engine import Engine


def test_both_models_are_loaded_and_warmed_up_before_ready(exported_models: Path) -> None:
    engine = Engine(
        ServeSettings.from_env(
            {"AGRILAND_MODELS_DIR": str(exported_models), "AGRILAND_PROVIDERS": "cpu", "AGRILAND_MAX_BATCH_SIZE": "4"}
        )
    )
    try:
        assert engine.ready and engine.not_ready_reason() is None
        assert set(engine.warmed) == {"dec", "unet"}
        assert all(1 in sizes and all(s > 0 for s in sizes.values()) for sizes in engine.warmed.values())
        tile = engine.tile_size("unet")

        async def one_mask() -> np.ndarray:
            return await engine.predict_masks(np.zeros((2, tile, tile, 3), np.uint8))

        assert asyncio.run(one_mask()).shape[0] == 2
    finally:
        engine.close()


def test_a_missing_models_folder_leaves_the_engine_not_ready(tmp_path: Path) -> None:
    engine = Engine(ServeSettings.from_env({"AGRILAND_MODELS_DIR": str(tmp_path / "none")}))
    try:
        assert not engine.ready and engine.warmed == {}
        assert "no manifest.json" in (engine.not_ready_reason() or "")
    finally:
        engine.close()
