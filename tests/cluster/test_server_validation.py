"""Every values variant the chart is tested with, validated by the real apiserver:
`helm template | kubectl apply --dry-run=server` (built-in validation, strict field decoding,
the CRDs' schemas and CEL rules of Strimzi, prometheus-operator and KEDA, admission) into a
namespace that enforces Pod Security "restricted". (`helm install --dry-run=server` would not
do: it runs no CEL rule.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from kube import REPO, kubectl, run, tool

sys.path.insert(0, str(REPO / "tests" / "chart"))
from chart_helpers import CHART, VALUES_CASES, VALUES_IDS, schemas_dir  # noqa: E402

NAMESPACE = "pizza-validate"


@pytest.fixture(scope="module")
def server():
    """The upstream CRDs installed and Established, and the restricted namespace."""
    crds = sorted(p for p in schemas_dir().glob("*/*.yaml"))
    assert len(crds) == 9, crds
    for crd in crds:
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"-f={c}" for c in crds))
    kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": NAMESPACE,
                    "labels": {
                        "pod-security.kubernetes.io/enforce": "restricted",
                        "pod-security.kubernetes.io/warn": "restricted",
                    },
                },
            }
        ),
    )
    # One values file puts the dashboards in Grafana's namespace.
    kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}}),
    )
    version = json.loads(kubectl("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
    return version.lstrip("v")


@pytest.mark.parametrize("values", VALUES_CASES, ids=VALUES_IDS)
def test_the_apiserver_accepts_every_object(server, values: Path | None):
    args = ["template", "pizza-shop", str(CHART), "-n", NAMESPACE, "--kube-version", server]
    if values is not None:
        args += ["-f", str(values)]
    docs = [d for d in yaml.safe_load_all(run(tool("helm"), *args).stdout) if d]
    # As `helm install -n` does: objects without a namespace go to the release's (one values
    # file puts the dashboards in another namespace, which kubectl -n would refuse).
    for d in docs:
        d["metadata"].setdefault("namespace", NAMESPACE)
    applied = kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump_all(docs), check=False)
    assert applied.returncode == 0, applied.stderr
    # Pod Security warnings (and any other) come on stderr even when the apply succeeds.
    assert "Warning" not in applied.stderr, applied.stderr
    kinds = sorted({line.split("/")[0] for line in applied.stdout.splitlines()})
    print(f"\n{len(applied.stdout.splitlines())} objects accepted: {', '.join(kinds)}")


def test_the_namespace_really_enforces_restricted(server):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": NAMESPACE},
        "spec": {
            "containers": [
                {"name": "c", "image": "localhost:5000/k8s/pause:3.10", "securityContext": {"privileged": True}}
            ]
        },
    }
    applied = kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False)
    assert applied.returncode != 0 and "violates PodSecurity" in applied.stderr, applied.stderr


def test_a_cel_rule_is_enforced(server):
    """KEDA's ScaledObject CRD carries CEL rules: the apiserver runs them on a dry run."""
    scaled = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "bad", "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"name": "x"},
            "minReplicaCount": 5,
            "maxReplicaCount": 2,
            "triggers": [{"type": "cpu", "metadata": {"value": "50"}}],
        },
    }
    applied = kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(scaled), check=False)
    assert applied.returncode != 0, applied.stdout
    assert "minReplicaCount must be less than or equal to maxReplicaCount" in applied.stderr, applied.stderr
