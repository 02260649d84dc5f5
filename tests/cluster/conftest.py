"""Fixtures of the cluster tests: the shop released to the local cluster's registry and
installed from there with helm, as a user would.

These tests need the local cluster (`make cluster`) and a release in its registry
(scripts/cluster/release.sh); `make test-cluster` does both, then runs them with
PIZZA_CLUSTER_TESTS=1. Without it they are not collected (`make test` has no cluster).
Environment:
  PIZZA_CLUSTER_VERSION      the release to install (default: the last one release.sh pushed)
  PIZZA_CLUSTER_EXTRA_VALUES extra values files for the install, separated by ':'
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

if os.environ.get("PIZZA_CLUSTER_TESTS") != "1":
    collect_ignore_glob = ["test_*.py"]

from kube import INSTANCE, NAMESPACE, RELEASE, REPO, RUN, helm, kubectl, run  # noqa: E402


@pytest.fixture(scope="session")
def version() -> str:
    version = os.environ.get("PIZZA_CLUSTER_VERSION")
    if not version:
        marker = RUN / "release-version"
        if not marker.is_file():
            pytest.fail("no release in the cluster's registry: run scripts/cluster/release.sh (make test-cluster does)")
        version = marker.read_text().strip()
    return version


def extra_values_args() -> list[str]:
    return [
        arg
        for extra in filter(None, os.environ.get("PIZZA_CLUSTER_EXTRA_VALUES", "").split(":"))
        for arg in ("-f", extra)
    ]


@pytest.fixture(scope="session")
def installed(version) -> float:
    """A fresh install of the release: the previous one (if any) uninstalled, then
    scripts/cluster/install-shop.sh (Kafka, topics, `helm upgrade --install --wait`) with a fast
    kitchen. `--set kitchenTimeScale=0.1` is a string to the chart's schema, as for any user.
    Returns the seconds the install took."""
    if helm("status", RELEASE, "-n", NAMESPACE, check=False).returncode == 0:
        helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "5m", timeout=330)
    kubectl("delete", "pods", "-n", NAMESPACE, "-l", INSTANCE, "--ignore-not-found", "--wait=true", timeout=120)
    started = time.monotonic()
    run(
        "bash",
        str(REPO / "scripts" / "cluster" / "install-shop.sh"),
        version,
        "--set",
        "kitchenTimeScale=0.1",
        *extra_values_args(),
        timeout=900,
    )
    seconds = time.monotonic() - started
    print(f"\ninstall of {version} (Kafka, topics, helm install --wait): {seconds:.0f} s")
    return seconds
