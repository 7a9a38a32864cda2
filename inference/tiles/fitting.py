"""Fitting odd-size tiles to the model size (pad or resize) and mapping the model's output back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from contract.errors import AgrilandError

FitMode = Literal["auto", "pad", "resize"]


@dataclass(frozen=True)
class FitInfo:
    """How a tile was brought to the model size, so the output can be mapped back."""

    height: int
    width: int
    mode: Literal["exact", "pad", "resize"]
    source: tuple[int, int] | None = None  # (height, width) before a ground-resolution resampling, if any

    @property
    def output_size(self) -> tuple[int, int]:
        """(height, width) of the answer: the tile as the client sent it."""
        return self.source or (self.height, self.width)


def fit_tile(image: np.ndarray, tile_size: int, mode: FitMode = "auto") -> tuple[np.ndarray, FitInfo]:
    """uint8 [H, W, 3] -> uint8 [T, T, 3]. `auto` pads tiles that fit and resizes larger ones.

    Padding is zeros (nodata) at the bottom and right, so the top-left HxW maps back unchanged.
    """
    height, width = int(image.shape[0]), int(image.shape[1])
    if (height, width) == (tile_size, tile_size):
        return image, FitInfo(height, width, "exact")
    fits = height <= tile_size and width <= tile_size
    if mode == "pad" and not fits:
        raise AgrilandError(f"a {width}x{height} tile cannot be padded to the model size {tile_size}; use fit=resize")
    if mode == "pad" or (mode == "auto" and fits):
        out = np.zeros((tile_size, tile_size, 3), dtype=np.uint8)
        out[:height, :width] = image
        return out, FitInfo(height, width, "pad")
    resized = Image.fromarray(image).resize((tile_size, tile_size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8), FitInfo(height, width, "resize")


def restore_probability(probability: np.ndarray, info: FitInfo) -> np.ndarray:
    """float32 [T, T] model output -> float32 [H, W] on the input tile's pixels."""
    if info.mode == "pad":
        probability = probability[: info.height, : info.width]
    elif info.mode == "resize":
        probability = _resize(probability, info.height, info.width)
    if info.source is not None and info.source != probability.shape:
        probability = _resize(probability, *info.source)
    return probability


def _resize(probability: np.ndarray, height: int, width: int) -> np.ndarray:
    image = Image.fromarray(probability.astype(np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)
