"""One scene request: defaults from the manifest, the options the engine runs, the answer key, refusals."""

from __future__ import annotations

from dataclasses import replace

import pytest

from contract.manifest import Manifest, TensorSpec
from contract.radiometry import Radiometry
from inference.pixels import PixelSpec
from inference.scenes.request import OptionError, SceneRequest
from inference.scenes.windowed import DEFAULT_BLOCK, DEFAULT_SIEVE_PX, WindowParams


def unet(tile: int = 64) -> Manifest:
    return Manifest(
        name="unet",
        task="segmentation",
        version="t",
        variant="fp32",
        tile_size=tile,
        radiometry=Radiometry(),
        input=TensorSpec(name="image", dtype="uint8", shape=[None, tile, tile, 3]),
        outputs=[TensorSpec(name="mask", dtype="float32", shape=[None, tile, tile, 1])],
        threshold=0.5,
        onnx_sha256="0" * 64,
    )


def test_defaults_come_from_the_manifest_and_the_engine() -> None:
    manifest = unet()
    scene = SceneRequest().resolve(manifest)
    assert scene.params == WindowParams(64, 8, manifest.field_threshold, 8, DEFAULT_BLOCK, DEFAULT_SIEVE_PX)
    assert scene.pixels == PixelSpec(manifest.radiometry)
    assert scene.fields.mode == "fields" and scene.field_model is None and scene.quality == "fast"
    threshold = SceneRequest(mask_mode="threshold").resolve(manifest)
    assert threshold.params.threshold == manifest.threshold and threshold.fields.mode == "threshold"


def test_request_options_reach_the_engine() -> None:
    request = SceneRequest(
        mask_mode="threshold",
        quality="best",
        threshold=0.3,
        overlap=4,
        sieve_px=0,
        bands="3,2,1",
        scaling="percentile",
        simplify=2.0,
        min_area_ha=0.5,
    )
    scene = request.resolve(unet(), batch_size=4, block_size=512)
    assert scene.params == WindowParams(64, 4, 0.3, 4, 512, 0)
    assert (scene.bands, scene.pixels.scaling, scene.simplify_px, scene.min_area_ha) == (
        "3,2,1",
        "percentile",
        2.0,
        0.5,
    )
    assert scene.quality == "best"


def test_answer_key_names_every_answer_changing_option() -> None:
    manifest = unet()
    key = SceneRequest().answer_key(manifest)
    assert key == {
        "model_sha256": "0" * 64,
        "variant": "fp32",
        "threshold": manifest.field_threshold,
        "overlap": 8,
        "mask_mode": "fields",
        "quality": "fast",
        "bands": None,
        "scaling": None,
        "sieve_px": DEFAULT_SIEVE_PX,
        "simplify": 1.0,
        "min_area_ha": 0.0,
    }
    assert SceneRequest(quality="best").answer_key(manifest) != key
    # speed settings and a scene's own calibration are not part of the request's key
    assert replace(SceneRequest(), calibration=None).answer_key(manifest) == key


@pytest.mark.parametrize(
    "options, message",
    [
        ({"min_area_ha": -1.0}, "minimum area"),
        ({"mask_mode": "blobs"}, "mask mode"),
        ({"quality": "perfect"}, "quality"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        SceneRequest(**options)


def test_overlap_of_half_a_tile_is_refused() -> None:
    with pytest.raises(OptionError, match="smaller than half the model tile"):
        SceneRequest(overlap=32).resolve(unet(64))
