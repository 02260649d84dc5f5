"""The chart on the real cluster, as a release lives: installed from the registry, tested with
`helm test`, read with `kubectl logs`, disrupted (a pod deleted, a rolling upgrade to new images,
a node drain, a stuck consumer) while customers keep ordering, and uninstalled.

The tests run in file order on one release. Kitchen times are scaled by 0.1: an order takes
a few seconds from the oven to the door.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections import Counter

import pytest
import requests
from kube import (
    CHART,
    INSTANCE,
    KUBECONFIG,
    NAMESPACE,
    REGISTRY,
    RELEASE,
    container_pid,
    get,
    helm,
    is_ready,
    kubectl,
    pods,
    run,
    tool,
)
from shop import (
    COMPONENTS,
    DELIVERY_TIMEOUT_S,
    KITCHEN,
    Load,
    ReadyWatch,
    all_rolled_out,
    component_pods,
    deployments,
    rolled_out,
    webapp_url,
)

from kafka_common.shop.status import STATUS_DELIVERED
from shop_testing.customer import Customer
from shop_testing.helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def upgrade_reusing_values(version: str, setting: str, wait_minutes: int) -> None:
    """helm upgrade of the released chart with one --set over the values in place, until every pod is Ready."""
    helm(
        "upgrade",
        RELEASE,
        CHART,
        "--version",
        version,
        "--plain-http",
        "-n",
        NAMESPACE,
        "--reuse-values",
        "--set",
        setting,
        "--wait",
        "--timeout",
        f"{wait_minutes}m",
        timeout=wait_minutes * 60 + 30,
    )


# --------------------------------------------------------------------------- install


def test_install_every_pod_ready_through_its_probes(installed):
    for component, d in deployments().items():
        assert rolled_out(component), f"{component}: {d['status']}"
        for pod in component_pods(component):
            assert is_ready(pod), pod["metadata"]["name"]
            (status,) = pod["status"]["containerStatuses"]
            assert status["restartCount"] == 0, f"{pod['metadata']['name']} restarted"
            assert status["started"] is True
            (container,) = pod["spec"]["containers"]
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert container[probe]["httpGet"]["port"] == "http", f"{component} {probe}"
    # The kubelet really probed them: a Ready condition is only set after the readiness probe passed.
    assert {c for c in deployments()} == set(COMPONENTS)


def test_each_pod_knows_its_instance_id(installed):
    for pod in pods(NAMESPACE, INSTANCE):
        if pod["metadata"]["labels"]["app.kubernetes.io/component"] == "test":
            continue
        name = pod["metadata"]["name"]
        out = kubectl("exec", "-n", NAMESPACE, name, "--", "printenv", "INSTANCE_ID").stdout.strip()
        assert out == name


def test_helm_test_places_an_order_and_sees_it_delivered(installed):
    started = time.monotonic()
    out = helm("test", RELEASE, "-n", NAMESPACE, "--logs", "--timeout", "6m", timeout=400).stdout
    print(f"\nhelm test in {time.monotonic() - started:.0f} s")
    assert "Phase:          Succeeded" in out or "Phase: Succeeded" in " ".join(out.split())
    assert "PASS: the order reached status 400" in out
    # Its logs are printed once: the script's ConfigMap is no test hook of the same name.
    assert out.count("POD LOGS:") == 1, out


def test_port_forward_serves_the_shop(installed):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    forward = subprocess.Popen(
        [tool("kubectl"), "port-forward", "-n", NAMESPACE, f"svc/{RELEASE}-webapp", f"{port}:8080"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "KUBECONFIG": str(KUBECONFIG)},
    )
    try:
        wait_until(lambda: "Forwarding from" in (forward.stdout.readline() or ""), 30, "port-forward", interval=0.1)
        reply = requests.get(f"http://127.0.0.1:{port}/api/menu", timeout=10)
        assert reply.status_code == 200 and "sauces" in reply.json()
    finally:
        forward.send_signal(signal.SIGINT)
        forward.wait(timeout=10)


# --------------------------------------------------------------------------- logs


def test_kubectl_logs_are_json_lines_with_order_coordinates(installed):
    customer = Customer(webapp_url(), "logs-reader")
    order_id = customer.order(7)
    wait_until(lambda: customer.get(order_id)["status"] == STATUS_DELIVERED, DELIVERY_TIMEOUT_S, "the order delivered")
    seen_order_in = set()
    for pod in pods(NAMESPACE, INSTANCE):
        component = pod["metadata"]["labels"]["app.kubernetes.io/component"]
        if component == "test":
            continue
        name = pod["metadata"]["name"]
        lines = [line for line in kubectl("logs", "-n", NAMESPACE, name).stdout.splitlines() if line.strip()]
        assert lines, f"{name}: no log lines"
        for line in lines:
            if component == "webapp" and not line.startswith("{"):
                continue  # gunicorn's own start-up lines before the app's logging is configured
            record = json.loads(line)
            assert {"service", "level"} <= record.keys(), f"{name}: {line}"
            if record.get("order_id") == order_id and "topic" in record:
                assert {"partition", "offset"} <= record.keys(), f"{name}: {line}"
                seen_order_in.add(component)
    # Each service that handles an order logs it with its coordinates in Kafka.
    assert {"assemble", "bake", "delivery", "status"} <= seen_order_in, seen_order_in


# --------------------------------------------------------------------------- disruptions under load


def test_orders_survive_a_deleted_kitchen_pod():
    with Load() as load:
        load.wait_for_orders(5)
        for component in KITCHEN:
            victim = component_pods(component)[0]["metadata"]["name"]
            kubectl("delete", "pod", "-n", NAMESPACE, victim, "--wait=false")
        load.wait_for_orders(10)
        wait_until(all_rolled_out, 300, "the kitchen back at full strength", interval=1)
        load.wait_for_orders(5)
    load.check_every_order_delivered_once()


def test_orders_survive_a_rolling_upgrade_to_new_images(version):
    new_tag = f"{version}-rollout"
    for component in COMPONENTS:
        run("podman", "tag", f"{REGISTRY}/pizza/{component}:{version}", f"{REGISTRY}/pizza/{component}:{new_tag}")
        run("podman", "push", "-q", "--tls-verify=false", f"{REGISTRY}/pizza/{component}:{new_tag}")
    with Load() as load, ReadyWatch() as watch:
        load.wait_for_orders(5)
        started = time.monotonic()
        upgrade_reusing_values(version, f"default.image.tag={new_tag}", wait_minutes=10)
        # helm's --wait returns once enough new pods are Ready (replicas - maxUnavailable);
        # the last old pods may still be running or draining in their grace period.
        wait_until(all_rolled_out, 300, "every Deployment rolled out", interval=1)
        print(f"\nhelm upgrade (every Deployment rolled) in {time.monotonic() - started:.0f} s")
        load.wait_for_orders(5)

    def images_left() -> dict[str, set[str]]:
        return {c: {p["spec"]["containers"][0]["image"] for p in component_pods(c)} for c in COMPONENTS}

    want = {c: {f"{REGISTRY}/pizza/{c}:{new_tag}"} for c in COMPONENTS}
    # Old pods leave within their termination grace period (30 s) once the rollout is done.
    try:
        wait_until(lambda: images_left() == want, 90, "only the new images left", interval=1)
    except AssertionError:
        assert images_left() == want  # shows which component kept which image
    assert all(n >= 1 for n in watch.fewest.values()), f"a component had no ready pod: {watch.fewest}"
    load.check_every_order_delivered_once()


def test_orders_survive_a_node_drain_that_respects_the_disruption_budgets():
    node = get("nodes")["items"][0]["metadata"]["name"]
    with Load() as load, ReadyWatch() as watch:
        load.wait_for_orders(5)
        # One node: each Deployment may lose one of its two pods; the second eviction is refused
        # by its PodDisruptionBudget until a replacement is Ready, which the cordoned node never
        # gets. The drain gives up at its timeout, with every stage still serving.
        drain = kubectl(
            "drain",
            node,
            "--pod-selector",
            f"{INSTANCE},app.kubernetes.io/component!=test",
            "--delete-emptydir-data",
            "--ignore-daemonsets",
            "--timeout=45s",
            check=False,
            timeout=120,
        )
        load.wait_for_orders(10)
        kubectl("uncordon", node)
        wait_until(all_rolled_out, 300, "every Deployment back at full strength", interval=1)
    output = drain.stdout + drain.stderr
    assert drain.returncode != 0, "the drain cannot finish on one node without breaking a budget"
    assert "disruption budget" in output, output[-2000:]
    evicted = Counter(
        line.split("/")[-1].rsplit("-", 2)[0] for line in output.splitlines() if line.endswith(" evicted")
    )
    print(f"\ndrain evicted: {dict(evicted)}; fewest ready pods seen: {watch.fewest}")
    assert all(n >= 1 for n in watch.fewest.values()), f"a component had no ready pod: {watch.fewest}"
    load.check_every_order_delivered_once()


def test_liveness_probe_restarts_a_stuck_consumer():
    """SIGSTOP a bake pod's process from the host: its consumer and its HTTP server stop
    answering; the kubelet's liveness probe fails, the kubelet restarts the container, and the
    restarted consumer joins its group and serves partitions again. (Not assemble: KEDA scales
    it here, and a scale-in may take the stopped pod away instead.)"""
    victim = component_pods("bake")[0]
    name = victim["metadata"]["name"]
    restarts = victim["status"]["containerStatuses"][0]["restartCount"]
    pid = container_pid(victim, "bake")
    os.kill(pid, signal.SIGSTOP)
    started = time.monotonic()
    with Load() as load:

        def restarted():
            pod = get("pod", "-n", NAMESPACE, name)
            status = pod["status"]["containerStatuses"][0]
            return status["restartCount"] > restarts and is_ready(pod) and pod

        pod = wait_until(restarted, 400, f"{name} restarted by its liveness probe and Ready again", interval=2)
        print(f"\n{name} stopped, restarted by the kubelet and Ready again after {time.monotonic() - started:.0f} s")
        load.wait_for_orders(10)
    last = pod["status"]["containerStatuses"][0]["lastState"]["terminated"]
    assert last["exitCode"] == 137, last  # SIGKILLed: a stopped process never handles SIGTERM
    events = kubectl("get", "events", "-n", NAMESPACE, "--field-selector", f"involvedObject.name={name}").stdout
    assert "Liveness probe failed" in events, events
    assert container_pid(pod, "bake") != pid
    load.check_every_order_delivered_once()


def test_helm_test_passes_with_a_kitchen_stage_disabled(version):
    """The chart's own plain-bootstrap example disables bake: the test then follows the order
    to the oven (200) and passes, instead of waiting out its timeout for a delivery."""
    upgrade_reusing_values(version, "components.bake.enabled=false", wait_minutes=5)
    assert "bake" not in deployments()
    started = time.monotonic()
    out = helm("test", RELEASE, "-n", NAMESPACE, "--logs", "--timeout", "3m", timeout=200).stdout
    print(f"\nhelm test without bake in {time.monotonic() - started:.0f} s")
    assert "PASS: the order reached status 200" in out, out


# --------------------------------------------------------------------------- uninstall


def test_uninstall_removes_the_release():
    helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout", "5m", timeout=330)
    left = get(
        "deployments,replicasets,services,configmaps,secrets,networkpolicies,poddisruptionbudgets,serviceaccounts",
        "-n",
        NAMESPACE,
        "-l",
        INSTANCE,
    )["items"]
    assert [f"{o['kind']}/{o['metadata']['name']}" for o in left] == []

    # The pods go as the garbage collector deletes their ReplicaSets and they stop gracefully.
    # Helm never deletes test hooks: the last test pod is all that may stay (with its logs).
    def pods_left():
        return sorted(p["metadata"]["name"] for p in pods(NAMESPACE, INSTANCE))

    wait_until(lambda: pods_left() in ([], [f"{RELEASE}-test-order"]), 180, "the release's pods gone", interval=2)
    kubectl("delete", "pod", "-n", NAMESPACE, f"{RELEASE}-test-order", "--ignore-not-found")
