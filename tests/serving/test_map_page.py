"""The map page and cluster gallery in headless Chromium against a real `bentoml serve` on the tiny models.

A real GeoTIFF goes in through the page's file input; the fields the page draws must be the API's answer to the same
upload, a refused upload must show the service's own message, and the screenshot of the answer is docs/map.png.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from testkit.browser import chromium, sample_scene, sample_tile
from testkit.scene_files import write_scene

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "map.png"
WAIT_S = 240


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    yield from chromium()


@pytest.fixture(scope="module")
def map_server(browser, exported_models: Path, tiny_runs: Path, server_factory, poll_ready):  # noqa: ANN001, ANN201
    server = server_factory(exported_models, env={"AGRILAND_GALLERY_DIR": str(tiny_runs / "dec" / "galleries")})
    assert poll_ready(server.url) == 200, server.log()[-3000:]
    return server


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_scene(tmp_path_factory.mktemp("map") / "fields_scene.tif")


def _wait_state(driver, attribute: str = "state", states: tuple[str, ...] = ("done", "error")) -> str:  # noqa: ANN001
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, WAIT_S, poll_frequency=0.25).until(
            lambda d: d.execute_script(f"return document.body.dataset.{attribute}") in states
        )
    except TimeoutException:
        seen = driver.execute_script(
            "return [document.body.dataset.state, document.body.dataset.tile, "
            "document.getElementById('status-text')?.textContent, "
            "document.getElementById('error')?.textContent]"
        )
        pytest.fail(f"the page never reached {states} in {WAIT_S} s: state, tile, status, error = {seen}")
    return driver.execute_script(f"return document.body.dataset.{attribute}")


def _upload(driver, element_id: str, path: Path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, element_id).send_keys(str(path))


def _csp_violations(driver) -> list[str]:  # noqa: ANN001
    return [e["message"] for e in driver.get_log("browser") if "Content Security Policy" in e["message"]]


def _rings(geometry: dict) -> list[list[list[float]]]:
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    return [ring for polygon in polygons for ring in polygon]


def test_scene_fields_drawn_are_the_api_answer(browser, map_server, scene: Path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(map_server.url + "/map/")
    _upload(browser, "scene-file", scene)
    assert _wait_state(browser) == "done", browser.find_element(By.ID, "error").text
    with httpx.Client(base_url=map_server.url, timeout=120) as client:
        files = {"file": (scene.name, scene.read_bytes(), "image/tiff")}
        api = client.post("/segment_scene", files=files).json()
        grid = client.post("/cluster_scene", files=files).json()
    features = api["polygons"]["features"]
    assert features, "the scene should have fields for this test to mean anything"

    # the drawn SVG paths, one per field, carry the answer's ids and hectares
    drawn = browser.execute_script(
        "return [...document.querySelectorAll('path.agriland-field')].map(p => [p.dataset.fieldId, p.dataset.areaHa])"
    )
    assert sorted(drawn) == sorted(
        [str(f["properties"]["field_id"]), str(f["properties"]["area_ha"])] for f in features
    )
    # and the geometry the map holds is the answer's, vertex by vertex (Leaflet unrounded)
    layers = json.loads(browser.execute_script("return JSON.stringify(agrilandMap.fields.toGeoJSON(false))"))
    by_id = {f["properties"]["field_id"]: f for f in layers["features"]}
    for feature in features:
        ours = _rings(by_id[feature["properties"]["field_id"]]["geometry"])
        theirs = _rings(feature["geometry"])
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-9)
    summary = api["summary"]
    assert browser.find_element(By.ID, "total-fields").text == str(summary["n_polygons"])
    assert browser.find_element(By.ID, "total-arable").text.startswith(f"{summary['arable_ha']:.2f} ha")
    assert browser.find_element(By.ID, "total-valid").text == f"{summary['valid_ha']:.2f} ha"

    # the cluster grid: one cell per answered cell, a legend entry per cluster present, names from the answer
    cells = browser.execute_script("return document.querySelectorAll('path.agriland-cell').length")
    assert cells == len(grid["features"])
    legend = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#legend-list li")]
    present = sorted({(f["properties"]["cluster"], f["properties"]["name"]) for f in grid["features"]})
    assert [text.split(" ·")[0] for text in legend] == [f"#{k} {name}" for k, name in present]

    # the downloads are blobs of the answer's files (CSP keeps even the page from fetching them back): a COG of
    # the mask, the GeoJSON and the GeoParquet, each named after the upload
    links = browser.execute_script(
        "return ['dl-cog', 'dl-geojson', 'dl-parquet'].map(id => "
        "[document.getElementById(id).href, document.getElementById(id).download])"
    )
    assert all(href.startswith("blob:") for href, _ in links)
    assert [name for _, name in links] == [
        "fields_scene_mask.tif",
        "fields_scene_fields.geojson",
        "fields_scene_fields.parquet",
    ]
    heads = browser.execute_script(
        "const a = agrilandMap.answer; return [a.mask_geotiff_base64, "
        "a.polygons_geoparquet_base64].map(b => atob(b).slice(0, 4))"
    )
    assert heads[0] in ("II*\x00", "MM\x00*") and heads[1] == "PAR1", heads

    # clicking a field shows its id, hectares and confidence
    largest = max(features, key=lambda f: f["properties"]["area_ha"])["properties"]
    path = browser.find_element(By.CSS_SELECTOR, f"path.agriland-field[data-field-id='{largest['field_id']}']")
    ActionChains(browser).move_to_element(path).click().perform()
    popup = browser.find_element(By.CSS_SELECTOR, ".leaflet-popup-content").text
    assert f"Field {largest['field_id']}" in popup and f"{largest['area_ha']:.2f} ha" in popup
    assert f"{largest['confidence']:.3f}" in popup
    assert not _csp_violations(browser)
    WebDriverWait(browser, 10).until(
        lambda d: (
            d.execute_script(  # the popup has faded in
                "return getComputedStyle(document.querySelector('.leaflet-popup')).opacity"
            )
            == "1"
        )
    )
    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))


def test_refused_upload_shows_the_service_message(browser, map_server, tmp_path: Path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    bad = tmp_path / "not_a_scene.tif"
    bad.write_bytes(b"this is not a GeoTIFF <script>alert(1)</script>")
    expected = httpx.post(
        map_server.url + "/segment_scene", timeout=60, files={"file": (bad.name, bad.read_bytes(), "image/tiff")}
    )
    assert expected.status_code == 400
    browser.get(map_server.url + "/map/")
    _upload(browser, "scene-file", bad)
    assert _wait_state(browser) == "error"
    assert browser.find_element(By.ID, "error").text == expected.json()["error"]
    assert not browser.find_elements(By.CSS_SELECTOR, "#panel script")


def test_tile_before_after(browser, map_server, tmp_path: Path) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    tile = sample_tile(tmp_path / "AnnualCrop.png")
    api = httpx.post(
        map_server.url + "/segment",
        files={"file": (tile.name, tile.read_bytes(), "image/png")},
        data={"include_fields": "true"},
        timeout=60,
    ).json()["results"][0]
    browser.get(map_server.url + "/map/")
    _upload(browser, "tile-file", tile)
    assert _wait_state(browser, "tile") == "done"
    summary = browser.find_element(By.ID, "tile-summary").text
    assert summary.startswith(f"{api['name']}: {100 * api['arable_fraction']:.1f} % arable, {api['n_fields']} field")
    sizes = browser.execute_script(
        "return ['tile-before', 'tile-after'].map(id => "
        "[document.getElementById(id).width, document.getElementById(id).height])"
    )
    assert sizes == [[api["width"], api["height"]]] * 2


def test_cluster_gallery(browser, map_server) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    clusters = httpx.get(map_server.url + "/map/api/gallery", timeout=30).json()
    browser.get(map_server.url + "/map/gallery")
    assert _wait_state(browser) == "done"
    cards = browser.find_elements(By.CSS_SELECTOR, "article.card")
    assert len(cards) == clusters["n_clusters"]
    for card, cluster in zip(cards, clusters["clusters"]):
        assert card.find_element(By.TAG_NAME, "h2").text == f"#{cluster['cluster']} {cluster['name']}"
        assert f"land cover: {cluster['land_cover']}" in card.text
    loaded = browser.execute_script(
        "return [...document.querySelectorAll('article.card img')].map(i => i.complete && i.naturalWidth > 0)"
    )
    assert loaded and all(loaded)
    assert not _csp_violations(browser)


def test_a_busy_service_is_retried_by_the_page(
    browser,
    exported_models: Path,
    server_factory,
    poll_ready,  # noqa: ANN001
    scene: Path,
    tmp_path: Path,
) -> None:
    """One scene running and one waiting fill a queue of 1: the page's scene is refused with 503 + Retry-After,
    shows the wait, asks again by itself and is answered."""
    from selenium.webdriver.common.by import By

    server = server_factory(exported_models, env={"AGRILAND_MAX_SCENES": "1", "AGRILAND_MAX_SCENE_QUEUE": "1"})
    assert poll_ready(server.url) == 200
    busy = write_scene(tmp_path / "busy.tif", 700, 900).read_bytes()
    tickets = ["busy-ticket-1", "busy-ticket-2"]

    def post(ticket: str) -> None:
        httpx.post(
            server.url + "/segment_scene",
            timeout=300,
            headers={"X-Agriland-Ticket": ticket},
            files={"file": ("busy.tif", busy, "image/tiff")},
            data={"bands": "sentinel2-10m", "mask_mode": "threshold"},
        )

    threads = [threading.Thread(target=post, args=(t,)) for t in tickets]
    browser.get(server.url + "/map/")
    for thread in threads:
        thread.start()
        time.sleep(0.3)
    deadline, full = time.monotonic() + 60, False
    while time.monotonic() < deadline and not full:  # the queue is full: one running, one waiting
        place = httpx.get(server.url + "/map/api/queue", params={"ticket": tickets[1]}, timeout=10).json()
        full = place["running"] == 1 and place["waiting"] == 1
        time.sleep(0.05)
    assert full, f"the two busy scenes never filled the queue: {place}"
    _upload(browser, "scene-file", scene)
    assert _wait_state(browser, states=("retrying", "done", "error")) == "retrying"
    assert "Retrying in" in browser.find_element(By.ID, "status-text").text
    assert "scene queue is full" in browser.find_element(By.ID, "status-text").text
    assert _wait_state(browser) == "done", browser.find_element(By.ID, "error").text
    for thread in threads:
        thread.join()
    assert browser.execute_script("return document.querySelectorAll('path.agriland-field').length") > 0


def test_lost_connection_says_so(browser, map_server, scene: Path) -> None:  # noqa: ANN001 (stops the server: last)
    from selenium.webdriver.common.by import By

    browser.get(map_server.url + "/map/")
    _wait_state(browser, states=("idle",))
    map_server.stop()
    _upload(browser, "scene-file", scene)
    assert _wait_state(browser) == "error"
    assert "Lost the connection to the service" in browser.find_element(By.ID, "error").text
