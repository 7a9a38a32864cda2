"""deploy/: every Kubernetes manifest passes the pinned offline schema validator; the RayJob runs `agriland batch`."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from batch.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S_VERSION = "1.33.0"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))


def _docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_kubernetes_manifests_are_schema_valid(path: Path) -> None:
    for doc in _docs(path):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_deployments_probe_the_service_health_endpoints() -> None:
    kinds = {}
    for path in MANIFESTS:
        for doc in _docs(path):
            kinds.setdefault(doc["kind"], []).append(doc)
    assert {"Deployment", "Service", "HorizontalPodAutoscaler"} <= set(kinds)
    for deployment in kinds["Deployment"]:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert container["resources"]["requests"] and container["resources"]["limits"]
    gpu = [d for d in kinds["Deployment"] if "nodeSelector" in d["spec"]["template"]["spec"]]
    assert gpu and gpu[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"]
    hpa = kinds["HorizontalPodAutoscaler"][0]
    assert any(m["type"] == "Pods" and "in_progress" in m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"])


def test_a_broken_manifest_is_caught() -> None:
    doc = _docs(DEPLOY / "kubernetes" / "deployment.yaml")[0]
    doc["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_rayjob_runs_agriland_batch_with_valid_options() -> None:
    (job,) = _docs(DEPLOY / "ray" / "rayjob.yaml")
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    words = job["spec"]["entrypoint"].split()
    assert words[:2] == ["agriland", "batch"]
    build_parser().parse_args(words[2:])  # the options exist (argparse exits on an unknown one)
    cluster = job["spec"]["rayClusterSpec"]
    assert cluster["rayVersion"] == "2.60.0"
    pods = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    for pod in pods:  # the pod templates inside the CRD are ordinary pod specs: validate them as such
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t"}, **pod},
                                     K8S_VERSION, strict=True)
