"""The bulk fast path on a real `bentoml serve`: raw / .npy tiles in, raw / .npy masks and soft assignments out."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from PIL import Image

from contract.manifest import read_manifest
from serving.mask_encoding import rle_decode

pytestmark = pytest.mark.slow


def _tiles(n: int, tile: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, tile, tile, 3), dtype=np.uint8)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _png(tile: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(tile).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tile_size(exported_models) -> int:
    return read_manifest(exported_models / "unet" / "fp32").tile_size


def test_raw_masks_equal_the_segment_answer(client: httpx.Client, tile_size: int) -> None:
    tiles = _tiles(5, tile_size)
    response = client.post(
        "/segment_raw",
        content=tiles.tobytes(),
        params={"shape": f"5,{tile_size},{tile_size},3"},
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-shape"] == f"5,{tile_size},{tile_size}" and response.headers["x-dtype"] == "uint8"
    masks = np.frombuffer(response.content, np.uint8).reshape(5, tile_size, tile_size)
    assert set(np.unique(masks)) <= {0, 1}
    files = [("file", (f"t{i}.png", _png(t))) for i, t in enumerate(tiles)]
    results = client.post("/segment", files=files, data={"mask_mode": "threshold"}).json()["results"]  # the plain cut
    for mask, result in zip(masks, results):
        expected = rle_decode(result["mask_rle"]["counts"], tile_size, tile_size)
        np.testing.assert_array_equal(mask, expected)


def test_npy_in_npy_out_and_probabilities(client: httpx.Client, tile_size: int) -> None:
    tiles = _tiles(3, tile_size, seed=1)
    response = client.post(
        "/segment_raw",
        content=_npy(tiles),
        headers={"Content-Type": "application/x-npy"},
        params={"product": "probability"},
    )
    assert response.status_code == 200, response.text
    probability = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert probability.shape == (3, tile_size, tile_size) and probability.dtype == np.float32
    assert 0.0 <= probability.min() and probability.max() <= 1.0
    masks = client.post(
        "/segment_raw",
        content=_npy(tiles),
        headers={"Content-Type": "application/x-npy"},
        params={"threshold": "0.5", "format": "raw"},
    )
    assert masks.headers["x-threshold"] == "0.5"
    np.testing.assert_array_equal(
        np.frombuffer(masks.content, np.uint8).reshape(probability.shape), (probability >= 0.5).astype(np.uint8)
    )


def test_cluster_raw_gives_the_soft_assignments_of_cluster(client: httpx.Client, tile_size: int) -> None:
    tiles = _tiles(4, tile_size, seed=2)
    response = client.post(
        "/cluster_raw",
        content=tiles.tobytes(),
        params={"shape": f"4,{tile_size},{tile_size},3"},
        headers={"Content-Type": "application/octet-stream", "Accept": "application/x-npy"},
    )
    assert response.status_code == 200, response.text
    q = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert q.shape[0] == 4 and q.dtype == np.float32
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-4)
    files = [("file", (f"t{i}.png", _png(t))) for i, t in enumerate(tiles)]
    clusters = [r["cluster"] for r in client.post("/cluster", files=files).json()["results"]]
    assert clusters == [int(i) for i in q.argmax(axis=1)]


def _bad(tile: int) -> list[tuple[str, str, dict, int, str]]:
    one = tile * tile * 3
    float_npy = _npy(np.zeros((1, tile, tile, 3), np.float32))
    return [
        (
            "wrong-length",
            "/segment_raw",
            {
                "content": bytes(one - 1),
                "params": {"shape": f"1,{tile},{tile},3"},
                "headers": {"Content-Type": "application/octet-stream"},
            },
            400,
            "exactly",
        ),
        (
            "no-shape",
            "/segment_raw",
            {"content": bytes(one), "headers": {"Content-Type": "application/octet-stream"}},
            400,
            "shape",
        ),
        (
            "wrong-dtype",
            "/segment_raw",
            {
                "content": bytes(one),
                "params": {"shape": f"1,{tile},{tile},3", "dtype": "float32"},
                "headers": {"Content-Type": "application/octet-stream"},
            },
            400,
            "dtype",
        ),
        (
            "npy-wrong-dtype",
            "/cluster_raw",
            {"content": float_npy, "headers": {"Content-Type": "application/x-npy"}},
            400,
            "float32",
        ),
        (
            "huge-shape",
            "/segment_raw",
            {
                "content": bytes(one),
                "params": {"shape": f"100000,{tile},{tile},3"},
                "headers": {"Content-Type": "application/octet-stream"},
            },
            413,
            "limit",
        ),
        (
            "absurd-shape",
            "/segment_raw",
            {
                "content": bytes(one),
                "params": {"shape": "1,99999999999999,1,3"},
                "headers": {"Content-Type": "application/octet-stream"},
            },
            413,
            "range",
        ),
        (
            "bad-npy-header",
            "/segment_raw",
            {
                "content": b"\x93NUMPY\x01\x00\x20\x00{'descr': <garbage>}        \n",
                "headers": {"Content-Type": "application/x-npy"},
            },
            400,
            "malformed",
        ),
        (
            "wrong-tile-size",
            "/segment_raw",
            {
                "content": bytes(8 * 8 * 3),
                "params": {"shape": "1,8,8,3"},
                "headers": {"Content-Type": "application/octet-stream"},
            },
            400,
            "tiles",
        ),
        (
            "image-content-type",
            "/segment_raw",
            {"content": _png(_tiles(1, tile)[0]), "headers": {"Content-Type": "image/png"}},
            415,
            "content type",
        ),
        (
            "empty",
            "/cluster_raw",
            {"content": b"", "headers": {"Content-Type": "application/octet-stream"}},
            400,
            "empty",
        ),
        (
            "unknown-query",
            "/segment_raw",
            {
                "content": bytes(one),
                "params": {"shape": f"1,{tile},{tile},3", "x": "1"},
                "headers": {"Content-Type": "application/octet-stream"},
            },
            400,
            "x",
        ),
        (
            "cluster-threshold",
            "/cluster_raw",
            {
                "content": bytes(one),
                "params": {"shape": f"1,{tile},{tile},3", "threshold": "0.3"},
                "headers": {"Content-Type": "application/octet-stream"},
            },
            400,
            "threshold",
        ),
    ]


BAD_IDS = [case[0] for case in _bad(64)]


@pytest.mark.parametrize("case_id", BAD_IDS)
def test_bad_raw_bodies_are_4xx_json_and_the_server_keeps_serving(
    client: httpx.Client, tile_size: int, case_id: str
) -> None:
    _, path, kwargs, status, word = next(c for c in _bad(tile_size) if c[0] == case_id)
    response = client.post(path, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert word.lower() in response.json()["error"].lower(), response.text
    good = _tiles(1, tile_size)
    ok = client.post(
        "/segment_raw",
        content=good.tobytes(),
        params={"shape": f"1,{tile_size},{tile_size},3"},
        headers={"Content-Type": "application/octet-stream"},
    )
    assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("encoding", ["png", "rle"])
def test_segment_json_carries_only_the_mask_encoding_asked(client: httpx.Client, tile_size: int, encoding: str) -> None:
    data = _png(_tiles(1, tile_size, seed=3)[0])
    both = client.post("/segment", files={"file": ("a.png", data)}).json()["results"][0]
    one = client.post("/segment", files={"file": ("a.png", data)}, data={"mask_encoding": encoding}).json()
    result = one["results"][0]
    assert ("mask_png_base64" in result) == (encoding == "png") and ("mask_rle" in result) == (encoding == "rle")
    kept = "mask_png_base64" if encoding == "png" else "mask_rle"
    assert result[kept] == both[kept] and result["arable_fraction"] == both["arable_fraction"]
