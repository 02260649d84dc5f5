"""Strimzi KafkaUser ACLs to broker AclBindings, and make run's ACLs (from KAFKA_USAGE) against the
chart's (plain calls and one `helm template`: no broker)."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AclOperation, AclPermissionType, ResourcePatternType, ResourceType

from kafka_common.shop.components import NAMES as SHOP_COMPONENTS
from local_kafka.acls import acl_bindings, shop_usage, usage_acls


def test_a_kafka_user_acl_becomes_one_binding_per_operation():
    acls = [
        {
            "resource": {"type": "transactionalId", "name": "pizza-bake-", "patternType": "prefix"},
            "operations": ["Write", "Describe"],
        },
        {"resource": {"type": "cluster"}, "operations": ["IdempotentWrite"], "type": "deny", "host": "10.0.0.1"},
    ]
    got = {
        (b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type)
        for b in acl_bindings("pizza-shop-bake", acls)
    }
    assert got == {
        (
            ResourceType.TRANSACTIONAL_ID,
            "pizza-bake-",
            ResourcePatternType.PREFIXED,
            "User:pizza-shop-bake",
            "*",
            AclOperation.WRITE,
            AclPermissionType.ALLOW,
        ),
        (
            ResourceType.TRANSACTIONAL_ID,
            "pizza-bake-",
            ResourcePatternType.PREFIXED,
            "User:pizza-shop-bake",
            "*",
            AclOperation.DESCRIBE,
            AclPermissionType.ALLOW,
        ),
        (
            ResourceType.BROKER,
            "kafka-cluster",
            ResourcePatternType.LITERAL,
            "User:pizza-shop-bake",
            "10.0.0.1",
            AclOperation.IDEMPOTENT_WRITE,
            AclPermissionType.DENY,
        ),
    }


def test_an_unknown_operation_is_an_error_not_a_missing_acl():
    with pytest.raises(KeyError):
        acl_bindings("u", [{"resource": {"type": "topic", "name": "t"}, "operations": ["Reed"]}])


@pytest.mark.parametrize("component", SHOP_COMPONENTS)
def test_make_runs_acls_are_the_charts(component, chart_users):
    def canonical(acls):
        return sorted(
            (
                a["resource"]["type"],
                a["resource"]["name"],
                a["resource"].get("patternType", "literal"),
                tuple(sorted(a["operations"])),
            )
            for a in acls
        )

    assert canonical(usage_acls(shop_usage(component))) == canonical(chart_users[component].acls)
