"""Server fixtures for every test package: a real `bentoml serve` subprocess on a free loopback port, and its checks."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENTOML = Path(sys.executable).parent / "bentoml"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running `bentoml serve` subprocess."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)  # the group this fixture started, by its id
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def start_server(models_dir: Path, log_dir: Path, env: dict[str, str] | None = None, pythonpath: str = "") -> Server:
    """Start `bentoml serve serving.service:Agriland` and wait until it answers /livez (not necessarily ready)."""
    port = free_port()
    log_path = log_dir / f"bentoml-{port}.log"
    full_env = {
        **os.environ,
        "AGRILAND_MODELS_DIR": str(models_dir),
        "PYTHONPATH": os.pathsep.join(p for p in (pythonpath, str(ROOT)) if p),
        "BENTOML_HOME": str(log_dir / "bentoml-home"),
        "BENTOML_DO_NOT_TRACK": "true",
        **(env or {}),
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(BENTOML), "serve", "serving.service:Agriland", "--port", str(port), "--host", "127.0.0.1"],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"bentoml serve exited with {process.returncode}:\n{server.log()[-4000:]}")
        try:
            if httpx.get(server.url + "/livez", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"bentoml serve did not come up in 120 s:\n{server.log()[-4000:]}")


def wait_ready(url: str, timeout: float = 60) -> int:
    """Poll /readyz until 200 or the timeout; returns the last status."""
    deadline = time.monotonic() + timeout
    status = 0
    while time.monotonic() < deadline:
        status = httpx.get(url + "/readyz", timeout=5).status_code
        if status == 200:
            return status
        time.sleep(0.5)
    return status


ServerFactory = Callable[..., Server]


def zero_tiff_width(raw: bytes) -> bytes:
    """A little-endian TIFF with its ImageWidth tag patched to 0 (GDAL cannot write one itself)."""
    patched = bytearray(raw)
    assert patched[:4] == b"II*\x00"
    offset = struct.unpack_from("<I", patched, 4)[0]
    for i in range(struct.unpack_from("<H", patched, offset)[0]):
        entry = offset + 2 + 12 * i
        tag, kind = struct.unpack_from("<HH", patched, entry)
        if tag == 256:
            struct.pack_into("<H" if kind == 3 else "<I", patched, entry + 8, 0)
    return bytes(patched)


@pytest.fixture(scope="session")
def zero_width_tiff() -> Callable[[bytes], bytes]:
    """`zero_tiff_width` for test modules (pytest's importlib mode cannot import conftest by name)."""
    return zero_tiff_width


@pytest.fixture(scope="session")
def poll_ready() -> Callable[..., int]:
    """`wait_ready` for test modules (pytest's importlib mode cannot import conftest by name)."""
    return wait_ready


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """`start(models_dir, env=None, pythonpath="")` -> a started (not necessarily ready) Server; all stopped at the end."""
    started: list[Server] = []

    def start(models_dir: Path, env: dict[str, str] | None = None, pythonpath: str = "") -> Server:
        running = start_server(models_dir, tmp_path_factory.mktemp("server"), env, pythonpath)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.fixture(scope="session")
def server(exported_models: Path, server_factory: ServerFactory) -> Server:
    """One real server for the session, ready to answer."""
    running = server_factory(exported_models)
    if wait_ready(running.url) != 200:
        raise RuntimeError(f"server never became ready:\n{running.log()[-4000:]}")
    return running


@pytest.fixture()
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        yield http


def rfc7946_problems(collection: dict) -> list[str]:
    """What makes a GeoJSON FeatureCollection break RFC 7946 (empty list: it conforms).

    Checked: no `crs` member (section 4), lon/lat positions in range (EPSG:4326, section 4), closed linear
    rings of >= 4 positions with exteriors counter-clockwise and holes clockwise (section 3.1.6), and at most
    7 decimals (section 11.2's advice, ~1 cm).
    """
    from shapely.geometry import LinearRing

    problems: list[str] = []
    if collection.get("type") != "FeatureCollection":
        problems.append("not a FeatureCollection")
    if "crs" in collection:
        problems.append("has the obsolete `crs` member")

    def ring(coords: list, exterior: bool, where: str) -> None:
        if len(coords) < 4 or coords[0] != coords[-1]:
            problems.append(f"{where}: ring not closed or shorter than 4 positions")
            return
        for lon, lat, *_ in coords:
            if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                problems.append(f"{where}: position {lon}, {lat} is not lon/lat")
                return
            if any(len(repr(float(v)).split(".")[-1].split("e")[0]) > 7 for v in (lon, lat)):
                problems.append(f"{where}: more than 7 decimals in {lon}, {lat}")
                return
        if LinearRing(coords).is_ccw != exterior:
            problems.append(f"{where}: {'exterior' if exterior else 'hole'} wound the wrong way")

    for k, feature in enumerate(collection.get("features", [])):
        if feature.get("type") != "Feature" or "properties" not in feature:
            problems.append(f"feature {k}: not a Feature with properties")
        geometry = feature.get("geometry") or {}
        polygons = {"Polygon": [geometry.get("coordinates")], "MultiPolygon": geometry.get("coordinates")}.get(
            geometry.get("type"), []
        )
        for p, rings in enumerate(polygons or []):
            for r, coords in enumerate(rings):
                ring(coords, r == 0, f"feature {k} polygon {p} ring {r}")
    return problems


@pytest.fixture(scope="session")
def rfc7946() -> Callable[[dict], list[str]]:
    """`rfc7946_problems` for test modules."""
    return rfc7946_problems
