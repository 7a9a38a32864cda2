"""deploy/: every Kubernetes manifest passes the pinned offline schema validator; the RayJob runs `agriland batch`."""

from __future__ import annotations

import re
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
        kubernetes_validate.validate(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t"}, **pod}, K8S_VERSION, strict=True
        )


def _kinds() -> dict[str, list[dict]]:
    kinds: dict[str, list[dict]] = {}
    for path in MANIFESTS:
        for doc in _docs(path):
            kinds.setdefault(doc["kind"], []).append(doc)
    return kinds


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def test_every_variant_a_manifest_names_can_be_served(tmp_path: Path) -> None:
    """Only fp32 is always exported (fp16/int8 are dropped when they miss their parity gate): every variant
    setting must end in fp32, so a pod (or the RayJob) never waits for a model that was never written."""
    from export.variants import OPTIONAL_VARIANTS
    from inference.models.onnx_model import choose_variant, variant_preferences
    from serving.config import ServeSettings

    settings = []
    for deployment in _kinds()["Deployment"]:
        env = _env(deployment["spec"]["template"]["spec"]["containers"][0])
        ServeSettings.from_env(env)  # accepted by the service
        settings += [env["AGRILAND_UNET_VARIANT"], env["AGRILAND_DEC_VARIANT"]]
    (job,) = _docs(DEPLOY / "ray" / "rayjob.yaml")
    words = job["spec"]["entrypoint"].split()
    settings.append(build_parser().parse_args(words[2:]).variant)
    for setting in settings:
        assert variant_preferences(setting)[-1] not in OPTIONAL_VARIANTS, f"{setting!r} may name no exported model"
    models = tmp_path / "models"
    for name in ("unet", "dec"):  # what an export whose int8 and fp16 both missed their gates leaves
        (models / name / "fp32").mkdir(parents=True)
        (models / name / "fp32" / "manifest.json").write_text("{}")
    for setting in settings:
        folder, warning = choose_variant(models, "dec", setting)
        assert folder.name == "fp32" and (warning is None) == (setting == "fp32")
        assert warning is None or "not exported" in warning


def test_pods_run_as_the_image_user() -> None:
    text = (DEPLOY.parent / "Dockerfile").read_text()
    user = re.search(r"^USER (\d+):(\d+)$", text, re.MULTILINE)
    assert user, "the image's USER must be numeric (runAsNonRoot can only check a number)"
    uid, gid = int(user.group(1)), int(user.group(2))
    assert re.search(rf"useradd [^\n]*--uid {uid}\b[^\n]*--gid {gid}\b", text)
    pods = [d["spec"]["template"]["spec"] for d in _kinds()["Deployment"]]
    (job,) = _docs(DEPLOY / "ray" / "rayjob.yaml")
    cluster = job["spec"]["rayClusterSpec"]
    pods += [cluster["headGroupSpec"]["template"]["spec"]] + [
        g["template"]["spec"] for g in cluster["workerGroupSpecs"]
    ]
    for pod in pods:
        context = pod.get("securityContext", {})
        assert context.get("runAsUser", uid) == uid and context.get("fsGroup", gid) == gid, context
        assert context.get("runAsGroup", gid) == gid


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_one_service_per_deployment_and_scene_jobs_reach_their_pod() -> None:
    kinds = _kinds()
    deployments, services = kinds["Deployment"], kinds["Service"]
    for deployment in deployments:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert _selects(deployment["spec"]["selector"]["matchLabels"], labels)
        mine = [s for s in services if _selects(s["spec"]["selector"], labels)]
        assert len(mine) == 1, f"{deployment['metadata']['name']} is behind {len(mine)} Services"
        scaled = deployment["spec"].get("replicas", 1) > 1 or any(
            h["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
            for h in kinds["HorizontalPodAutoscaler"]
        )
        if scaled:  # a job's status lives in the pod that runs it
            assert mine[0]["spec"].get("sessionAffinity") == "ClientIP"
    for service in services:
        chosen = [
            d for d in deployments if _selects(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        assert len(chosen) == 1, f"Service {service['metadata']['name']} mixes {len(chosen)} Deployments"
    names = {d["metadata"]["name"] for d in deployments}
    assert all(h["spec"]["scaleTargetRef"]["name"] in names for h in kinds["HorizontalPodAutoscaler"])


def test_each_pod_keeps_its_own_bentoml_state() -> None:
    for deployment in _kinds()["Deployment"]:
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        home = _env(container)["BENTOML_HOME"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volume = next(mounts[p] for p in mounts if home.startswith(p.rstrip("/") + "/"))
        assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == volume)


def test_two_local_services_get_their_own_bentoml_state(tmp_path: Path) -> None:
    from agriland.quickstart import instance_env

    first, second = (instance_env({}, tmp_path, port)["BENTOML_HOME"] for port in (3000, 3001))
    assert first != second
    assert instance_env({"BENTOML_HOME": "/chosen"}, tmp_path, 3000)["BENTOML_HOME"] == "/chosen"
