"""`agriland demo` end to end against a real server: tiles, a scene, and the picture it writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from agriland.demo import main as demo_main
from contract.errors import AgrilandError

pytestmark = pytest.mark.slow


def test_demo_writes_a_picture(server, tmp_path: Path) -> None:
    out = tmp_path / "demo.png"
    assert demo_main(["--url", server.url, "--out", str(out), "--blocks", "2"]) == 0
    with Image.open(out) as picture:
        assert picture.width > 800 and picture.height > 600


def test_demo_without_a_service_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AgrilandError, match="no agriland service"):
        demo_main(["--url", "http://127.0.0.1:9", "--out", str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()


def test_demo_without_the_sample_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AgrilandError, match="sample of real tiles is missing"):
        demo_main(
            ["--url", "http://127.0.0.1:9", "--out", str(tmp_path / "x.png"), "--sample", str(tmp_path) + "/none"]
        )
