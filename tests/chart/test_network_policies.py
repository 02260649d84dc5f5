"""NetworkPolicies: webapp open on its port; every other http port only from the
scrapers; status's api port only from the webapp and the helm test pod; egress only
to DNS, Kafka (the ports kafka.bootstrapServers names, without Strimzi) and the
webapp to status's api port."""

from __future__ import annotations

from chart_helpers import CI_VALUES, COMPONENTS, RELEASE, render


def selector(component):
    return {
        "matchLabels": {
            "app.kubernetes.io/name": "pizza-shop",
            "app.kubernetes.io/instance": RELEASE,
            "app.kubernetes.io/component": component,
        }
    }


def policies(r):
    return {p["metadata"]["labels"]["app.kubernetes.io/component"]: p for p in r.of_kind("NetworkPolicy")}


def test_defaults():
    r = render(None)
    nps = policies(r)
    assert set(nps) == set(COMPONENTS)
    metrics_from = r.values["networkPolicy"]["metricsFrom"]
    assert metrics_from == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    for component, np in nps.items():
        spec = np["spec"]
        assert spec["podSelector"] == selector(component)
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        ingress = spec["ingress"][0]
        assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]
        if component == "webapp":
            assert "from" not in ingress, "the webapp is open to anyone on its port"
        else:
            assert ingress["from"] == metrics_from
        if component == "status":
            # The query API: only the webapp and the helm test pod, not the scrapers.
            assert spec["ingress"][1:] == [
                {
                    "ports": [{"port": "api", "protocol": "TCP"}],
                    "from": [{"podSelector": selector("webapp")}, {"podSelector": selector("test")}],
                }
            ]
        else:
            assert len(spec["ingress"]) == 1
        egress = spec["egress"]
        dns, kafka = egress[0], egress[1]
        assert {p["port"] for p in dns["ports"]} == {53}
        assert {p["protocol"] for p in dns["ports"]} == {"UDP", "TCP"}
        assert {p["port"] for p in kafka["ports"]} == {9092, 9093}
        assert kafka["to"] == [
            {
                "podSelector": {
                    "matchLabels": {
                        "strimzi.io/cluster": "pizza-kafka",
                        "strimzi.io/kind": "Kafka",
                        "strimzi.io/name": "pizza-kafka-kafka",
                    }
                }
            }
        ]
        if component == "webapp":
            assert egress[2:] == [
                {"ports": [{"port": "api", "protocol": "TCP"}], "to": [{"podSelector": selector("status")}]}
            ]
        else:
            assert len(egress) == 2


def test_helm_test_pod_matches_the_selector_status_allows():
    r = render(None)
    (pod,) = r.of_kind("Pod")
    labels = pod["metadata"]["labels"]
    assert selector("test")["matchLabels"].items() <= labels.items()


def test_restricted_webapp_and_external_kafka():
    by_name = {p.stem: render(p) for p in CI_VALUES}
    tls = by_name["tls-createcluster-podmonitor-values"]
    (ingress,) = policies(tls)["webapp"]["spec"]["ingress"]
    assert ingress["from"][0] == tls.values["networkPolicy"]["webappFrom"][0]
    assert {"podSelector": selector("test")} in ingress["from"]
    plain = by_name["plain-bootstrap-values"]
    for np in policies(plain).values():
        kafka = np["spec"]["egress"][1]
        assert kafka["to"] == [{"ipBlock": {"cidr": "10.20.0.0/16"}}]
        assert kafka["ports"] == [{"port": 9092, "protocol": "TCP"}]
        ingress = np["spec"]["ingress"][0]
        assert "from" not in ingress, "metricsFrom: [] opens the http port to any scraper"
    assert not by_name["scram-tls-external-values"].of_kind("NetworkPolicy")


def test_kafka_egress_follows_the_bootstrap_ports_without_strimzi():
    """A broker on a port other than 9092/9093 is reachable: the egress rule takes the ports
    that kafka.bootstrapServers names (each once)."""
    from chart_helpers import helm, parse_manifests, template_args

    out = helm(
        *template_args(
            None,
            "--set",
            "strimzi.enabled=false",
            "--set",
            r"kafka.bootstrapServers=k-0.k.svc:19092\, k-1.k.svc:19093\,k-2.k.svc:19092",
        )
    ).stdout
    nps = [d for d in parse_manifests(out) if d["kind"] == "NetworkPolicy"]
    assert nps
    for np in nps:
        kafka = np["spec"]["egress"][1]
        assert kafka["ports"] == [{"port": 19092, "protocol": "TCP"}, {"port": 19093, "protocol": "TCP"}]
        assert "to" not in kafka
    no_port = helm(
        *template_args(None, "--set", "strimzi.enabled=false", "--set", "kafka.bootstrapServers=kafka"), check=False
    )
    assert no_port.returncode != 0 and "has no port" in no_port.stderr
