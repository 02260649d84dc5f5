"""The load generator is an optional component of the same generic templates: off by
default; when on, a Deployment that drives the webapp's Service and nothing else (no
Service, no probes, no Kafka, egress only to DNS and the webapp)."""

from __future__ import annotations

from chart_helpers import CI_VALUES, RELEASE, Rendered, helm, parse_manifests, render, template_args

NAME = f"{RELEASE}-loadgen"


def with_loadgen() -> Rendered:
    (values,) = [p for p in CI_VALUES if render(p).values["components"]["loadgen"]["enabled"]]
    return render(values)


def objects_of(rendered: Rendered, name: str = NAME) -> set[str]:
    return {d["kind"] for d in rendered.docs if d["metadata"]["name"] in (name, f"{name}-env")}


def test_off_by_default() -> None:
    r = render(None)
    assert r.values["components"]["loadgen"]["enabled"] is False
    assert not objects_of(r)
    assert not [d for d in r.docs if d["metadata"]["labels"].get("app.kubernetes.io/component") == "loadgen"]


def test_a_deployment_that_drives_the_webapp_service() -> None:
    r = with_loadgen()
    assert objects_of(r) == {"ServiceAccount", "ConfigMap", "Deployment", "NetworkPolicy"}
    pod = r.get("Deployment", NAME)["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"].endswith("pizza-loadgen:dev")
    for key in ("ports", "startupProbe", "livenessProbe", "readinessProbe"):
        assert key not in c, key
    config = r.get("ConfigMap", f"{NAME}-env")["data"]
    webapp = r.get("Service", f"{RELEASE}-webapp")
    (http,) = [p for p in webapp["spec"]["ports"] if p["name"] == "http"]
    assert config["TARGET_URL"] == f"http://{RELEASE}-webapp:{http['port']}"
    assert int(config["LOCUST_USERS"]) == int(r.values["components"]["loadgen"]["env"]["LOCUST_USERS"])
    assert int(config["LOCUST_SPAWN_RATE"]) >= 1
    names = set(config) | {e["name"] for e in c.get("env", [])}
    assert not [n for n in names if n.startswith("KAFKA_")], "the load generator does not use Kafka"
    # Not scraped: it serves no metrics.
    (monitor,) = r.of_kind("ServiceMonitor")
    assert "loadgen" not in monitor["spec"]["selector"]["matchExpressions"][0]["values"]


def test_network_policy_lets_it_reach_only_dns_and_the_webapp() -> None:
    r = with_loadgen()
    by_component = {p["metadata"]["labels"]["app.kubernetes.io/component"]: p for p in r.of_kind("NetworkPolicy")}
    spec = by_component["loadgen"]["spec"]
    assert spec["ingress"] == []
    dns, *rest = spec["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    webapp_selector = r.get("Deployment", f"{RELEASE}-webapp")["spec"]["selector"]
    assert rest == [{"ports": [{"port": "http", "protocol": "TCP"}], "to": [{"podSelector": webapp_selector}]}]
    # The webapp lets it in when its port is restricted (webappFrom set).
    docs = parse_manifests(
        helm(
            *template_args(
                None,
                "--set",
                "components.loadgen.enabled=true",
                "--set",
                "networkPolicy.webappFrom[0].namespaceSelector.matchLabels.team=shop",
            )
        ).stdout
    )
    (webapp,) = [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == f"{RELEASE}-webapp"]
    loadgen_selector = next(d for d in docs if d["metadata"]["name"] == NAME and d["kind"] == "Deployment")
    assert {"podSelector": loadgen_selector["spec"]["selector"]} in webapp["spec"]["ingress"][0]["from"]
