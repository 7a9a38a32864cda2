"""The artifact layout shared by export and inference: models/<name>/<variant>/ with model.onnx checked by sha256."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from contract.errors import AgrilandError
from contract.manifest import Manifest, read_manifest

MODEL_FILE = "model.onnx"
VARIANTS: tuple[str, ...] = ("fp32", "fp16", "int8")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def artifact_folder(models_dir: Path | str, name: str, variant: str = "fp32") -> Path:
    """`models_dir/name/variant`, refusing unknown variants with a clear message."""
    if variant not in VARIANTS:
        raise AgrilandError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return Path(models_dir) / name / variant


def verify_artifact(folder: Path | str) -> Manifest:
    """Validate the manifest and check that model.onnx exists and matches its sha256."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    model_path = folder / MODEL_FILE
    if not model_path.is_file():
        raise AgrilandError(f"no {MODEL_FILE} in {folder}")
    actual = sha256_file(model_path)
    if actual != manifest.onnx_sha256:
        raise AgrilandError(
            f"{model_path} does not match its manifest (sha256 {actual[:12]}... != {manifest.onnx_sha256[:12]}...): "
            "the file was changed or corrupted after export; export it again"
        )
    return manifest


def copy_artifact(source: Path | str, target: Path | str) -> Manifest:
    """Copy a verified artifact folder (model.onnx + manifest.json) to `target`, replacing what is there only once
    the copy verifies too (staged beside it, then renamed)."""
    from contract.atomic import replace_dir

    source, target = Path(source), Path(target)
    manifest = verify_artifact(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.copy-", dir=target.parent))
    try:
        for item in (MODEL_FILE, "manifest.json"):
            shutil.copy2(source / item, staging / item)
        verify_artifact(staging)
        replace_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest
