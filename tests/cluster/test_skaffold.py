"""`skaffold run -p local` on the cluster: the five images built with podman by the profile's
custom builder, pushed to the cluster's registry, the chart deployed from the source tree with
them, every Deployment stabilised (skaffold's status check); then `skaffold delete`.
Runs after test_shop.py has uninstalled its release (same namespace and release name)."""

from __future__ import annotations

import time

import pytest
from kube import INSTANCE, NAMESPACE, REGISTRY, REPO, get, run, tool

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def skaffold(*args: str, timeout: float = 1200):
    return run(
        tool("skaffold"),
        *args,
        "--kube-context",
        "pizza",
        "--update-check=false",
        "--interactive=false",
        timeout=timeout,
        cwd=REPO,
    )


def test_skaffold_run_with_the_local_profile():
    # skaffold would offer to send usage data on first use.
    run(tool("skaffold"), "config", "set", "--global", "collect-metrics", "false")
    started = time.monotonic()
    skaffold("run", "-p", "local", "--status-check=true")
    print(f"\nskaffold run -p local in {time.monotonic() - started:.0f} s")
    try:
        deployments = get("deployments", "-n", NAMESPACE, "-l", INSTANCE)["items"]
        assert len(deployments) == 5
        for d in deployments:
            (container,) = d["spec"]["template"]["spec"]["containers"]
            component = d["metadata"]["labels"]["app.kubernetes.io/component"]
            assert container["image"].startswith(f"{REGISTRY}/pizza/{component}:"), container["image"]
            assert d["status"].get("readyReplicas") == d["spec"]["replicas"], d["status"]
    finally:
        skaffold("delete", "-p", "local", timeout=300)
