"""The Kubernetes manifests (deploy/k8s): every object valid against the Kubernetes API's own
schema (kubernetes-validate, offline, strict: no unknown fields) and KEDA's CRD schema (its
ScaledObject, from KEDA's repository), and consistent with batchocr: env names are settings, the
scaler reads the API's count of every queue the workers read, CPU limits are the thread budget,
and a worker gets longer to stop than a batch takes."""

from __future__ import annotations

from dataclasses import fields
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml

from shared import jobs
from shared.settings import Settings
from tests.helpers import ROOT

K8S = ROOT / "deploy" / "k8s"
KEDA = ROOT / "tests" / "schemas" / "keda"
KUBERNETES_VERSION = "1.33.0"
SETTING_NAMES = {"OCR_" + f.name.upper() for f in fields(Settings)}


def objects() -> list[tuple[str, dict]]:
    """(file, object) for every object of every manifest, the Secret example included."""
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc]
    return found


def by_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in objects() if doc["kind"] == kind}


def test_the_kustomization_lists_every_manifest_but_the_secret_example():
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text("utf-8"))["resources"]
    files = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml", "secret.example.yaml"}
    assert sorted(listed) == sorted(files)


@pytest.mark.parametrize("name, doc", [item for item in objects() if not item[1]["apiVersion"].startswith("keda.sh/")],
                         ids=lambda value: value if isinstance(value, str) else value["metadata"]["name"])
def test_kubernetes_objects_are_valid_against_the_api_schema(name, doc):
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def crd_schema(kind: str) -> dict:
    file = {"ScaledObject": "keda.sh_scaledobjects.yaml", "TriggerAuthentication": "keda.sh_triggerauthentications.yaml"}
    crd = yaml.safe_load((KEDA / file[kind]).read_text("utf-8"))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]


def unknown_fields(value, schema: dict, where: str = "") -> list[str]:
    """Keys the schema does not declare (the API server prunes them silently: a typo there is
    a setting that never applies)."""
    if isinstance(value, dict) and "properties" in schema and not schema.get("additionalProperties"):
        found = [f"{where}.{key}" for key in value if key not in schema["properties"]]
        for key, item in value.items():
            if key in schema["properties"]:
                found += unknown_fields(item, schema["properties"][key], f"{where}.{key}")
        return found
    if isinstance(value, list) and "items" in schema:
        return [bad for i, item in enumerate(value) for bad in unknown_fields(item, schema["items"], f"{where}[{i}]")]
    return []


@pytest.mark.parametrize("kind", ["ScaledObject"])
def test_keda_objects_are_valid_against_keda_s_crd_schema(kind):
    schema = crd_schema(kind)
    docs = list(by_kind(kind).values())
    assert docs
    for doc in docs:
        jsonschema.validate(doc, schema)
        assert unknown_fields({k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")},
                              schema) == []
    assert unknown_fields({"spec": {"scaleTargetRef": {"name": "x"}, "minReplicas": 0}}, crd_schema("ScaledObject"))


def test_env_names_are_settings_and_secrets_stay_out_of_the_config_map():
    (config,) = by_kind("ConfigMap").values()
    assert set(config["data"]) <= SETTING_NAMES, set(config["data"]) - SETTING_NAMES
    secret_like = {name for name in SETTING_NAMES if any(word in name for word in ("KEY", "SECRET", "PASSWORD"))}
    assert not set(config["data"]) & (secret_like | {"OCR_REDIS_URL"})
    for deployment in by_kind("Deployment").values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            names = {env["name"] for env in container.get("env", [])}
            assert names <= SETTING_NAMES, names - SETTING_NAMES
            assert all("value" not in env for env in container.get("env", []) if env["name"] in secret_like)


def test_the_scaler_reads_the_api_s_count_of_every_queue(client, redis, settings):
    """KEDA polls GET /metrics/queues on the API's Service; its ``queued`` counts each
    priority's queue and every API key's queue of it (names KEDA's redis trigger cannot know)."""
    (scaled,) = by_kind("ScaledObject").values()
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "metrics-api" and trigger["metadata"]["format"] == "json"
    url = urlsplit(trigger["metadata"]["url"])
    service, namespace = url.hostname.split(".")[:2]
    assert service in by_kind("Service") and by_kind("Service")[service]["spec"]["ports"][0]["port"] == (url.port or 80)
    assert namespace == yaml.safe_load((K8S / "kustomization.yaml").read_text("utf-8"))["namespace"]
    assert trigger["metadata"]["activationTargetValue"] == "0"
    for priority, owner in (("bulk", "0123456789abcdef"), ("interactive", "")):
        jobs.get_queue(redis, settings, priority, owner).enqueue_call(jobs.JOB_FUNC, kwargs={})
    assert client.get(url.path).get_json()[trigger["metadata"]["valueLocation"]] == 2
    assert scaled["spec"]["scaleTargetRef"]["name"] in by_kind("Deployment")
    assert scaled["spec"]["minReplicaCount"] == 0
    assert "replicas" not in by_kind("Deployment")[scaled["spec"]["scaleTargetRef"]["name"]]["spec"]


def test_workers_get_a_whole_cpu_budget_and_longer_to_stop_than_a_batch():
    worker = by_kind("Deployment")["batchocr-worker"]["spec"]["template"]["spec"]
    (container,) = worker["containers"]
    cpu = container["resources"]["limits"]["cpu"]
    assert str(cpu).isdigit() and container["resources"]["requests"]["cpu"] == cpu  # whole threads, guaranteed
    assert worker["terminationGracePeriodSeconds"] >= 120
    assert container["startupProbe"]["exec"]["command"] == ["batchocr-health", "worker"]
    selectors = {name: pdb["spec"]["selector"]["matchLabels"] for name, pdb in by_kind("PodDisruptionBudget").items()}
    for name, deployment in by_kind("Deployment").items():
        assert deployment["spec"]["selector"]["matchLabels"] in selectors.values(), name


def test_strict_validation_catches_a_misspelt_field():
    deployment = by_kind("Deployment")["batchocr-worker"]
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 180
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
