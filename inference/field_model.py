"""The field model at inference: its softmax to the two planes the scene engine blends (field extent, boundary),
and the windowed engine's mask step that turns them into fields (inference/field_instances.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from contract.errors import AgrilandError
from contract.manifest import FieldModelSpec, Manifest
from inference.field_instances import InstanceOptions, instances

EXTENT, BOUNDARY = 0, 1  # planes of what `field_planes` returns


def is_field_model(manifest: Manifest) -> bool:
    return manifest.task == "fields"


def field_planes(softmax: np.ndarray, classes: list[str]) -> np.ndarray:
    """float32 [N, T, T, 3] class probabilities -> [N, T, T, 2]: field extent (1 - background) and boundary."""
    if softmax.ndim != 4 or softmax.shape[-1] != len(classes):
        raise AgrilandError(f"the field model returned shape {softmax.shape}; expected [N, T, T, {len(classes)}]")
    background = softmax[..., classes.index("background")]
    boundary = softmax[..., classes.index("boundary")]
    return np.stack([1.0 - background, boundary], axis=-1).astype(np.float32, copy=False)


def field_predict(
    run: Callable[[np.ndarray], dict[str, np.ndarray]], spec: FieldModelSpec
) -> Callable[[np.ndarray], np.ndarray]:
    """The scene engine's Predict for a field model: uint8 NHWC -> float32 [N, T, T, 2] (extent, boundary)."""

    def predict(batch: np.ndarray) -> np.ndarray:
        return field_planes(np.asarray(run(batch)["fields"], np.float32), spec.classes)

    return predict


def instance_options(spec: FieldModelSpec) -> InstanceOptions:
    return InstanceOptions(
        extent_cut=spec.extent_cut,
        interior_cut=spec.interior_cut,
        vote_cut=spec.vote_cut,
        min_field_ha=spec.min_field_ha,
    )


def field_model_refiner(
    spec: FieldModelSpec, gsd_m: float
) -> Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    """The windowed engine's mask step for a field model: blended (extent, boundary) planes -> the fields mask."""
    options = instance_options(spec)

    def refine(rgb: np.ndarray, planes: np.ndarray, valid: np.ndarray) -> np.ndarray:
        if planes.ndim != 3:  # no tile of this block's extent held data: the model answered nothing here
            return np.zeros(valid.shape, np.uint8)
        return instances(planes[..., EXTENT], planes[..., BOUNDARY], valid, gsd_m, options).mask

    return refine
