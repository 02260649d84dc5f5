"""skaffold.yaml, k8s/ and .github/workflows: valid against their schemas, and
consistent with the chart (image values, Service name, values files)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from chart_helpers import (
    CHART,
    COMPONENTS,
    REPO,
    chart_values,
    helm,
    parse_manifests,
    schemas_dir,
    template_args,
    tool,
)
from test_render import crd_validator

SKAFFOLD = yaml.safe_load((REPO / "skaffold.yaml").read_text())
RELEASE = SKAFFOLD["deploy"]["helm"]["releases"][0]


def test_skaffold_is_valid_v4beta14():
    schema = json.loads((schemas_dir() / "skaffold-v2.24.0" / "v4beta14.json").read_text())
    assert SKAFFOLD["apiVersion"] == "skaffold/v4beta14"
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(SKAFFOLD)
    ]
    assert not errors, "\n".join(errors)


def artifact_var(image: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", image)


def test_skaffold_artifacts_are_the_one_dockerfile_with_each_component():
    artifacts = SKAFFOLD["build"]["artifacts"]
    assert {a["docker"]["dockerfile"] for a in artifacts} == {"Dockerfile"}
    assert sorted(a["docker"]["buildArgs"]["SERVICE"] for a in artifacts) == sorted(COMPONENTS)
    values = chart_values(None)
    prefix = values["default"]["image"]["repositoryPrefix"]
    for a in artifacts:
        component = a["docker"]["buildArgs"]["SERVICE"]
        assert a.get("context", ".") == "."
        # The same image name as the chart's default, so `helm install` after a local build works too.
        assert a["image"] == f"{prefix}{component}"


def test_skaffold_sets_each_components_image_from_its_artifact():
    values = chart_values(None)
    templates = RELEASE["setValueTemplates"]
    expected = {}
    for a in SKAFFOLD["build"]["artifacts"]:
        component = a["docker"]["buildArgs"]["SERVICE"]
        var = artifact_var(a["image"])
        expected[f"components.{component}.image.repository"] = f"{{{{.IMAGE_REPO_{var}}}}}"
        expected[f"components.{component}.image.tag"] = f"{{{{.IMAGE_TAG_{var}}}}}"
    assert templates == expected
    for key in templates:
        node = values
        *parents, leaf = key.split(".")
        for part in parents[:-1]:
            assert part in node, f"{key}: no {part} in values"
            node = node[part]
        # components.<c>.image may be absent in values.yaml (it inherits default.image),
        # but the key must be one the schema accepts.
        assert leaf in ("repository", "tag")
    schema = json.loads((CHART / "values.schema.json").read_text())
    image_props = schema["$defs"]["component"]["properties"]["image"]["properties"]
    assert {"repository", "tag"} <= set(image_props)


def test_skaffold_renders_with_its_values(tmp_path):
    """What skaffold deploys (its values files and image settings) renders and is valid."""
    files = list(RELEASE["valuesFiles"])
    for profile in SKAFFOLD["profiles"]:
        for patch in profile.get("patches", []):
            if patch["path"] == "/deploy/helm/releases/0/valuesFiles/-":
                files.append(patch["value"])
    sets = []
    for key in RELEASE["setValueTemplates"]:
        sets += ["--set", f"{key}={'abc123' if key.endswith('tag') else 'localhost/pizza-x'}"]
    args = [
        "template",
        RELEASE["name"],
        str(REPO / RELEASE["chartPath"]),
        "--namespace",
        RELEASE["namespace"],
        "--kube-version",
        "1.34.0",
    ]
    for f in files:
        assert (REPO / f).is_file(), f
        args += ["-f", str(REPO / f)]
    docs = parse_manifests(helm(*args, *sets).stdout)
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    (forward,) = SKAFFOLD["portForward"]
    assert forward["resourceType"] == "service" and forward["localPort"] == 8000
    assert forward["resourceName"] in services
    assert forward["namespace"] == RELEASE["namespace"]
    assert forward["port"] == services[forward["resourceName"]]["spec"]["ports"][0]["port"]
    webapp = services[forward["resourceName"]]
    assert webapp["spec"]["type"] == "NodePort" and webapp["spec"]["ports"][0]["nodePort"] == 30080
    images = {
        c["image"] for d in docs if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"localhost/pizza-x:abc123"}


def test_skaffold_profiles_do_not_push():
    profiles = {p["name"]: p for p in SKAFFOLD["profiles"]}
    for name in ("kind", "minikube"):
        patches = {p["path"]: p.get("value") for p in profiles[name]["patches"]}
        assert patches["/build/local/push"] is False, name
    assert profiles["kind"]["activation"] == [{"kubeContext": "kind-pizza"}]


def test_kind_config_publishes_the_webapp_nodeport():
    config = yaml.safe_load((REPO / "k8s" / "kind-config.yaml").read_text())
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4" and config["kind"] == "Cluster"
    mappings = [m for n in config["nodes"] for m in n.get("extraPortMappings", [])]
    assert {"containerPort": 30080, "hostPort": 8080}.items() <= mappings[0].items()
    assert f"kind-{config['name']}" == SKAFFOLD["profiles"][0]["activation"][0]["kubeContext"]


@pytest.mark.parametrize("name", ["dev", "production"])
def test_k8s_kafka_clusters_are_valid(name):
    docs = parse_manifests((REPO / "k8s" / "kafka" / f"{name}.yaml").read_text())
    pools = [d for d in docs if d["kind"] == "KafkaNodePool"]
    (kafka,) = [d for d in docs if d["kind"] == "Kafka"]
    for d in docs:
        errors = [e.message for e in crd_validator("kafka.strimzi.io", "v1", d["kind"]).iter_errors(d)]
        assert not errors, f"{d['kind']}/{d['metadata']['name']}: {errors}"
    assert kafka["metadata"]["name"] == chart_values(None)["strimzi"]["clusterName"]
    assert str(kafka["spec"]["kafka"]["version"]) == "4.3.1"
    config = kafka["spec"]["kafka"]["config"]
    roles = [r for p in pools for r in p["spec"]["roles"] for _ in range(p["spec"]["replicas"])]
    if name == "dev":
        (pool,) = pools
        assert pool["spec"]["replicas"] == 1 and sorted(pool["spec"]["roles"]) == ["broker", "controller"]
        assert pool["spec"]["storage"]["type"] == "ephemeral"
    else:
        assert roles.count("broker") == 3 and roles.count("controller") == 3
        assert all(p["spec"]["storage"]["type"] == "persistent-claim" for p in pools)
        assert config["default.replication.factor"] == 3 and config["min.insync.replicas"] == 2
        assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"


def test_production_values_fit_the_production_cluster():
    values = REPO / "k8s" / "values-production.yaml"
    docs = parse_manifests(helm(*template_args(values)).stdout)
    kafka = next(d for d in parse_manifests((REPO / "k8s/kafka/production.yaml").read_text()) if d["kind"] == "Kafka")
    listener_auth = {
        lst["port"]: lst.get("authentication", {}).get("type") for lst in kafka["spec"]["kafka"]["listeners"]
    }
    users = [d for d in docs if d["kind"] == "KafkaUser"]
    assert len(users) == len(COMPONENTS)
    for u in users:
        assert u["spec"]["authentication"]["type"] == listener_auth[9093]
    topics = [d for d in docs if d["kind"] == "KafkaTopic"]
    assert all(t["spec"]["replicas"] == 3 and t["spec"]["config"]["min.insync.replicas"] == 2 for t in topics)
    for d in docs:
        group, _, version = d["apiVersion"].rpartition("/")
        if group in ("kafka.strimzi.io", "keda.sh", "monitoring.coreos.com"):
            errors = [e.message for e in crd_validator(group, version, d["kind"]).iter_errors(d)]
            assert not errors, f"{d['kind']}/{d['metadata']['name']}: {errors}"


def test_kube_prometheus_stack_values_match_the_chart():
    kps = yaml.safe_load((REPO / "k8s" / "monitoring" / "kube-prometheus-stack-values.yaml").read_text())
    sidecar = kps["grafana"]["sidecar"]["dashboards"]
    chart = chart_values(None)["dashboards"]
    assert sidecar["enabled"] is True
    assert sidecar["label"] == chart["label"] and str(sidecar["labelValue"]) == chart["labelValue"]
    assert sidecar["folderAnnotation"] == chart["folderAnnotation"]
    monitoring = yaml.safe_load((REPO / "k8s" / "values-monitoring.yaml").read_text())
    assert monitoring["monitoring"]["labels"]["release"] == "kube-prometheus-stack"


def test_scripts_are_valid_bash():
    scripts = [
        *REPO.glob("k8s/*.sh"),
        *REPO.glob(".github/scripts/*.sh"),
        *REPO.glob("scripts/cluster/*.sh"),
        *REPO.glob("helm/*.sh"),
        *REPO.glob("scripts/images/**/*.sh"),
    ]
    assert len(scripts) > 8
    for script in scripts:
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{script}: {proc.stderr}"


def test_actionlint_passes():
    proc = subprocess.run([tool("actionlint"), "-no-color"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflows_cover_ci_and_e2e():
    ci = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())
    e2e = yaml.safe_load((REPO / ".github/workflows/e2e.yml").read_text())
    assert e2e["jobs"], "e2e.yml has no job"
    ci_text = (REPO / ".github/workflows/ci.yml").read_text()
    e2e_text = (REPO / ".github/workflows/e2e.yml").read_text()
    assert {"lint", "chart", "test", "images"} <= set(ci["jobs"])
    assert set(ci["jobs"]["images"]["strategy"]["matrix"]["service"]) == set(COMPONENTS)
    for needle in (
        "ruff check",
        "make test",
        "tests/chart",
        "fetch-schemas.sh",
        "setup-java",
        "docker/build-push-action",
    ):
        assert needle in ci_text, needle
    for needle in ("k8s/kind-up.sh", "skaffold run -p kind", "helm test pizza-shop", "if: failure()", "logs"):
        assert needle in e2e_text, needle
    # Every action is pinned to a version.
    for text in (ci_text, e2e_text):
        for uses in re.findall(r"uses:\s*(\S+)", text):
            assert re.search(r"@v\d|@[0-9a-f]{40}$", uses), uses


def test_release_workflow_publishes_images_and_chart_with_one_version():
    text = (REPO / ".github/workflows/release.yml").read_text()
    release = yaml.safe_load(text)
    # PyYAML reads the key "on" as True.
    assert release[True]["push"]["tags"], "released on version tags"
    images = release["jobs"]["images"]
    assert set(images["strategy"]["matrix"]["service"]) == set(COMPONENTS)
    (build,) = [s for s in images["steps"] if s.get("uses", "").startswith("docker/build-push-action@")]
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["sbom"] is True and build["with"]["provenance"] == "mode=max"
    assert build["with"]["push"] is True
    chart = release["jobs"]["chart"]
    assert chart["needs"] == "images"
    steps = "\n".join(s.get("run", "") for s in chart["steps"])
    assert "bash helm/package-chart.sh" in steps and "helm push" in steps and "oci://ghcr.io/" in steps
    for uses in re.findall(r"uses:\s*(\S+)", text):
        assert re.search(r"@v\d|@[0-9a-f]{40}$", uses), uses


def test_package_chart_sets_version_and_images(tmp_path):
    """What a release installs: version = appVersion = image tag, images from the release's registry."""
    env = {**os.environ, "PATH": f"{Path(tool('helm')).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", str(REPO / "helm/package-chart.sh"), "1.2.3", "ghcr.io/acme/pizza-", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    package = proc.stdout.strip()
    assert package.endswith("pizza-shop-1.2.3.tgz")
    meta = yaml.safe_load(helm("show", "chart", package).stdout)
    assert meta["version"] == meta["appVersion"] == "1.2.3"
    docs = parse_manifests(helm("template", "pizza-shop", package, "--namespace", "pizza").stdout)
    images = {
        c["image"] for d in docs if d["kind"] == "Deployment" for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == {f"ghcr.io/acme/pizza-{c}:1.2.3" for c in COMPONENTS}
    bad = subprocess.run(
        ["bash", str(REPO / "helm/package-chart.sh"), "v1.2", "x/", str(tmp_path)], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "SemVer" in bad.stderr


def test_skaffold_local_profile_builds_into_the_cluster_registry():
    """Profile local (the cluster of `make cluster`): podman builds pushed to its registry, each
    component's image set from its artifact, the chart pointed at the cluster's Kafka."""
    (local,) = [p for p in SKAFFOLD["profiles"] if p["name"] == "local"]
    assert local["activation"] == [{"kubeContext": "pizza"}]
    build = local["build"]
    assert build["local"]["push"] is True and build["insecureRegistries"] == ["localhost:5000"]
    names = {a["image"]: a for a in build["artifacts"]}
    assert set(names) == {f"localhost:5000/pizza/{c}" for c in COMPONENTS}
    for image, artifact in names.items():
        component = image.rsplit("/", 1)[1]
        assert artifact["custom"]["buildCommand"] == f"bash scripts/cluster/skaffold-build.sh {component}"
    patches = {p["path"]: p["value"] for p in local["patches"]}
    assert patches["/deploy/helm/releases/0/valuesFiles/-"] == "k8s/values-local.yaml"
    templates = patches["/deploy/helm/releases/0/setValueTemplates"]
    for image in names:
        var = artifact_var(image)
        component = image.rsplit("/", 1)[1]
        assert templates[f"components.{component}.image.repository"] == f"{{{{.IMAGE_REPO_{var}}}}}"
        assert templates[f"components.{component}.image.tag"] == f"{{{{.IMAGE_TAG_{var}}}}}"
    values = yaml.safe_load((REPO / "k8s/values-local.yaml").read_text())
    assert values["strimzi"]["enabled"] is False
    assert values["kafka"]["bootstrapServers"].startswith("kafka-0.kafka.kafka.svc")
