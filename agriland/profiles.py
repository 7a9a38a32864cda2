"""Sizes of the quickstart pipeline: `quick` for 2 CPU cores, `full` for the workflow's GPU-sized runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The real tiles the project ships for the quickstart (EuroSAT RGB sample, MIT; see its README).
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "samples" / "eurosat-rgb"


@dataclass(frozen=True)
class QuickstartProfile:
    """How many mosaics of which size the U-Net learns from, and which export variants to build."""

    name: str
    mosaics: int
    mosaic_size: int
    export_variants: str


PROFILES: dict[str, QuickstartProfile] = {
    "quick": QuickstartProfile(name="quick", mosaics=4000, mosaic_size=64, export_variants="all"),
    "full": QuickstartProfile(name="full", mosaics=20000, mosaic_size=256, export_variants="all"),
}
