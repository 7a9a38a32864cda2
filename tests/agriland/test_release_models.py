"""The release models that ship with the package: valid manifests, checksums that match, small enough to track, and
installed by the quickstart into a models folder (once; a second install finds them current)."""

from __future__ import annotations

from pathlib import Path

from agriland.quickstart import RELEASE_DIR, install_release_models
from contract.artifacts import verify_artifact

MAX_TRACKED_BYTES = 60 * 1024 * 1024


def test_shipped_release_models_validate_and_are_small() -> None:
    folders = sorted(p.parent for p in RELEASE_DIR.glob("*/*/manifest.json"))
    assert folders, f"no release model ships in {RELEASE_DIR}"
    for folder in folders:
        manifest = verify_artifact(folder)  # the manifest validates and model.onnx matches its sha256
        assert manifest.name == folder.parent.name and manifest.variant == folder.name
    assert sum(p.stat().st_size for p in RELEASE_DIR.rglob("*") if p.is_file()) <= MAX_TRACKED_BYTES
    fields = verify_artifact(RELEASE_DIR / "fields" / "fp32")
    assert fields.task == "fields" and fields.field_model is not None
    dec, unet = verify_artifact(RELEASE_DIR / "dec" / "fp32"), verify_artifact(RELEASE_DIR / "unet" / "fp32")
    assert dec.task == "clustering" and dec.n_clusters and len(dec.cluster_names) == dec.n_clusters
    assert unet.task == "segmentation"
    for manifest in (dec, unet, fields):  # each card names the release it describes
        card = (RELEASE_DIR / manifest.name / "MODEL_CARD.md").read_text()
        assert manifest.version in card and "Known limits" in card


def test_quickstart_installs_the_release_once(tmp_path: Path) -> None:
    models = tmp_path / "models"
    assert "fields" in install_release_models(models)
    shipped = verify_artifact(RELEASE_DIR / "fields" / "fp32")
    assert verify_artifact(models / "fields" / "fp32").version == shipped.version
    assert install_release_models(models) == []  # already current
    (models / "fields" / "fp32" / "model.onnx").write_bytes(b"corrupt")
    assert install_release_models(models) == ["fields"]  # a broken copy is replaced
    assert verify_artifact(models / "fields" / "fp32").onnx_sha256 == shipped.onnx_sha256
    # a user's own field model (another version) is kept
    manifest = models / "fields" / "fp32" / "manifest.json"
    manifest.write_text(manifest.read_text().replace(shipped.version, "20990101-own"))
    assert install_release_models(models) == []
    assert verify_artifact(models / "fields" / "fp32").version == "20990101-own"
