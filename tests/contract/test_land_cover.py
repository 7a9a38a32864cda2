"""Arable vs permanent crops: FAO arable land is annual crops; permanent crops are cropland, not arable."""

from __future__ import annotations

import pytest

from contract.manifest import Manifest, TensorSpec, land_cover_of
from contract.radiometry import Radiometry

NAMES = {
    "0": "AnnualCrop",
    "1": "PermanentCrop",
    "2": "Pasture",
    "3": "Forest",
    "4": "SeaLake",
    "5": "arable",
    "6": "Residential",
}


def manifest(**extra: object) -> Manifest:
    return Manifest(
        name="dec",
        task="clustering",
        version="t",
        tile_size=64,
        radiometry=Radiometry(),
        input=TensorSpec(name="image", dtype="uint8", shape=[None, 64, 64, 3]),
        outputs=[TensorSpec(name="q", dtype="float32", shape=[None, 7])],
        cluster_names=NAMES,
        onnx_sha256="0" * 64,
        **extra,
    )


@pytest.mark.parametrize(
    "cluster, land_cover, cropland, arable",
    [
        (0, "annual_crop", True, True),
        (1, "permanent_crop", True, False),
        (2, "pasture", False, False),
        (3, "forest", False, False),
        (4, "water", False, False),
        (5, "annual_crop", True, True),
        (6, "built_up", False, False),
    ],
)
def test_cluster_classes(cluster: int, land_cover: str, cropland: bool, arable: bool) -> None:
    m = manifest()
    assert (m.land_cover(cluster), m.is_cropland_cluster(cluster), m.is_arable_cluster(cluster)) == (
        land_cover,
        cropland,
        arable,
    )


def test_an_older_manifest_listing_permanent_crops_as_arable_is_read_the_fao_way() -> None:
    old = manifest(arable_classes=["arable", "cropland", "AnnualCrop", "PermanentCrop"])
    assert not old.is_arable_cluster(1) and old.is_cropland_cluster(1) and old.is_arable_cluster(0)
    again = Manifest.model_validate_json(old.model_dump_json())
    assert again.arable_classes == old.arable_classes and not again.is_arable_cluster(1)


def test_an_explicit_choice_is_kept() -> None:
    chosen = manifest(arable_classes=["AnnualCrop", "PermanentCrop"], cropland_classes=["AnnualCrop", "PermanentCrop"])
    assert chosen.is_arable_cluster(1)  # someone decided so, on purpose: the manifest says it
    assert land_cover_of("Herbaceous Vegetation") == "herbaceous_vegetation" and land_cover_of(None) is None
