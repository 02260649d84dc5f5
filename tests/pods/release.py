"""The chart rendered as the pod tests install it (helm template, the test broker, the local images)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from kubelet import REPO, Release

CHART = REPO / "helm" / "pizza-shop"
RELEASE = "pizza-shop"
NAMESPACE = "pizza"
KUBE_VERSION = "1.34.0"
# Small, not 0: an order spends a second or two in the kitchen, so a stop can catch it in flight.
KITCHEN_TIME_SCALE = 0.1


def helm_binary() -> str:
    local = REPO / ".cache" / "bin" / "helm"
    found = shutil.which("helm") or (str(local) if local.is_file() else None)
    if not found:
        pytest.fail("helm not found on PATH or in .cache/bin: run `make tools`")
    return found


def pod_values(bootstrap: str, tag: str) -> dict:
    """What the test installs: the chart's defaults, pointed at the test broker and the local images.

    replicas 1 for webapp and status: one pod per Deployment, so each Service has one endpoint.
    Monitoring, network policies, dashboards: as they render by default.
    """
    return {
        "strimzi": {"enabled": False},
        "kafka": {"bootstrapServers": bootstrap},
        "default": {"image": {"repositoryPrefix": "localhost/pizza-", "tag": tag, "pullPolicy": "Never"}},
        "components": {"webapp": {"replicas": 1}, "status": {"replicas": 1}},
        "kitchenTimeScale": KITCHEN_TIME_SCALE,
    }


def render(values: dict, workdir: Path) -> Release:
    values_file = workdir / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    proc = subprocess.run(
        [helm_binary(), "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
         "--kube-version", KUBE_VERSION, "-f", str(values_file)],
        capture_output=True, text=True, timeout=120,
    )
    if proc.returncode != 0:
        pytest.fail(f"helm template failed:\n{proc.stderr}")
    return Release([d for d in yaml.safe_load_all(proc.stdout) if d], NAMESPACE)
