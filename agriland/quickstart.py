"""`agriland quickstart` (what `make run` calls): serve the release models that ship with the package, no training.

The release (agriland/release/: DEC, the arable U-Net and the field model, each with a model card) is copied into
the models folder wherever that folder has no valid model of the name, so a user's own models are served as they
are (`--models DIR` or AGRILAND_MODELS). `--rebuild` is the demonstration path: it runs the workflow end to end on
the shipped EuroSAT sample (DEC, cluster names, mosaics, U-Net, export) in minutes of CPU time and serves what it built.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agriland.profiles import PROFILES, SAMPLE_DIR, QuickstartProfile
from contract.errors import AgrilandError

log = logging.getLogger(__name__)


def _models_ready(models_dir: Path) -> bool:
    """True when both fp32 artifacts exist and match their manifests."""
    from contract.artifacts import verify_artifact

    try:
        for name in ("dec", "unet"):
            verify_artifact(models_dir / name / "fp32")
    except AgrilandError:
        return False
    return True


RELEASE_DIR = Path(__file__).resolve().parent / "release"  # trained models that ship with the package


def install_release_models(models_dir: Path, release_dir: Path = RELEASE_DIR) -> list[str]:
    """Copy the shipped release models (e.g. the field model, trained on real field polygons) into `models_dir`
    where it has no valid model of that name and variant (a user's own model is never replaced); each is verified
    (sha256) before and after. Returns the names installed."""
    from contract.artifacts import copy_artifact, verify_artifact

    installed = []
    for manifest in sorted(release_dir.glob("*/*/manifest.json")):
        source = manifest.parent
        name, variant = source.parent.name, source.name
        shipped = verify_artifact(source)
        target = models_dir / name / variant
        try:
            present = verify_artifact(target)
        except AgrilandError:
            present = None  # none there, or a broken copy: install the release
        if present is not None:
            if present.version != shipped.version:
                log.info(
                    "quickstart: %s holds another %s model (%s); the release %s is not installed over it "
                    "(remove the folder to get it)",
                    target,
                    name,
                    present.version,
                    shipped.version,
                )
            continue
        copy_artifact(source, target)
        log.info("quickstart: release model %s/%s %s installed in %s", name, variant, shipped.version, target)
        installed.append(name)
    return installed


def describe_models(models_dir: Path, release_dir: Path = RELEASE_DIR) -> str:
    """`dec 20261207-ab (release), unet 20261101-cd (not the release: remove the folder to get it), ...`."""
    from contract.artifacts import verify_artifact

    parts = []
    for folder in sorted(models_dir.glob("*/fp32")):
        try:
            version = verify_artifact(folder).version
        except AgrilandError:
            continue
        shipped = release_dir / folder.parent.name / "fp32" / "manifest.json"
        release = shipped.is_file() and verify_artifact(shipped.parent).version == version
        parts.append(
            f"{folder.parent.name} {version} "
            f"({'release' if release else 'your own, kept: remove the folder to get the release'})"
        )
    return ", ".join(parts) or "no models"


def _step(title: str, args: list[str]) -> None:
    """Run one `agriland` subcommand in its own process (TensorFlow memory is freed after each)."""
    log.info("quickstart: %s", title)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "agriland.cli", *args], check=False)
    if result.returncode != 0:
        raise AgrilandError(f"quickstart step '{title}' failed (exit {result.returncode}): agriland {' '.join(args)}")
    log.info("quickstart: %s done in %.0f s", title, time.monotonic() - started)


def build_models(profile: QuickstartProfile, work_dir: Path, models_dir: Path, sample: Path = SAMPLE_DIR) -> None:
    """Real EuroSAT sample -> DEC + names from its labels; mosaics -> U-Net; both -> ONNX exports."""
    if not sample.is_dir():
        raise AgrilandError(f"the quickstart sample of real tiles is missing: {sample} (it ships with the repository)")
    mosaics = work_dir / "data" / f"mosaics-{profile.name}"
    dec_run = work_dir / "runs" / f"dec-{profile.name}"
    unet_run = work_dir / "runs" / f"unet-{profile.name}"
    _step(
        "train DEC on the real EuroSAT sample",
        ["train-dec", "--data", str(sample), "--run", str(dec_run), "--profile", profile.name],
    )
    _step("name clusters from the sample's labels", ["clusters", "name", "--from-labels", "--run", str(dec_run)])
    log.info(
        "quickstart: clusters were named automatically by the majority EuroSAT label of their sample tiles "
        "(AnnualCrop counts as arable land, PermanentCrop as cropland that is not arable); look at %s and rename them with "
        "`agriland clusters name 7=arable --run %s --models %s`",
        dec_run / "galleries" / "index.md",
        dec_run,
        models_dir,
    )
    if not (mosaics / "pairs.csv").is_file():
        _step(
            "build arable-mask mosaics of the real sample",
            [
                "mosaics",
                "--eurosat",
                str(sample),
                "--out",
                str(mosaics),
                "--size",
                str(profile.mosaic_size),
                "--n",
                str(profile.mosaics),
                "--overwrite",
            ],
        )
    _step(
        "train U-Net",
        ["train-unet", "--data", str(mosaics / "pairs.csv"), "--run", str(unet_run), "--profile", profile.name],
    )
    for name, run in (("dec", dec_run), ("unet", unet_run)):
        _step(
            f"export {name}",
            ["export", name, "--run", str(run), "--models", str(models_dir), "--variant", profile.export_variants],
        )


def instance_env(environ: dict[str, str], models_dir: Path, port: int) -> dict[str, str]:
    """The service's environment: its models, and its own BentoML state unless one was chosen.

    BentoML keeps scene-job results and `prometheus_multiproc_dir` under BENTOML_HOME; two services on one
    host sharing it wipe each other's metrics, so each port gets its own folder.
    """
    env = {**environ, "AGRILAND_MODELS_DIR": str(models_dir.resolve())}
    env.setdefault("BENTOML_HOME", str(Path(tempfile.gettempdir()) / f"agriland-bentoml-{port}"))
    gallery = dec_gallery(models_dir)
    if gallery is not None:
        env.setdefault("AGRILAND_GALLERY_DIR", str(gallery))
    return env


def dec_gallery(models_dir: Path) -> Path | None:
    """The galleries/ of the served DEC's training run, where that run is on this machine (the map's gallery page
    then shows sample tiles of each cluster)."""
    manifest = models_dir / "dec" / "fp32" / "manifest.json"
    try:
        run = json.loads(manifest.read_text()).get("training_data", {}).get("run")
    except (OSError, ValueError):
        return None
    gallery = Path(run) / "galleries" if isinstance(run, str) and run else None
    return gallery.resolve() if gallery is not None and gallery.is_dir() else None


def serve(models_dir: Path, port: int, host: str) -> None:
    """Replace this process with `bentoml serve` on the built models."""
    bentoml = shutil.which("bentoml", path=str(Path(sys.executable).parent)) or shutil.which("bentoml")
    if bentoml is None:
        raise AgrilandError("bentoml is not installed: install the serve extra (pip install -e '.[serve]')")
    env = instance_env(dict(os.environ), models_dir, port)
    url = f"http://{'localhost' if host in {'0.0.0.0', '127.0.0.1'} else host}:{port}"
    print(
        f"\nagriland is starting on {url} (models: {models_dir})\n"
        f"  readiness:  curl {url}/readyz\n"
        f"  segment:    curl -F 'file=@tile.png' {url}/segment\n"
        f"  cluster:    curl -F 'file=@tile.png' {url}/cluster\n"
        f"  demo:       agriland demo --url {url}\n"
        f"  API docs:   {url}/docs\n",
        flush=True,
    )
    os.execve(bentoml, [bentoml, "serve", "serving.service:Agriland", "--host", host, "--port", str(port)], env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agriland quickstart", description=__doc__)
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="quick",
        help="sizes of --rebuild: quick, minutes on 2 CPU cores; full, the workflow's, for a GPU",
    )
    parser.add_argument(
        "--models",
        type=Path,
        default=Path(os.environ.get("AGRILAND_MODELS") or os.environ.get("AGRILAND_MODELS_DIR") or "models"),
        help="models folder to serve (default AGRILAND_MODELS or models/); the release models are "
        "added where it has none of a name",
    )
    parser.add_argument("--work-dir", type=Path, default=Path("."), help="where data/ and runs/ go")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument(
        "--rebuild",
        action="store_true",
        help="the demonstration path: train DEC and the U-Net on the shipped sample, export them "
        "into --models and serve them instead of the release",
    )
    parser.add_argument("--no-serve", action="store_true", help="build the models and stop")
    args = parser.parse_args(argv)
    # absolute paths: training summaries record their data source, which export reads from anywhere
    args.models, args.work_dir = args.models.resolve(), args.work_dir.resolve()

    if args.rebuild:
        log.info(
            "quickstart --rebuild: the demonstration path, the whole workflow on the shipped sample of %s; "
            "the release models (agriland/release) are trained on far more data",
            SAMPLE_DIR,
        )
        started = time.monotonic()
        build_models(PROFILES[args.profile], args.work_dir, args.models)
        log.info("quickstart: models built in %.1f min", (time.monotonic() - started) / 60)
    install_release_models(args.models)
    if not _models_ready(args.models):
        raise AgrilandError(
            f"{args.models} has no valid dec and unet models and the release in {RELEASE_DIR} "
            "could not fill them in; run `agriland quickstart --rebuild` to train them"
        )
    log.info("quickstart: serving %s: %s", args.models, describe_models(args.models))
    if args.no_serve:
        return 0
    serve(args.models, args.port, args.host)
    return 0
