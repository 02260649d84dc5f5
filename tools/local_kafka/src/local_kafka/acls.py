"""Kafka ACLs in the shape of a Strimzi KafkaUser, and their translation for a real authorizer.

A KafkaUser's spec.authorization.acls (type: simple) is a list of

    {"resource": {"type": "topic"|"group"|"transactionalId"|"cluster", "name": ..., "patternType":
     "literal"|"prefix"}, "operations": ["Read", ...], "type": "allow"|"deny", "host": "*"}

acl_bindings() turns such a list into the broker's AclBindings for one user, so
the chart's rendered KafkaUsers can be applied to a local broker as they are.
usage_acls() makes the same list from a service's KAFKA_USAGE, as the chart's
template does (tests/chart checks the two agree): `make run` with LOCAL_KAFKA_AUTH=scram
uses it without helm.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

from kafka_common.shop import components
from kafka_common.usage import KafkaUsage

RESOURCE_TYPES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactionalId": ResourceType.TRANSACTIONAL_ID,
    "cluster": ResourceType.BROKER,
}
PATTERN_TYPES = {"literal": ResourcePatternType.LITERAL, "prefix": ResourcePatternType.PREFIXED}
PERMISSIONS = {"allow": AclPermissionType.ALLOW, "deny": AclPermissionType.DENY}


def _operation(name: str) -> AclOperation:
    # Strimzi spells operations in CamelCase (IdempotentWrite), the admin API in UPPER_SNAKE.
    return AclOperation[re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()]


def acl_bindings(user: str, acls: Iterable[Mapping]) -> list[AclBinding]:
    """One AclBinding per (resource, operation) of a KafkaUser's ACL list, for principal User:<user>."""
    # A topic both read and written (pizza-logouts) is described by two ACLs: one binding each.
    bindings: dict[tuple, AclBinding] = {}
    for acl in acls:
        resource = acl["resource"]
        kind = RESOURCE_TYPES[resource["type"]]
        name = "kafka-cluster" if kind is ResourceType.BROKER else resource["name"]
        pattern = PATTERN_TYPES[resource.get("patternType", "literal")]
        for operation in acl["operations"]:
            key = (kind, name, pattern, acl.get("host", "*"), operation, acl.get("type", "allow"))
            bindings.setdefault(
                key,
                AclBinding(
                    kind,
                    name,
                    pattern,
                    f"User:{user}",
                    acl.get("host", "*"),
                    _operation(operation),
                    PERMISSIONS[acl.get("type", "allow")],
                ),
            )
    return list(bindings.values())


def usage_acls(usage) -> list[dict]:
    """A service's ACLs from its KafkaUsage, the way the chart's KafkaUser template makes them."""

    def acl(kind: str, name: str, operations: list[str], pattern: str = "literal") -> dict:
        return {"resource": {"type": kind, "name": name, "patternType": pattern}, "operations": operations}

    acls = [acl("topic", t, ["Read", "Describe"]) for t in usage.consumes]
    acls += [acl("topic", t, ["Write", "Describe"]) for t in usage.writes]
    if usage.group:
        acls.append(acl("group", usage.group, ["Read"]))
    if usage.transactional_id_prefix:
        acls.append(acl("transactionalId", usage.transactional_id_prefix, ["Write", "Describe"], "prefix"))
    return acls


def shop_usage(component: str) -> KafkaUsage:
    """The KAFKA_USAGE a shop service declares in its code."""
    return components.BY_NAME[component].kafka_usage()


def add_shop_users(kafka, components: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each shop service as its own SCRAM user (named after it) with the ACLs of its KAFKA_USAGE,
    on a LocalKafka with auth; returns each one's KAFKA_* environment."""
    env = {}
    for component in components:
        kafka.add_user(component, usage_acls(shop_usage(component)))
        env[component] = kafka.client_env(component)
    return env
