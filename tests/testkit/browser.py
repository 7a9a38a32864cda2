"""Headless Chromium for the page tests: Debian's `chromium` + `chromium-driver` driven by selenium.

Without them the tests skip, saying what is missing; with AGRILAND_REQUIRE_BROWSER=1 (set by .ci/run) that skip is
a failure, so CI cannot pass without running them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

REQUIRE = "AGRILAND_REQUIRE_BROWSER"
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "eurosat-rgb"


def missing_browser() -> str | None:
    """Why no headless Chromium can run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "no chromium binary on PATH (apt-get install -y chromium chromium-driver)"
    if not shutil.which("chromedriver"):
        return "no chromedriver on PATH (apt-get install -y chromium-driver)"
    return None


def chromium() -> Iterator[object]:
    """A headless Chromium session (skips, or fails under AGRILAND_REQUIRE_BROWSER=1, where there is none)."""
    reason = missing_browser()
    if reason is not None:
        message = f"browser test needs headless Chromium: {reason}"
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{message} ({REQUIRE}=1)")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,800",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def sample_scene(
    path: Path,
    classes: tuple[str, ...] = ("AnnualCrop", "Forest", "PermanentCrop", "Pasture"),
    blocks: int = 3,
    block_tiles: int = 2,
    seed: int = 5,
) -> Path:
    """A small uint8 RGB GeoTIFF (UTM 33N, 10 m) of the repository's real EuroSAT sample tiles, in class blocks."""
    rng = np.random.default_rng(seed)
    side = 64 * block_tiles
    image = np.zeros((blocks * side, blocks * side, 3), np.uint8)
    for r in range(blocks):
        for c in range(blocks):
            files = sorted((SAMPLES / classes[(r * blocks + c) % len(classes)]).glob("*.jpg"))
            for i in range(block_tiles):
                for j in range(block_tiles):
                    tile = np.asarray(Image.open(files[int(rng.integers(len(files)))]).convert("RGB"))
                    image[r * side + 64 * i : r * side + 64 * (i + 1), c * side + 64 * j : c * side + 64 * (j + 1)] = (
                        tile
                    )
    profile = {
        "driver": "GTiff",
        "width": image.shape[1],
        "height": image.shape[0],
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:32633",
        "transform": from_origin(500_000.0, 5_800_000.0, 10.0, 10.0),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.moveaxis(image, -1, 0))
    return path


def sample_tile(path: Path, name: str = "AnnualCrop") -> Path:
    """One real EuroSAT sample tile as a PNG."""
    first = sorted((SAMPLES / name).glob("*.jpg"))[0]
    Image.open(first).convert("RGB").save(path)
    return path
