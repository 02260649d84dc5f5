"""The chart lints, renders with every values set, and every object is valid:
core kinds against the Kubernetes schemas (kubernetes-validate, strict), custom
resources against the upstream CRDs' openAPIV3Schema (unknown fields rejected,
as the API server's strict field validation does)."""

from __future__ import annotations

import copy
import functools

import jsonschema
import kubernetes_validate
import pytest
import yaml
from chart_helpers import CHART, KUBE_VERSION, VALUES_CASES, VALUES_IDS, chart_values, helm, schemas_dir

CRD_FILES = {
    ("kafka.strimzi.io", "Kafka"): "strimzi-1.2.0/040-Crd-kafka.yaml",
    ("kafka.strimzi.io", "KafkaTopic"): "strimzi-1.2.0/043-Crd-kafkatopic.yaml",
    ("kafka.strimzi.io", "KafkaUser"): "strimzi-1.2.0/044-Crd-kafkauser.yaml",
    ("kafka.strimzi.io", "KafkaNodePool"): "strimzi-1.2.0/045-Crd-kafkanodepool.yaml",
    (
        "monitoring.coreos.com",
        "ServiceMonitor",
    ): "prometheus-operator-v0.93.0/monitoring.coreos.com_servicemonitors.yaml",
    ("monitoring.coreos.com", "PodMonitor"): "prometheus-operator-v0.93.0/monitoring.coreos.com_podmonitors.yaml",
    (
        "monitoring.coreos.com",
        "PrometheusRule",
    ): "prometheus-operator-v0.93.0/monitoring.coreos.com_prometheusrules.yaml",
    ("keda.sh", "ScaledObject"): "keda-v2.20.2/keda.sh_scaledobjects.yaml",
    ("keda.sh", "TriggerAuthentication"): "keda-v2.20.2/keda.sh_triggerauthentications.yaml",
}


def strict(schema: dict) -> dict:
    """Reject unknown fields wherever the CRD lists the known ones (a typo would otherwise be pruned silently)."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    # metadata is validated by the API server itself, not by the CRD schema.
    schema.get("properties", {}).get("metadata", {}).pop("additionalProperties", None)
    return schema


@functools.cache
def crd_validator(group: str, version: str, kind: str) -> jsonschema.Draft7Validator:
    path = schemas_dir() / CRD_FILES[(group, kind)]
    crd = yaml.safe_load(path.read_text())
    for v in crd["spec"]["versions"]:
        if v["name"] == version:
            assert v.get("served"), f"{kind} {group}/{version} is not served by {path.name}"
            return jsonschema.Draft7Validator(strict(v["schema"]["openAPIV3Schema"]))
    pytest.fail(f"{path} has no version {version} of {kind}")


@pytest.mark.parametrize("values", VALUES_CASES, ids=VALUES_IDS)
def test_helm_lint_strict(values):
    args = ["lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION]
    if values is not None:
        args += ["-f", str(values)]
    proc = helm(*args, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_object_is_valid(rendered):
    assert rendered.docs, f"{rendered.name}: rendered nothing"
    errors = []
    for doc in rendered.docs:
        ident = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        group, _, version = doc["apiVersion"].rpartition("/")
        if (group, doc["kind"]) in CRD_FILES:
            for err in crd_validator(group, version, doc["kind"]).iter_errors(doc):
                errors.append(f"{ident}: {'/'.join(map(str, err.absolute_path))}: {err.message}")
        else:
            try:
                kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            except kubernetes_validate.ValidationError as err:
                errors.append(f"{ident}: {'/'.join(map(str, err.path))}: {err.message}")
            except kubernetes_validate.SchemaNotFoundError as err:
                errors.append(f"{ident}: {err.message}")
    assert not errors, f"{rendered.name}:\n" + "\n".join(errors)


def test_names_are_unique(rendered):
    seen = [(d["kind"], d["metadata"]["name"]) for d in rendered.docs]
    assert len(seen) == len(set(seen)), sorted(s for s in seen if seen.count(s) > 1)


def test_every_values_file_switches_on_something_and_all_features_are_covered(all_rendered):
    """Together the ci/*.yaml files switch on every optional feature."""
    kinds = {d["kind"] for r in all_rendered for d in r.docs}
    for kind in (
        "Kafka",
        "KafkaNodePool",
        "KafkaTopic",
        "KafkaUser",
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "ScaledObject",
        "TriggerAuthentication",
        "Ingress",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Secret",
        "Pod",
    ):
        assert kind in kinds, f"no values set renders a {kind}"
    auth = {r.values["kafka"]["auth"]["type"] for r in all_rendered}
    assert auth == {"none", "scram-sha-512", "tls"}
    assert any(not r.values["strimzi"]["enabled"] for r in all_rendered), "no values set without Strimzi"
    assert any(r.values["kafka"]["tls"]["enabled"] for r in all_rendered), "no values set with SASL_SSL"


def test_templates_name_no_component():
    """One generic set of templates: whatever differs between components (env, volumes, ports
    and who may reach them, Kafka usage, the front door) is in values.yaml."""
    names = set(chart_values(None)["components"])
    for path in sorted((CHART / "templates").rglob("*")):
        if path.is_file():
            text = path.read_text()
            named = sorted(n for n in names if f'"{n}"' in text or f"components.{n}" in text)
            assert not named, f"{path.relative_to(CHART)} names the components {named}"
