"""The kubelet stand-in itself: it translates every rendered pod, and it refuses what it does not know.

No containers run here (helm template only); test_pods.py runs them.
"""

from __future__ import annotations

import copy
import itertools
import tempfile
from pathlib import Path

import pytest
from kubelet import Kubelet, UnsupportedSpec, container_specs
from release import pod_values, render

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def node():
    ports = itertools.count(41000)
    with tempfile.TemporaryDirectory() as tmp:
        release = render(pod_values("broker.example:9092", "dev"), Path(tmp))
        yield Kubelet(release, Path(tmp), lambda: next(ports))


def spec_of(node, name: str, obj: dict | None = None):
    kind = "Pod" if name.endswith("test-order") else "Deployment"
    obj = obj or node.release.get(kind, name)
    (spec,) = container_specs(kind, obj, node.release, node.host_ports, node.workdir)
    return spec


def test_every_rendered_pod_is_translated(node):
    names = [d["metadata"]["name"] for d in node.release.of_kind("Deployment")]
    assert sorted(names) == sorted(f"pizza-shop-{c}" for c in ("webapp", "status", "assemble", "bake", "delivery"))
    for name in names:
        spec = spec_of(node, name)
        port = node.port_of(name)
        assert spec.env["HTTP_PORT"] == str(port) and spec.host_port == port
        assert spec.env["KAFKA_BOOTSTRAP_SERVERS"] == "broker.example:9092"
        argv = " ".join(spec.argv)
        for expected in ("--network=host", "--pull=never", "--user 10001:10001", "--group-add 10001",
                         "--read-only --read-only-tmpfs=false", "--security-opt no-new-privileges",
                         "--cap-drop=all", f"--memory {256 * 2**20}", "--cpus 1",
                         f"type=tmpfs,destination=/tmp,tmpfs-mode=0777,tmpfs-size={256 * 2**20}"):
            assert expected in argv, (name, expected, argv)
        assert spec.argv[-1] == f"localhost/pizza-{name.removeprefix('pizza-shop-')}:dev"   # the image's entrypoint
        assert {p.port for p in spec.probes.values()} == {port}
        assert spec.grace == 30
    webapp = spec_of(node, "pizza-shop-webapp")
    # The Service name in STATUS_URL is the status pod's host port; the Secret is resolved.
    assert webapp.env["STATUS_URL"] == f"http://127.0.0.1:{node.port_of('pizza-shop-status')}"
    assert len(webapp.env["SECRET_KEY"]) >= 32
    assert f"type=tmpfs,destination=/run/prometheus-multiproc,tmpfs-mode=0777,tmpfs-size={64 * 2**20}" in webapp.argv
    helm_test = spec_of(node, "pizza-shop-test-order")
    assert helm_test.env["WEBAPP_URL"] == f"http://127.0.0.1:{node.port_of('pizza-shop-webapp')}"
    assert '["python3", "/opt/pizza-test/place_order.py"]' in helm_test.argv


def _set(path: list, value):
    def change(deployment: dict) -> None:
        target = deployment
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


C = ["spec", "template", "spec", "containers", 0]
P = ["spec", "template", "spec"]
REFUSED = {
    "preStop hook": _set([*C, "lifecycle"], {"preStop": {"exec": {"command": ["sleep", "5"]}}}),
    "init container": _set([*P, "initContainers"], [{"name": "init", "image": "busybox"}]),
    "exec probe": _set([*C, "livenessProbe"], {"exec": {"command": ["true"]}}),
    "hostPath volume": _set([*P, "volumes", 0], {"name": "tmp", "hostPath": {"path": "/tmp"}}),
    "subPath mount": _set([*C, "volumeMounts", 0, "subPath"], "x"),
    "resourceFieldRef": _set([*C, "env"], [{"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}]),
    "two replicas": _set(["spec", "replicas"], 2),
    "pull Always": _set([*C, "imagePullPolicy"], "Always"),
    "service links": _set([*P, "enableServiceLinks"], True),
    "port not HTTP_PORT": _set([*C, "ports", 0, "containerPort"], 9090),
    "unknown probe port": _set([*C, "readinessProbe", "httpGet", "port"], "metrics"),
    "hugepages": _set([*C, "resources", "limits", "hugepages-2Mi"], "2Mi"),
    "a second container": lambda d: d["spec"]["template"]["spec"]["containers"].append({"name": "sidecar"}),
    "missing Secret": _set([*C, "env", 0, "valueFrom", "secretKeyRef", "name"], "nope"),
}


@pytest.mark.parametrize("change", REFUSED.values(), ids=REFUSED.keys())
def test_what_the_stand_in_does_not_know_is_an_error(node, change):
    deployment = copy.deepcopy(node.release.get("Deployment", "pizza-shop-webapp"))
    spec_of(node, "pizza-shop-webapp", deployment)   # unchanged: fine
    change(deployment)
    with pytest.raises(UnsupportedSpec):
        spec_of(node, "pizza-shop-webapp", deployment)
