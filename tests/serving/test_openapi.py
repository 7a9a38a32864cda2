"""/docs.json lists every option each endpoint accepts: the specs are generated from the request schemas."""

from __future__ import annotations

import httpx
import pytest

from serving.scene_schemas import SceneOptions, SegmentSceneOptions
from serving.schemas import ClusterOptions, SegmentOptions

pytestmark = pytest.mark.slow

ROUTES = {
    "/segment": SegmentOptions,
    "/cluster": ClusterOptions,
    "/segment_scene": SegmentSceneOptions,
    "/cluster_scene": SceneOptions,
    "/segment_scene_job/submit": SegmentSceneOptions,
    "/cluster_scene_job/submit": SceneOptions,
}


def _properties(spec: dict, schema: dict) -> dict:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema.get("properties", {})


@pytest.mark.parametrize("route", list(ROUTES))
def test_docs_json_lists_every_accepted_option(client: httpx.Client, route: str) -> None:
    spec = client.get("/docs.json").json()
    body = spec["paths"][route]["post"]["requestBody"]["content"]
    found = {media: set(_properties(spec, content["schema"])) for media, content in body.items()}
    assert found, body
    expected = set(ROUTES[route].model_fields) | {"file"}
    for media, names in found.items():
        assert expected <= names, f"{route} {media}: missing {sorted(expected - names)}"
    assert {"bands", "scaling"} <= expected and (route not in ("/segment", "/cluster") or "gsd" in expected)


def test_docs_json_options_carry_the_schema_constraints(client: httpx.Client) -> None:
    spec = client.get("/docs.json").json()
    content = spec["paths"]["/segment"]["post"]["requestBody"]["content"]
    props = _properties(spec, next(iter(content.values()))["schema"])
    assert "percentile" in str(props["scaling"]) and "reflectance" in str(props["scaling"])
    assert "exclusiveMinimum" in str(props["gsd"]) or "minimum" in str(props["gsd"])


def test_docs_json_is_openapi_3_0(client: httpx.Client) -> None:
    """OpenAPI 3.0 knows `exclusiveMinimum` only as a boolean beside `minimum` (clients and fuzzers refuse more)."""
    spec = client.get("/docs.json").json()
    assert spec["openapi"].startswith("3.0")
    numeric = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for key in ("exclusiveMinimum", "exclusiveMaximum"):
                if key in node and not isinstance(node[key], bool):
                    numeric.append(f"{where}.{key}")
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for k, value in enumerate(node):
                walk(value, f"{where}[{k}]")

    walk(spec, "$")
    assert numeric == []
