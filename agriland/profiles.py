"""Sizes of the quickstart pipeline: `quick` for 2 CPU cores, `full` for the workflow's GPU-sized runs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QuickstartProfile:
    """How much synthetic data to make and which export variants to build."""

    name: str
    tiles: int
    data_tile_size: int
    export_variants: str


PROFILES: dict[str, QuickstartProfile] = {
    "quick": QuickstartProfile(name="quick", tiles=800, data_tile_size=64, export_variants="all"),
    "full": QuickstartProfile(name="full", tiles=20000, data_tile_size=256, export_variants="all"),
}
