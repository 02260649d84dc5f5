"""The chart's Kafka resources follow the code: KafkaUser ACLs are exactly what each
service's KAFKA_USAGE declares, KafkaTopics are kafka_common.shop.topics.TOPICS, and
KEDA scales each consumer group on its own topics, capped at the partition count."""

from __future__ import annotations

import sys
from collections import Counter

import pytest
from chart_helpers import CI_VALUES, COMPONENTS, NAMESPACE, RELEASE, REPO, render

from local_kafka.acls import shop_usage

for _src in sorted(REPO.glob("services/*/src")):
    if str(_src) not in sys.path:
        sys.path.append(str(_src))

from kafka_common.shop import topics as kafka_topics  # noqa: E402


# Where each service declares KAFKA_USAGE: its service module; the webapp's is its server.
def usage(component: str):
    return shop_usage(component)


def expected_acls(component: str) -> Counter:
    """The ACLs a KafkaUser must have, derived from the service's KafkaUsage."""
    u = usage(component)
    acls = Counter()
    for topic in u.consumes:
        acls[("topic", topic, "literal", frozenset({"Read", "Describe"}))] += 1
    for topic in u.writes:
        acls[("topic", topic, "literal", frozenset({"Write", "Describe"}))] += 1
    if u.group:
        acls[("group", u.group, "literal", frozenset({"Read"}))] += 1
    if u.transactional_id_prefix:
        acls[("transactionalId", u.transactional_id_prefix, "prefix", frozenset({"Write", "Describe"}))] += 1
    return acls


def rendered_acls(user: dict) -> Counter:
    acls = Counter()
    for acl in user["spec"]["authorization"]["acls"]:
        assert acl.get("type", "allow") == "allow", acl
        assert acl.get("host", "*") == "*", acl
        res = acl["resource"]
        acls[(res["type"], res["name"], res.get("patternType", "literal"), frozenset(acl["operations"]))] += 1
    return acls


def with_users():
    cases = [p for p in CI_VALUES if render(p).of_kind("KafkaUser")]
    assert cases, "no ci/*.yaml renders KafkaUsers"
    return cases


@pytest.mark.parametrize("component", COMPONENTS)
@pytest.mark.parametrize("values", with_users(), ids=lambda p: p.stem)
def test_kafka_user_acls_are_exactly_the_codes_usage(values, component):
    r = render(values)
    user = r.get("KafkaUser", f"{RELEASE}-{component}")
    assert user["metadata"]["labels"]["strimzi.io/cluster"] == r.values["strimzi"]["clusterName"]
    assert user["spec"]["authentication"]["type"] == r.values["kafka"]["auth"]["type"]
    assert user["spec"]["authorization"]["type"] == "simple"
    assert rendered_acls(user) == expected_acls(component)


@pytest.mark.parametrize("component", COMPONENTS)
def test_group_membership_follows_the_code(component):
    u = usage(component)
    kafka = render(CI_VALUES[0]).values["components"][component]["kafka"]
    assert kafka["joinsGroup"] == bool(u.group and not u.assigns_partitions)


def test_usage_is_what_the_design_says():
    """A sanity anchor for the derivation above (DESIGN.md "Kafka contracts")."""
    assert usage("status").assigns_partitions and not usage("status").writes
    # The webapp writes orders, and reads its logouts whole (assign(); the group id only finds a coordinator).
    assert usage("webapp").assigns_partitions and usage("webapp").consumes == (kafka_topics.PIZZA_LOGOUTS,)
    assert usage("webapp").writes == (kafka_topics.PIZZA_ORDERED, kafka_topics.PIZZA_LOGOUTS)
    for c in ("assemble", "bake", "delivery"):
        assert usage(c).group == f"pizza-{c}"
        assert usage(c).transactional_id_prefix == f"pizza-{c}-"
        assert kafka_topics.PIZZA_DLQ in usage(c).writes


@pytest.mark.parametrize("values", with_users(), ids=lambda p: p.stem)
def test_pods_connect_as_their_own_user(values):
    r = render(values)
    auth = r.values["kafka"]["auth"]["type"]
    for component in COMPONENTS:
        if not r.values["components"][component]["enabled"]:
            continue
        user = f"{RELEASE}-{component}"
        pod = r.get("Deployment", user)["spec"]["template"]["spec"]
        container = pod["containers"][0]
        config = r.get("ConfigMap", f"{user}-env")["data"]
        env = {e["name"]: e for e in container.get("env", [])}
        volumes = {v["name"]: v for v in pod["volumes"]}
        if auth == "scram-sha-512":
            assert config["KAFKA_SASL_MECHANISMS"] == "SCRAM-SHA-512"
            assert config["KAFKA_SASL_USERNAME"] == user
            assert env["KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": user, "key": "password"}
            assert config["KAFKA_SECURITY_PROTOCOL"] in ("SASL_PLAINTEXT", "SASL_SSL")
        else:
            assert config["KAFKA_SECURITY_PROTOCOL"] == "SSL"
            assert volumes["kafka-user"]["secret"]["secretName"] == user
            mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
            assert config["KAFKA_SSL_CERTIFICATE_LOCATION"] == mounts["kafka-user"] + "/user.crt"
            assert config["KAFKA_SSL_KEY_LOCATION"] == mounts["kafka-user"] + "/user.key"
        if config["KAFKA_SECURITY_PROTOCOL"].endswith("SSL"):
            cluster = r.values["strimzi"]["clusterName"]
            assert volumes["kafka-ca"]["secret"]["secretName"] == f"{cluster}-cluster-ca-cert"
            assert config["KAFKA_BOOTSTRAP_SERVERS"].startswith(f"{cluster}-kafka-bootstrap")
            assert config["KAFKA_BOOTSTRAP_SERVERS"].endswith(":9093")
        else:
            assert config["KAFKA_BOOTSTRAP_SERVERS"].endswith(":9092")


