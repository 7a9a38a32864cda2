"""The map page's files: Leaflet vendored unchanged with its licence, nothing loaded from elsewhere, a strict CSP."""

from __future__ import annotations

import hashlib
import re

import pytest

from contract.errors import AgrilandError
from serving.config import ServeSettings
from serving.map_app import STATIC, content_security_policy

LEAFLET = STATIC / "vendor" / "leaflet"


def test_vendored_leaflet_is_the_pinned_release_with_its_licence() -> None:
    sums = [line.split(maxsplit=1) for line in (LEAFLET / "SHA256SUMS").read_text().splitlines()]
    assert {name for _, name in sums} >= {"leaflet.js", "leaflet.css", "LICENSE"}
    for digest, name in sums:
        assert hashlib.sha256((LEAFLET / name).read_bytes()).hexdigest() == digest, name
    assert "Leaflet 1.9.4" in (LEAFLET / "leaflet.js").read_text()[:200]
    assert (LEAFLET / "LICENSE").read_text().startswith("BSD 2-Clause License")


def test_pages_load_nothing_from_elsewhere_and_nothing_inline() -> None:
    for path in sorted((STATIC / "map").iterdir()):
        text = path.read_text()
        assert not re.search(r"(src|href)=\"(https?:)?//", text), f"{path.name} loads from another origin"
        if path.suffix == ".html":
            assert "<script>" not in text and "style=" not in text and "<style" not in text, path.name
            assert not re.search(r"\son[a-z]+=", text), f"{path.name} has an inline event handler"
        if path.suffix == ".js":
            assert "innerHTML =" not in text and "insertAdjacentHTML" not in text and "eval(" not in text, path.name


def test_csp_is_self_only_and_adds_only_a_configured_basemap() -> None:
    plain = content_security_policy(ServeSettings.from_env({}))
    assert "script-src 'self';" in plain and "style-src 'self';" in plain and "connect-src 'self';" in plain
    assert "unsafe" not in plain and "http" not in plain and "default-src 'none'" in plain
    osm = ServeSettings.from_env({"AGRILAND_MAP_BASEMAP_URL": "https://tile.openstreetmap.org/{z}/{x}/{y}.png"})
    assert "img-src 'self' blob: https://tile.openstreetmap.org;" in content_security_policy(osm)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "https://example.org/tiles.png", "ftp://x/{z}/{x}/{y}"])
def test_a_bad_basemap_url_is_refused_by_name(url: str) -> None:
    with pytest.raises(AgrilandError, match="AGRILAND_MAP_BASEMAP_URL"):
        ServeSettings.from_env({"AGRILAND_MAP_BASEMAP_URL": url})
