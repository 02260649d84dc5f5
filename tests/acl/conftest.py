"""A broker that authorizes (SASL/SCRAM + StandardAuthorizer) and the chart's own KafkaUsers on it.

The ACLs are not re-derived here: the Helm chart is rendered with SCRAM users
(`helm template`, helm from `make tools`), and each KafkaUser's
spec.authorization.acls is applied to the broker as it is. A wrong ACL in the
chart makes a service fail here, as it would on a Strimzi cluster.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from local_kafka.broker import ScramAuth, broker_of_its_own

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "pizza-shop"
RELEASE = "pizza-shop"


@dataclass(frozen=True)
class ChartUser:
    component: str
    name: str  # the KafkaUser's name: the SCRAM user name in the cluster
    acls: list[dict]  # spec.authorization.acls


def render_kafka_users() -> dict[str, ChartUser]:
    helm = shutil.which("helm") or str(REPO / ".cache" / "bin" / "helm")
    if not Path(helm).is_file():
        pytest.fail("helm not found on PATH or in .cache/bin: run `make tools`")
    proc = subprocess.run(
        [helm, "template", RELEASE, str(CHART), "--set", "kafka.auth.type=scram-sha-512"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        pytest.fail(f"helm template failed:\n{proc.stderr}")
    users = {}
    for doc in yaml.safe_load_all(proc.stdout):
        if doc and doc["kind"] == "KafkaUser":
            assert doc["spec"]["authorization"]["type"] == "simple"
            component = doc["metadata"]["labels"]["app.kubernetes.io/component"]
            users[component] = ChartUser(component, doc["metadata"]["name"], doc["spec"]["authorization"]["acls"])
    return users


@pytest.fixture(scope="module")
def chart_users() -> dict[str, ChartUser]:
    """component -> the chart's KafkaUser for it."""
    return render_kafka_users()


@pytest.fixture(scope="module")
def scram_kafka(tmp_path_factory):
    """A broker of this module's own with SCRAM users and ACL authorization, the shop's topics created."""
    with broker_of_its_own(tmp_path_factory.mktemp("scram-kafka"), auth=ScramAuth()) as kafka:
        yield kafka


@pytest.fixture(scope="module")
def service_users(scram_kafka, chart_users) -> dict[str, ChartUser]:
    """Every chart KafkaUser created on the broker with its ACLs (and nothing else)."""
    for user in chart_users.values():
        scram_kafka.add_user(user.name, user.acls)
    return chart_users