def test_no_users_without_auth():
    r = render(None)
    assert r.values["kafka"]["auth"]["type"] == "none"
    assert not r.of_kind("KafkaUser")
    config = r.get("ConfigMap", f"{RELEASE}-assemble-env")["data"]
    assert config["KAFKA_BOOTSTRAP_SERVERS"] == "pizza-kafka-kafka-bootstrap:9092"
    assert "KAFKA_SECURITY_PROTOCOL" not in config


def test_kafka_topics_are_kafka_commons(rendered):
    if not rendered.values["strimzi"]["enabled"] or not rendered.values["strimzi"]["createTopics"]:
        assert not rendered.of_kind("KafkaTopic")
        return
    t = rendered.values["topics"]
    kt = {d["spec"]["topicName"]: d for d in rendered.of_kind("KafkaTopic")}
    assert set(kt) == {spec.name for spec in kafka_topics.TOPICS}
    for spec in kafka_topics.TOPICS:
        doc = kt[spec.name]
        assert doc["metadata"]["name"] == spec.name
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == rendered.values["strimzi"]["clusterName"]
        assert doc["spec"]["partitions"] == (spec.partitions or t["partitions"])
        assert doc["spec"]["replicas"] == t["replicas"]
        config = doc["spec"]["config"]
        assert config["min.insync.replicas"] == t["minInsyncReplicas"]
        for key, value in spec.config.items():
            assert str(config[key]) == value, f"{spec.name} {key}"


def test_default_partitions_match_the_library():
    assert render(None).values["topics"]["partitions"] == kafka_topics.DEFAULT_PARTITIONS


def test_components_only_name_known_topics():
    names = {spec.name for spec in kafka_topics.TOPICS}
    values = render(None).values
    assert set(values["topics"]["items"]) == names
    for component in COMPONENTS:
        k = values["components"][component]["kafka"]
        assert set(k["consumes"]) | set(k["writes"]) <= names


def with_keda():
    cases = [p for p in CI_VALUES if render(p).of_kind("ScaledObject")]
    assert cases, "no ci/*.yaml renders a ScaledObject"
    return cases


@pytest.mark.parametrize("values", with_keda(), ids=lambda p: p.stem)
def test_keda_scales_each_group_on_its_topics_up_to_the_partition_count(values):
    r = render(values)
    partitions = r.values["topics"]["partitions"]
    caps = []
    for so in r.of_kind("ScaledObject"):
        component = so["metadata"]["labels"]["app.kubernetes.io/component"]
        u = usage(component)
        assert u.group and not u.assigns_partitions, f"{component} has no consumer group to scale on"
        assert so["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-{component}"
        assert 1 <= so["spec"]["maxReplicaCount"] <= partitions
        caps.append(so["spec"]["maxReplicaCount"])
        triggers = so["spec"]["triggers"]
        assert sorted(t["metadata"]["topic"] for t in triggers) == sorted(u.consumes)
        for t in triggers:
            assert t["type"] == "kafka"
            assert t["metadata"]["consumerGroup"] == u.group
            config = r.get("ConfigMap", f"{RELEASE}-{component}-env")["data"]
            assert t["metadata"]["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
            if r.values["kafka"]["auth"]["type"] != "none":
                auth = r.get("TriggerAuthentication", t["authenticationRef"]["name"])
                params = {p["parameter"] for p in auth["spec"].get("secretTargetRef", [])}
                params |= {p["parameter"] for p in auth["spec"].get("env", [])}
                if r.values["kafka"]["auth"]["type"] == "scram-sha-512":
                    assert t["metadata"]["sasl"] == "scram_sha512"
                    assert {"username", "password"} <= params
                else:
                    assert t["metadata"]["tls"] == "enable"
                    assert {"ca", "cert", "key"} <= params
        # A scaled Deployment leaves replicas to KEDA.
        assert "replicas" not in r.get("Deployment", f"{RELEASE}-{component}")["spec"]
    assert partitions in caps, "no ScaledObject goes up to the partition count: the cap is not exercised"


def test_namespace_is_used_for_nothing_hard_coded():
    # Resources carry no namespace (helm sets it), except dashboards when asked to.
    for values in CI_VALUES:
        for d in render(values).docs:
            ns = d["metadata"].get("namespace")
            assert ns in (None, NAMESPACE, render(values).values["dashboards"]["namespace"]), d["metadata"]
