"""/segment and /cluster on a real `bentoml serve`, with every accepted input format."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.transform import from_origin

from contract.manifest import Manifest, read_manifest
from serving.mask_encoding import rle_decode

pytestmark = pytest.mark.slow


def _rgb(height: int = 64, width: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _encode(image: Image.Image, fmt: str, **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save)
    return buffer.getvalue()


def _geotiff_uint16(height: int = 64, width: int = 64, bands: int = 4) -> bytes:
    data = np.random.default_rng(1).integers(200, 4000, (bands, height, width), dtype=np.uint16)
    with rasterio.MemoryFile() as memfile:
        profile = dict(
            driver="GTiff",
            height=height,
            width=width,
            count=bands,
            dtype="uint16",
            crs="EPSG:32633",
            transform=from_origin(500000, 5000000, 10, 10),
            nodata=0,
        )
        with memfile.open(**profile) as dst:
            dst.write(data)
        return memfile.read()


def _formats() -> dict[str, bytes]:
    rgb = _rgb()
    return {
        "rgb.png": _encode(Image.fromarray(rgb), "PNG"),
        "rgb.jpg": _encode(Image.fromarray(rgb), "JPEG", quality=90),
        "rgba.png": _encode(Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 200, np.uint8)])), "PNG"),
        "gray.png": _encode(Image.fromarray(rgb[..., 0]), "PNG"),
        "palette.png": _encode(Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE), "PNG"),
        "gray16.png": _encode(Image.fromarray(rgb[..., 0].astype(np.uint16) * 200), "PNG"),
        "rgb8.tif": _encode(Image.fromarray(rgb), "TIFF"),
        "geo16.tif": _geotiff_uint16(),
    }


FORMATS = _formats()


@pytest.mark.parametrize("filename", sorted(FORMATS))
def test_segment_multipart_every_format(client: httpx.Client, exported_models, filename: str) -> None:
    response = client.post("/segment", files={"file": (filename, FORMATS[filename])})
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert (result["width"], result["height"], result["name"]) == (64, 64, filename)
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["mask_png_base64"]))))
    assert mask.shape == (64, 64) and set(np.unique(mask)) <= {0, 255}
    rle = rle_decode(result["mask_rle"]["counts"], 64, 64)
    np.testing.assert_array_equal(rle, mask // 255)
    assert result["arable_fraction"] == pytest.approx(float((mask > 0).mean()))
    assert result["threshold"] == read_manifest(exported_models / "unet" / "fp32").field_threshold  # fields mode


@pytest.mark.parametrize("filename", sorted(FORMATS))
def test_cluster_json_base64_every_format(client: httpx.Client, exported_models, filename: str) -> None:
    manifest: Manifest = read_manifest(exported_models / "dec" / "fp32")
    k = manifest.n_clusters
    payload = {"tiles": [{"image_b64": base64.b64encode(FORMATS[filename]).decode(), "name": filename}]}
    response = client.post("/cluster", json=payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["n_clusters"] == k
    result = body["results"][0]
    assert result["name"] == filename and 0 <= result["cluster"] < k
    assert result["top_k"][0]["cluster"] == result["cluster"]
    assert result["top_k"][0]["probability"] == pytest.approx(result["confidence"])
    assert "embedding" not in result  # only with include_embedding
    assert result["cluster_name"] == manifest.cluster_names.get(str(result["cluster"]))
    assert result["is_arable"] == (manifest.cluster_names.get(str(result["cluster"])) == "arable")
    assert result["cropland"] == manifest.is_cropland_cluster(result["cluster"])
    assert result["land_cover"] == manifest.land_cover(result["cluster"])


def test_several_tiles_per_request_keep_their_order(client: httpx.Client, exported_models) -> None:
    manifest = read_manifest(exported_models / "dec" / "fp32")
    k, dim = manifest.n_clusters, manifest.outputs[0].shape[-1]
    tiles = [_encode(Image.fromarray(_rgb(seed=s)), "PNG") for s in range(5)]
    files = [("file", (f"t{i}.png", data)) for i, data in enumerate(tiles)]
    multipart = client.post("/cluster", files=files, data={"top_k": str(k), "include_embedding": "true"}).json()
    payload = {
        "tiles": [{"image_b64": base64.b64encode(t).decode()} for t in tiles],
        "top_k": k,
        "include_embedding": True,
    }
    as_json = client.post("/cluster", json=payload).json()
    assert [r["name"] for r in multipart["results"]] == [f"t{i}.png" for i in range(5)]
    for a, b in zip(multipart["results"], as_json["results"]):
        assert a["cluster"] == b["cluster"] and len(a["top_k"]) == k
        assert sum(s["probability"] for s in a["top_k"]) == pytest.approx(1.0, abs=1e-4)
        np.testing.assert_allclose(a["embedding"], b["embedding"], atol=1e-5)
        assert len(a["embedding"]) == dim
    # one tile alone gives the same answer as inside a batch
    single = client.post("/cluster", files={"file": ("t3.png", tiles[3])}).json()["results"][0]
    assert single["confidence"] == pytest.approx(multipart["results"][3]["confidence"], abs=1e-5)


def test_segment_json_with_data_url_and_threshold(client: httpx.Client) -> None:
    data = base64.b64encode(FORMATS["rgb.png"]).decode()
    payload = {
        "tiles": [{"image_b64": f"data:image/png;base64,{data}"}],
        "threshold": 0.0,
        "include_probability": True,
        "mask_mode": "threshold",
    }
    result = client.post("/segment", json=payload).json()["results"][0]
    assert result["threshold"] == 0.0 and result["arable_fraction"] == 1.0
    assert 0.0 < result["mean_probability"] < 1.0


def _two_fields_tile() -> bytes:
    """Two touching crops side by side above water (a drawn 64 px tile)."""
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:40, :32] = (60, 140, 50)
    rgb[:40, 32:] = (170, 140, 90)
    rgb[40:] = (20, 40, 90)
    return _encode(Image.fromarray(rgb), "PNG")


def test_segment_fields_mode_answers_instances(client: httpx.Client) -> None:
    """threshold 0 in fields mode: every field-shaped region is a field; the instance PNG and the field list
    describe exactly the answered mask, and touching fields are apart (one 4-connected region each)."""
    data = {"threshold": "0.0", "include_fields": "true", "gsd": "10"}
    response = client.post("/segment", files={"file": ("t.png", _two_fields_tile())}, data=data)
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["mask_png_base64"])))) > 0
    labels = np.asarray(Image.open(io.BytesIO(base64.b64decode(result["instances_png_base64"])))).astype(int)
    assert labels.shape == (64, 64) and ((labels > 0) == mask).all()
    assert result["n_fields"] == len(result["fields"]) == labels.max() >= 2
    assert labels[10, 10] != labels[10, 50] and labels[10, 10] > 0 and labels[10, 50] > 0
    for field in result["fields"]:
        assert field["pixels"] == (labels == field["id"]).sum()
        assert field["area_ha"] == pytest.approx(field["pixels"] * 100 / 10_000)
        assert 0.0 <= field["confidence"] <= 1.0
    plain = client.post(
        "/segment", files={"file": ("t.png", _two_fields_tile())}, data={"threshold": "0.0", "mask_mode": "threshold"}
    ).json()["results"][0]
    assert plain["arable_fraction"] == 1.0 and plain["n_fields"] == 1 and plain["fields"] == []


def test_segment_unknown_mask_mode_is_a_clear_4xx(client: httpx.Client) -> None:
    response = client.post("/segment", files={"file": ("t.png", _two_fields_tile())}, data={"mask_mode": "blobs"})
    assert 400 <= response.status_code < 500 and "mask_mode" in response.text
    assert client.post("/segment", files={"file": ("t.png", _two_fields_tile())}).status_code == 200


@pytest.mark.parametrize("how", ["accept", "query"])
def test_segment_single_tile_as_png(client: httpx.Client, how: str) -> None:
    kwargs = {"headers": {"Accept": "image/png"}} if how == "accept" else {"params": {"format": "png"}}
    response = client.post("/segment", files={"file": ("a.png", FORMATS["rgb.png"])}, **kwargs)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    mask = np.asarray(Image.open(io.BytesIO(response.content)))
    assert mask.shape == (64, 64)
    assert float(response.headers["x-arable-fraction"]) == pytest.approx(float((mask > 0).mean()))


def test_raw_image_body(client: httpx.Client) -> None:
    response = client.post(
        "/segment", content=FORMATS["rgb.jpg"], headers={"Content-Type": "image/jpeg"}, params={"threshold": "0.3"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["threshold"] == 0.3
    response = client.post(
        "/cluster", content=FORMATS["geo16.tif"], headers={"Content-Type": "image/tiff"}, params={"top_k": "2"}
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["results"][0]["top_k"]) == 2


@pytest.mark.parametrize(("height", "width", "fit"), [(40, 50, "pad"), (100, 130, "resize"), (64, 200, "resize")])
def test_odd_sizes_map_back_to_the_input(client: httpx.Client, height: int, width: int, fit: str) -> None:
    data = _encode(Image.fromarray(_rgb(height, width)), "PNG")
    result = client.post("/segment", files={"file": ("odd.png", data)}).json()["results"][0]
    assert (result["height"], result["width"], result["fit"]) == (height, width, fit)
    assert result["mask_rle"]["size"] == [height, width]
    mask = Image.open(io.BytesIO(base64.b64decode(result["mask_png_base64"])))
    assert mask.size == (width, height)
    cluster = client.post("/cluster", files={"file": ("odd.png", data)}).json()["results"][0]
    assert (cluster["height"], cluster["width"]) == (height, width)


def test_bentoml_openapi_lists_every_endpoint(client: httpx.Client) -> None:
    spec = client.get("/docs.json").json()
    assert {"/cluster", "/segment", "/segment_scene", "/cluster_scene"} <= set(spec["paths"])
    content = spec["paths"]["/segment"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in content
    assert {"SegmentResult", "ClusterResult", "SceneSummary"} <= set(spec["components"]["schemas"])
