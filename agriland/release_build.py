"""`agriland release build`: train, export and measure the release models that ship with the package.

    agriland release build --data <development data>   # make release-models DATA=<development data>

On the development data whose licence allows shipping a model: the EuroSAT tiles (MIT) for DEC and the arable
U-Net, the NAIP field polygons (US public domain imagery, MIT annotations) for the field model; never the forest
aerial set (research use only). A fixed 15 % of the EuroSAT tiles (`training.holdout_split`) is held out from every
model; each candidate is scored on it (`evaluation.release_eval`) beside the shipped model of the same name, and
replaces it in `agriland/release/` only when it measures better (or with --replace). Each installed model gets a
model card with its data, command, code commit, wall time and held-out metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from agriland.model_card import write_model_card
from agriland.quickstart import RELEASE_DIR
from contract.artifacts import copy_artifact, verify_artifact
from contract.errors import AgrilandError

log = logging.getLogger(__name__)

MODELS: tuple[str, ...] = ("dec", "unet", "fields")
MOSAICS = 9000  # 64 px arable-mask mosaics of the training tiles for the U-Net
MAX_FALSE_CROPLAND = 0.05  # a DEC is only better if it stays under this false-cropland rate


def _agriland(args: list[str]) -> float:
    """Run one `agriland` subcommand in its own process (TensorFlow memory is freed after each); its wall time."""
    log.info("release: agriland %s", " ".join(args))
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "agriland.cli", *args], check=False)
    if result.returncode != 0:
        raise AgrilandError(f"release step failed (exit {result.returncode}): agriland {' '.join(args)}")
    return time.monotonic() - started


def _commit() -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short=10", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    return result.stdout.strip() or "unknown"


def _train(name: str, data: Path, work: Path, split: Path, profile: str, mosaics: int) -> float:
    """Train and export one candidate into `work/models/<name>/fp32`; the wall time of all its steps."""
    models, run = work / "models", work / "runs" / name
    fields_profile = "quick" if profile == "release" else profile
    seconds = 0.0
    if name == "dec":
        seconds += _agriland(["train-dec", "--data", str(split / "train"), "--run", str(run), "--profile", profile])
        seconds += _agriland(["clusters", "name", "--from-labels", "--run", str(run)])
    elif name == "unet":
        mosaic_dir = work / "mosaics"
        seconds += _agriland(
            [
                "mosaics",
                "--eurosat",
                str(split / "train"),
                "--out",
                str(mosaic_dir),
                "--size",
                "64",
                "--n",
                str(mosaics),
                "--test-fraction",
                "0.1",
                "--val-fraction",
                "0.1",
                "--overwrite",
            ]
        )
        seconds += _agriland(
            ["train-unet", "--data", str(mosaic_dir / "pairs.csv"), "--run", str(run), "--profile", profile]
        )
    else:
        fields = data / "fields-naip-dev"
        seconds += _agriland(
            [
                "train-fields",
                "--polygons",
                str(fields / "via_annotations.json"),
                "--images",
                str(fields / "images"),
                "--run",
                str(run),
                "--profile",
                fields_profile,
            ]
        )
    seconds += _agriland(["export", name, "--run", str(run), "--models", str(models), "--variant", "fp32"])
    return seconds


def is_better(name: str, new: dict | None, old: dict | None, shipped: bool) -> bool:
    """Whether the candidate's held-out scores beat the shipped model's (none shipped: it is better). The field
    model has no EuroSAT held-out score (its recipe is cross-validated by image): it is replaced only on request."""
    if not shipped:
        return True
    if new is None or old is None or None in new.values() or None in old.values():
        return False  # a score that could not be measured never replaces a shipped model
    if name == "dec":
        return new["false_cropland"] <= MAX_FALSE_CROPLAND and new["cropland_recall"] > old["cropland_recall"]
    return new["auc"] > old["auc"]


def install(candidate: Path, name: str, release_dir: Path = RELEASE_DIR) -> None:
    """Replace `<release_dir>/<name>/fp32` by the verified candidate artifact folder."""
    copy_artifact(candidate, release_dir / name / "fp32")


def build(
    data: Path,
    work: Path,
    names: list[str],
    replace: bool,
    command: str,
    profile: str = "release",
    release_dir: Path = RELEASE_DIR,
    mosaics: int = MOSAICS,
) -> dict[str, dict]:
    """Train, score and (when better) install each named model in `release_dir`; returns what happened to each."""
    from evaluation.release_eval import score_models
    from training.holdout_split import split_class_folders

    eurosat = data / "eurosat-rgb"
    split = work / "eurosat"
    counts = split_class_folders(eurosat, split)
    outcome: dict[str, dict] = {}
    for name in names:
        seconds = _train(name, data, work, split, profile, mosaics)
        new = score_models(work / "models", split / "heldout", [name]).get(name)
        shipped = (release_dir / name / "fp32" / "manifest.json").is_file()
        old = score_models(release_dir, split / "heldout", [name]).get(name) if shipped else None
        better = is_better(name, new, old, shipped)
        outcome[name] = {
            "wall_s": round(seconds),
            "heldout": new,
            "shipped_heldout": old,
            "better": better,
            "installed": better or replace,
        }
        log.info(
            "release: %s candidate %s shipped %s -> %s",
            name,
            new,
            old,
            "installed" if better or replace else "kept the shipped model (not better; --replace forces it)",
        )
        if better or replace:
            install(work / "models" / name / "fp32", name, release_dir)
            if name == "fields":
                continue  # its card (agriland/release/fields/MODEL_CARD.md) cites the cross-validation by image
            summary = json.loads((work / "runs" / name / "training_summary.json").read_text())
            write_model_card(
                release_dir / name,
                verify_artifact(release_dir / name / "fp32"),
                new,
                counts,
                seconds=seconds,
                commit=_commit(),
                command=command,
                config=summary.get("config", {}),
            )
    (work / "release_outcome.json").write_text(json.dumps(outcome, indent=2))
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="agriland release build", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=("build",))
    parser.add_argument(
        "--data", type=Path, required=True, help="development data folder holding eurosat-rgb/ and fields-naip-dev/"
    )
    parser.add_argument("--work", type=Path, default=Path("runs/release"), help="runs, mosaics and candidates")
    parser.add_argument("--models", default="dec,unet", help=f"comma list of {', '.join(MODELS)} (default dec,unet)")
    parser.add_argument("--replace", action="store_true", help="install the candidates even if not better")
    parser.add_argument(
        "--profile", default="release", help="training profile (release; tiny only checks the command end to end)"
    )
    parser.add_argument("--mosaics", type=int, default=MOSAICS, help=f"U-Net training mosaics ({MOSAICS})")
    parser.add_argument(
        "--release-dir",
        type=Path,
        default=RELEASE_DIR,
        help="where the release models live (default: the package's agriland/release)",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODELS]
    if unknown or not names:
        raise AgrilandError(f"unknown release model(s) {unknown or [args.models]}; choose from {', '.join(MODELS)}")
    for needed in ("eurosat-rgb", *(("fields-naip-dev",) if "fields" in names else ())):
        if not (args.data / needed).is_dir():
            raise AgrilandError(f"{args.data / needed} not found: --data must hold {needed}/")
    command = "agriland release build " + " ".join(argv if argv is not None else sys.argv[2:])
    outcome = build(
        args.data.resolve(),
        args.work.resolve(),
        names,
        args.replace,
        command,
        args.profile,
        args.release_dir.resolve(),
        args.mosaics,
    )
    print(json.dumps({n: {k: o[k] for k in ("wall_s", "better", "installed")} for n, o in outcome.items()}, indent=2))
    return 0
