"""Bad values are rejected by `helm template` with a message that names the problem."""

from __future__ import annotations

import pytest
import yaml
from chart_helpers import helm, template_args

BAD_VALUES = {
    "wrong type": (
        {"components": {"bake": {"replicas": "two"}}},
        ["/components/bake/replicas", "got string, want integer"],
    ),
    "unknown component": (
        {"components": {"pizzaiolo": {"enabled": True}}},
        ["/components", "additional properties 'pizzaiolo' not allowed"],
    ),
    "misspelled key in default": (
        {"default": {"resource": {"limits": {"memory": "1Gi"}}}},
        ["/default", "additional properties 'resource' not allowed"],
    ),
    "misspelled key in a component": (
        {"components": {"webapp": {"replica": 3}}},
        ["/components/webapp", "additional properties 'replica' not allowed"],
    ),
    "bad auth type": (
        {"kafka": {"auth": {"type": "plain"}}},
        ["/kafka/auth/type", "'none', 'scram-sha-512', 'tls'"],
    ),
    "autoscaling above the partitions": (
        {"components": {"bake": {"autoscaling": {"enabled": True, "maxReplicas": 8}}}},
        ["components.bake.autoscaling.maxReplicas (8) is above topics.partitions (6)"],
    ),
    "autoscaling above fewer partitions": (
        {"topics": {"partitions": 3}, "components": {"delivery": {"autoscaling": {"enabled": True}}}},
        ["components.delivery.autoscaling.maxReplicas (6) is above topics.partitions (3)"],
    ),
    "autoscaling without a consumer group": (
        {"components": {"status": {"autoscaling": {"enabled": True, "maxReplicas": 2}}}},
        ["components.status.autoscaling", "needs a consumer group"],
    ),
    "missing bootstrap servers without Strimzi": (
        {"strimzi": {"enabled": False}},
        ["/kafka/bootstrapServers", "minLength"],
    ),
    "missing required kafka usage of a component": (
        {"components": {"bake": {"kafka": None}}},
        ["/components/bake", "missing property 'kafka'"],
    ),
    "bad monitor kind": (
        {"monitoring": {"enabled": True, "kind": "Probe"}},
        ["/monitoring/kind", "'ServiceMonitor', 'PodMonitor'"],
    ),
    "negative replicas": (
        {"components": {"webapp": {"replicas": -1}}},
        ["/components/webapp/replicas", "minimum"],
    ),
    "bad probe path": (
        {"default": {"probes": {"liveness": {"path": "healthz"}}}},
        ["/default/probes/liveness/path", "does not match pattern"],
    ),
    "unknown topic in a component's usage": (
        {"components": {"bake": {"kafka": {"consumes": ["pizza-burnt"]}}}},
        ["components.bake.kafka: topic pizza-burnt is not in topics.items"],
    ),
    "createCluster without Strimzi": (
        {"strimzi": {"enabled": False, "createCluster": True}, "kafka": {"bootstrapServers": "k:9092"}},
        ["/strimzi/enabled", "true"],
    ),
    "both PDB bounds": (
        {"components": {"webapp": {"pdb": {"minAvailable": 1}}}},
        ["components.webapp.pdb: set only one of maxUnavailable and minAvailable"],
    ),
    "kafka usage in default": (
        {"default": {"kafka": {"consumes": [], "writes": [], "joinsGroup": False}}},
        ["/default/kafka", "'not' failed"],
    ),
    "env entry neither a value nor a source": (
        {"components": {"loadgen": {"env": {"TARGET_URL": {"value": "http://x"}}}}},
        ["/components/loadgen/env/TARGET_URL", "missing property 'valueFrom'"],
    ),
    "volume without a mount path": (
        {"components": {"webapp": {"volumes": {"cache": {"emptyDir": {}}}}}},
        ["/components/webapp/volumes/cache", "missing property 'mountPath'"],
    ),
    "unknown client of a port": (
        {"components": {"status": {"clients": {"api": ["webapp", "pizzaiolo"]}}}},
        ["/components/status/clients/api/1", "value must be one of"],
    ),
    "kitchen replicas above the partitions": (
        {"components": {"assemble": {"replicas": 7}}},
        ["components.assemble.replicas (7) is above topics.partitions (6)"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_VALUES), ids=list(BAD_VALUES))
def test_bad_values_are_rejected_with_a_clear_message(case, tmp_path):
    values, expected = BAD_VALUES[case]
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    proc = helm(*template_args(path), check=False)
    assert proc.returncode != 0, f"{case}: helm template accepted {values}"
    for text in expected:
        assert text in proc.stderr, f"{case}: {text!r} not in:\n{proc.stderr}"
