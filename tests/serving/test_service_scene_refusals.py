"""/segment_scene and /cluster_scene refusals on a real `bentoml serve`: bad scenes, limits, a missing model, load."""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from testkit.scene_posts import (
    post_scene,
    standard_scenes,
    write_scene,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return standard_scenes(tmp_path_factory.mktemp("scenes"))


def _bad_scenes(folder: Path, zero_width_tiff) -> dict[str, tuple[bytes, dict[str, str], int, str]]:
    utm = write_scene(folder / "three.tif", 64, 64, bands=3).read_bytes()
    return {
        "no CRS": (write_scene(folder / "nocrs.tif", 64, 64, crs=None).read_bytes(), {}, 400, "no CRS"),
        "zero size": (
            zero_width_tiff(write_scene(folder / "z.tif", 5, 5, bands=3, dtype="uint8").read_bytes()),
            {},
            400,
            "zero size",
        ),
        "too few bands": (write_scene(folder / "two.tif", 64, 64, bands=2).read_bytes(), {}, 400, "too few bands"),
        "band not present": (utm, {"bands": "sentinel2"}, 400, "too few bands"),
        "not a TIFF": (b"\x89PNG\r\n\x1a\n" + b"0" * 100, {}, 400, "not a GeoTIFF"),
        "truncated": (write_scene(folder / "t.tif", 128, 128).read_bytes()[:600], {}, 400, "truncated"),
        "empty file": (b"", {}, 400, "empty"),
        "overlap >= half tile": (utm, {"overlap": "60"}, 400, "overlap"),
        "unknown band preset": (utm, {"bands": "sentinel3"}, 400, "bands"),
        "bad threshold": (utm, {"threshold": "2"}, 400, "threshold"),
        "unknown format": (utm, {"format": "shapefile"}, 400, "format"),
        "unknown field": (utm, {"colour": "red"}, 400, "colour"),
    }


@pytest.fixture(scope="module")
def bad_scenes(
    tmp_path_factory: pytest.TempPathFactory, zero_width_tiff
) -> dict[str, tuple[bytes, dict[str, str], int, str]]:
    return _bad_scenes(tmp_path_factory.mktemp("bad"), zero_width_tiff)


BAD_CASES = [
    "no CRS",
    "zero size",
    "too few bands",
    "band not present",
    "not a TIFF",
    "truncated",
    "empty file",
    "overlap >= half tile",
    "unknown band preset",
    "bad threshold",
    "unknown format",
    "unknown field",
]
SEGMENT_ONLY = {"overlap", "threshold", "format"}  # /cluster_scene refuses them as unknown fields


@pytest.mark.parametrize("case", BAD_CASES)
@pytest.mark.parametrize("path", ["/segment_scene", "/cluster_scene"])
def test_bad_scene_is_4xx_json_and_the_server_still_serves(
    client: httpx.Client, bad_scenes: dict, scenes: dict[str, Path], case: str, path: str
) -> None:
    data, fields, status, word = bad_scenes[case]
    if path == "/cluster_scene" and set(fields) & SEGMENT_ONLY:
        word = next(iter(fields))
    response = post_scene(client, path, data, **fields)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert word.lower() in response.json()["error"].lower(), response.json()
    good = post_scene(client, path, scenes["small"])
    assert good.status_code == 200, good.text


@pytest.mark.parametrize(
    ("kwargs", "status", "word"),
    [
        ({"content": b"II*\x00abc", "headers": {"Content-Type": "text/plain"}}, 415, "content type"),
        ({"content": b"", "headers": {"Content-Type": "image/tiff"}}, 400, "empty"),
        ({"content": b"II*\x00abc"}, 415, "content type"),
        ({"files": [("file", ("a.tif", b"II*\x00")), ("file", ("b.tif", b"II*\x00"))]}, 400, "exactly one"),
        ({"data": {"wgs84": "true"}, "files": {"other": ("x", b"")}}, 400, "empty"),
        ({"content": b"--xx\r\ngarbage", "headers": {"Content-Type": "multipart/form-data; boundary=xx"}}, 400, ""),
    ],
    ids=["wrong-content-type", "empty-body", "no-content-type", "two-files", "empty-file-part", "broken-multipart"],
)
def test_bad_requests_are_4xx(
    client: httpx.Client, scenes: dict[str, Path], kwargs: dict, status: int, word: str
) -> None:
    response = client.post("/segment_scene", **kwargs)
    assert response.status_code == status, response.text
    assert word in response.json()["error"].lower()
    assert post_scene(client, "/segment_scene", scenes["small"], format="geojson").status_code == 200


# ----- limits, a missing model, and fairness to tile requests ----------------------------------------------


@pytest.fixture(scope="module")
def dec_only_url(exported_models: Path, server_factory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose models folder lacks the U-Net, with small scene limits."""
    models = tmp_path_factory.mktemp("dec-only")
    shutil.copytree(exported_models / "dec", models / "dec")
    running = server_factory(models, env={"AGRILAND_MAX_SCENE_BYTES": "100000", "AGRILAND_MAX_SCENE_PIXELS": "20000"})
    deadline = time.monotonic() + 60
    while httpx.get(running.url + "/readyz", timeout=5).status_code != 503 or "dec" not in running.log():
        assert time.monotonic() < deadline, running.log()[-3000:]
        time.sleep(0.5)
    yield running.url


def test_model_not_loaded_is_503(dec_only_url: str, scenes: dict[str, Path]) -> None:
    response = post_scene(httpx.Client(base_url=dec_only_url, timeout=60), "/segment_scene", scenes["small"])
    assert response.status_code == 503 and "unet" in response.json()["error"]
    assert int(response.headers["retry-after"]) >= 1


def test_scene_limits_are_413(dec_only_url: str, tmp_path: Path) -> None:
    with httpx.Client(base_url=dec_only_url, timeout=60) as http:
        small = write_scene(tmp_path / "ok.tif", 100, 100, bands=3, dtype="uint8")
        assert post_scene(http, "/cluster_scene", small).status_code == 200
        wide = write_scene(tmp_path / "wide.tif", 100, 300, bands=3, dtype="uint8")  # 30,000 px > 20,000
        over = post_scene(http, "/cluster_scene", wide)
        assert over.status_code == 413 and "pixels" in over.json()["error"]
        big = write_scene(tmp_path / "big.tif", 140, 140, bands=3)  # ~118 kB > 100,000 bytes
        for kwargs in (
            {"files": {"file": ("big.tif", big.read_bytes())}},
            {"content": big.read_bytes(), "headers": {"Content-Type": "image/tiff"}},
            {
                "content": iter([big.read_bytes()[i : i + 8192] for i in range(0, big.stat().st_size, 8192)]),
                "headers": {"Content-Type": "image/tiff"},
            },  # chunked, no Content-Length: stopped while streaming
        ):
            response = http.post("/cluster_scene", **kwargs)
            assert response.status_code == 413 and "limit" in response.json()["error"], response.text
        assert post_scene(http, "/cluster_scene", small).status_code == 200


def _unet_batches(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=30).text
    found = re.search(r'^agriland_batch_size_count\{[^}]*model="unet"[^}]*\}\s+([0-9.e+]+)', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_tile_request_is_answered_while_a_scene_runs(server, tmp_path: Path) -> None:
    scene = write_scene(tmp_path / "large.tif", 1500, 1500, bands=3, dtype="uint8").read_bytes()
    tile = write_scene(tmp_path / "tile.tif", 64, 64, bands=3, dtype="uint8").read_bytes()
    outcome: dict[str, int] = {}
    before = _unet_batches(server.url)

    def run_scene() -> None:
        with httpx.Client(base_url=server.url, timeout=600) as http:
            outcome["scene"] = post_scene(http, "/segment_scene", scene, overlap="24", format="geojson").status_code

    worker = threading.Thread(target=run_scene)
    worker.start()
    deadline = time.monotonic() + 120
    while _unet_batches(server.url) < before + 3:  # the scene's tiles are flowing through the batcher
        assert worker.is_alive() and time.monotonic() < deadline, outcome
        time.sleep(0.05)
    with httpx.Client(base_url=server.url, timeout=600) as http:
        answered = http.post("/segment", content=tile, headers={"Content-Type": "image/tiff"})
    scene_still_running = worker.is_alive()
    worker.join(timeout=600)
    assert answered.status_code == 200, answered.text
    assert outcome.get("scene") == 200
    assert scene_still_running, "the tile request waited for the whole scene"


# ----- radiometry: a Landsat 8 Level-1 scene (DN, not reflectance) with default options -------------------


# Mean Landsat 8 OLI top-of-atmosphere reflectance of B1..B7 per cover (typical mid-latitude summer values).
