"""Invariants of every pod the chart makes, in every values set: restricted security
context, probes, resources, grace period, no service links, a writable /tmp."""

from __future__ import annotations

import shutil

import pytest
import yaml
from chart_helpers import CHART, COMPONENTS, RELEASE, helm, parse_manifests, template_args

# KAFKA_* variables the chart sets itself (each is read as a librdkafka property).
KAFKA_ENV = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISMS",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_LOCATION",
    "KAFKA_SSL_CERTIFICATE_LOCATION",
    "KAFKA_SSL_KEY_LOCATION",
}
SHUTDOWN_SECONDS = 20  # the services' bounded graceful shutdown (webapp: gunicorn graceful timeout)


def test_pod_security_and_hygiene(rendered):
    specs = rendered.pod_specs()
    assert specs
    for ident, pod in specs:
        where = f"{rendered.name} {ident}"
        assert pod["enableServiceLinks"] is False, where
        assert pod["automountServiceAccountToken"] is False, where
        assert pod["terminationGracePeriodSeconds"] >= SHUTDOWN_SECONDS + 5, where
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001 and psc["runAsGroup"] == 10001, where
        assert psc["fsGroup"] == 10001, where
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, where
        volumes = {v["name"]: v for v in pod["volumes"]}
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["runAsNonRoot"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{where}: resources.{kind}"
            tmp = [m for m in c["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1 and "emptyDir" in volumes[tmp[0]["name"]], f"{where}: /tmp must be an emptyDir"


def shop_deployments(rendered):
    """(component, Deployment) of the shop's services (not the load generator)."""
    for d in rendered.of_kind("Deployment"):
        component = d["metadata"]["labels"]["app.kubernetes.io/component"]
        if component in COMPONENTS:
            yield component, d


def test_probes(rendered):
    for component, d in shop_deployments(rendered):
        where = f"{rendered.name} {d['metadata']['name']}"
        (c,) = d["spec"]["template"]["spec"]["containers"]
        expected_ports = [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        if component == "status":
            expected_ports.insert(0, {"name": "api", "containerPort": 8081, "protocol": "TCP"})
        assert c["ports"] == expected_ports, where
        for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            assert c[probe]["httpGet"] == {"path": path, "port": "http"}, f"{where} {probe}"
        live = c["livenessProbe"]
        # Tolerant liveness: a stuck loop for a while, not a slow answer or a broker outage.
        assert live["periodSeconds"] * live["failureThreshold"] >= 60, where
        assert live["timeoutSeconds"] >= 3, where
        start = c["startupProbe"]
        budget = start["initialDelaySeconds"] + start["periodSeconds"] * start["failureThreshold"]
        assert budget >= (600 if component == "status" else 120), f"{where}: startup budget {budget}s"


def test_environment(rendered):
    values = rendered.values
    extra = {"KAFKA_" + k.replace(".", "_").upper() for k in values["kafka"].get("config", {})}
    for component, d in shop_deployments(rendered):
        where = f"{rendered.name} {component}"
        pod = d["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        (source,) = c["envFrom"]
        config_name = source["configMapRef"]["name"]
        config = rendered.get("ConfigMap", config_name)["data"]
        env = {e["name"]: e for e in c.get("env", [])}
        # Stable per replica: the pod's name, for transactional.id and group.instance.id.
        assert env["INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, where
        names = set(config) | set(env)
        assert not (set(config) & set(env)), where
        unknown = {n for n in names if n.startswith("KAFKA_")} - KAFKA_ENV - extra
        assert not unknown, f"{where}: KAFKA_* variables that are not librdkafka properties: {unknown}"
        assert config["HTTP_PORT"] == "8080" and config["LOG_FORMAT"] == "json", where
        assert config["KAFKA_BOOTSTRAP_SERVERS"], where
        if not values["strimzi"]["enabled"]:
            assert config["KAFKA_BOOTSTRAP_SERVERS"] == values["kafka"]["bootstrapServers"], where
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        if component == "status":
            assert config["STATUS_DB_PATH"] == "/tmp/status.db", where
            assert config["API_PORT"] == "8081", where
        if component in ("assemble", "bake", "delivery"):
            assert float(config["KITCHEN_TIME_SCALE"]) == float(values["kitchenTimeScale"]), where
        if component == "webapp":
            # status's query API on its own port, behind the Service port named "api".
            assert config["STATUS_URL"] == f"http://{RELEASE}-status:8081", where
            status_svc = rendered.get("Service", f"{RELEASE}-status")
            assert {"name": "api", "port": 8081, "targetPort": "api", "protocol": "TCP"} in status_svc["spec"]["ports"]
            tls = values["ingress"]["enabled"] and values["ingress"]["tls"]
            assert config.get("SESSION_COOKIE_SECURE") == ("true" if tls else None), where
            assert "emptyDir" in volumes[mounts[config["PROMETHEUS_MULTIPROC_DIR"]]], where
            ref = env["SECRET_KEY"]["valueFrom"]["secretKeyRef"]
            existing = values["secretKey"]["existingSecret"]
            if existing:
                assert ref == {"name": existing, "key": values["secretKey"]["key"]}, where
            else:
                secret = rendered.get("Secret", ref["name"])
                assert ref["key"] in secret["data"], where
        # Config changes roll the pods.
        annotations = d["spec"]["template"]["metadata"]["annotations"]
        assert len(annotations["checksum/config"]) == 64, where


def test_config_checksum_changes_with_the_config(tmp_path):
    def checksum(extra):
        path = tmp_path / "v.yaml"
        path.write_text(yaml.safe_dump(extra))
        docs = parse_manifests(helm(*template_args(path)).stdout)
        (d,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == f"{RELEASE}-bake"]
        return d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    assert checksum({"logLevel": "INFO"}) != checksum({"logLevel": "DEBUG"})


def test_services_pdbs_and_service_accounts(rendered):
    values = rendered.values
    for component in COMPONENTS:
        name = f"{RELEASE}-{component}"
        enabled = values["components"][component]["enabled"]
        present = [d for d in rendered.of_kind("Deployment") if d["metadata"]["name"] == name]
        assert bool(present) == enabled, f"{rendered.name}: {component}"
        if not enabled:
            continue
        svc = rendered.get("Service", name)
        selector = present[0]["spec"]["selector"]["matchLabels"]
        assert svc["spec"]["selector"] == selector
        assert svc["spec"]["ports"][0]["targetPort"] == "http"
        pdb_on = values["components"][component].get("pdb", {}).get("enabled", values["default"]["pdb"]["enabled"])
        pdbs = [p for p in rendered.of_kind("PodDisruptionBudget") if p["metadata"]["name"] == name]
        assert bool(pdbs) == pdb_on, f"{rendered.name}: {component} PDB"
        if pdbs:
            assert pdbs[0]["spec"]["selector"]["matchLabels"] == selector
        for sa in rendered.of_kind("ServiceAccount"):
            assert sa["automountServiceAccountToken"] is False


def test_helm_test_pod_places_an_order():
    from chart_helpers import render

    r = render(None)
    (pod,) = r.of_kind("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (c,) = pod["spec"]["containers"]
    assert c["command"][0] == "python3"
    deploy = r.get("Deployment", f"{RELEASE}-webapp")
    assert c["image"] == deploy["spec"]["template"]["spec"]["containers"][0]["image"]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["WEBAPP_URL"] == f"http://{RELEASE}-webapp:8080"
    assert env["EXPECT_STATUS"] == "400"
    # The script is a release resource, named apart from the pod: `helm uninstall` removes it
    # and `helm test --logs` (which reads a pod named after each test hook) prints one log.
    cm = r.get("ConfigMap", pod["spec"]["volumes"][0]["configMap"]["name"])
    assert cm["metadata"]["name"] != pod["metadata"]["name"]
    assert "helm.sh/hook" not in cm["metadata"].get("annotations", {})
    script = cm["data"]["place_order.py"]
    assert script == (CHART / "files" / "test" / "place_order.py").read_text().rstrip("\n")
    compile(script, "place_order.py", "exec")
    for needle in ("/api/login", "/api/orders", "application/json", "HTTPCookieProcessor", "EXPECT_STATUS"):
        assert needle in script


def test_dashboards_and_rules_from_files(tmp_path):
    """Every files/dashboards/*.json becomes a labelled ConfigMap; every rules file feeds the PrometheusRule."""
    chart = tmp_path / "pizza-shop"
    shutil.copytree(CHART, chart)
    dashboards = chart / "files" / "dashboards"
    dashboards.mkdir(parents=True, exist_ok=True)
    (dashboards / "zz_chart_test.json").write_text('{"title": "chart test", "panels": []}')
    rules = chart / "files" / "prometheus-rules"
    rules.mkdir(parents=True, exist_ok=True)
    (rules / "zz-list-form.yaml").write_text(
        "- name: chart-test-list\n  rules:\n    - record: a:b\n      expr: vector(1)\n"
    )
    (rules / "zz-map-form.yaml").write_text(
        "groups:\n  - name: chart-test-map\n    rules:\n      - record: c:d\n        expr: vector(1)\n"
    )
    values = tmp_path / "v.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "monitoring": {"enabled": True, "labels": {"release": "kps"}},
                "dashboards": {
                    "enabled": True,
                    "label": "my_dashboard",
                    "labelValue": "yes",
                    "folder": "Shop",
                    "folderAnnotation": "grafana_folder",
                },
            }
        )
    )
    docs = parse_manifests(helm(*template_args(values, chart=chart)).stdout)
    cms = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get("my_dashboard") == "yes"]
    assert len(cms) == len(list(dashboards.glob("*.json")))
    (mine,) = [d for d in cms if "zz_chart_test.json" in d["data"]]
    assert mine["metadata"]["annotations"]["grafana_folder"] == "Shop"
    assert mine["data"]["zz_chart_test.json"] == '{"title": "chart test", "panels": []}'
    (rule,) = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert rule["metadata"]["labels"]["release"] == "kps"
    names = [g["name"] for g in rule["spec"]["groups"]]
    assert "chart-test-list" in names and "chart-test-map" in names
    expected = 0
    for path in rules.glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        expected += len(doc["groups"] if isinstance(doc, dict) else doc)
    assert len(names) == expected
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert monitor["metadata"]["labels"]["release"] == "kps"


def test_dashboards_and_rules_render_without_files(tmp_path):
    chart = tmp_path / "pizza-shop"
    shutil.copytree(CHART, chart, ignore=shutil.ignore_patterns("dashboards", "prometheus-rules"))
    values = tmp_path / "v.yaml"
    values.write_text(yaml.safe_dump({"monitoring": {"enabled": True}, "dashboards": {"enabled": True}}))
    docs = parse_manifests(helm(*template_args(values, chart=chart)).stdout)
    assert not [d for d in docs if d["kind"] == "PrometheusRule"]
    assert not [d for d in docs if d["kind"] == "ConfigMap" and "grafana_dashboard" in d["metadata"].get("labels", {})]
    assert [d for d in docs if d["kind"] == "ServiceMonitor"]


@pytest.mark.parametrize(
    ("disabled", "expected"),
    [
        ((), "400"),
        (("delivery",), "300"),
        (("bake",), "200"),
        (("bake", "delivery"), "200"),
        (("assemble",), "100"),
        (("status",), "placed"),
    ],
)
def test_helm_test_expects_what_the_enabled_components_can_reach(disabled, expected):
    """With a kitchen stage disabled (the plain-bootstrap example disables bake) the order stops
    where that stage would take it over: the test waits for that status, not for a delivery
    that never comes."""
    sets = [arg for c in disabled for arg in ("--set", f"components.{c}.enabled=false")]
    docs = parse_manifests(helm(*template_args(None, *sets)).stdout)
    (pod,) = [d for d in docs if d["kind"] == "Pod"]
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert env["EXPECT_STATUS"] == expected


def test_every_stage_keeps_serving_through_a_drain():
    """By default two replicas each and a PodDisruptionBudget allowing one down: a drain or an
    eviction never takes a whole stage away."""
    from chart_helpers import render

    r = render(None)
    for component in COMPONENTS:
        d = r.get("Deployment", f"{RELEASE}-{component}")
        assert d["spec"]["replicas"] == 2, component
        pdb = r.get("PodDisruptionBudget", f"{RELEASE}-{component}")
        assert pdb["spec"] == {"maxUnavailable": 1, "selector": d["spec"]["selector"]}, component


def test_kitchen_time_scale_accepts_what_set_passes():
    """`helm upgrade --set kitchenTimeScale=0.1` gives the schema the string "0.1"."""
    docs = parse_manifests(helm(*template_args(None, "--set", "kitchenTimeScale=0.1")).stdout)
    (config,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == f"{RELEASE}-bake-env"]
    assert config["data"]["KITCHEN_TIME_SCALE"] == "0.1"
    rejected = helm(*template_args(None, "--set", "kitchenTimeScale=fast"), check=False)
    assert rejected.returncode != 0 and "kitchenTimeScale" in rejected.stderr
