"""kubectl, helm and the local cluster's pieces, for the cluster tests.

The cluster is the one scripts/cluster/cluster.sh runs (`make cluster`); its state
lives under PIZZA_CLUSTER_HOME (default ~/.cache/pizza-cluster).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLUSTER_HOME = Path(os.environ.get("PIZZA_CLUSTER_HOME") or Path.home() / ".cache" / "pizza-cluster")
RUN = CLUSTER_HOME / "run"
KUBECONFIG = RUN / "pki" / "admin.kubeconfig"
CONTAINERD_SOCK = RUN / "containerd" / "containerd.sock"
REGISTRY = f"localhost:{os.environ.get('REGISTRY_PORT', '5000')}"
BIN = CLUSTER_HOME / "bin"
# The release the tests install (scripts/cluster/install-shop.sh's names).
NAMESPACE = "pizza"
RELEASE = "pizza-shop"
CHART = f"oci://{REGISTRY}/charts/pizza-shop"
INSTANCE = f"app.kubernetes.io/instance={RELEASE}"


def tool(name: str) -> str:
    for candidate in (BIN / name, REPO / ".cache" / "bin" / name):
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} not found: run `make cluster` (builds the cluster's binaries) and `make tools`")
    return found


def run(
    *cmd: str, check: bool = True, timeout: float = 300, input: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    # The cluster's own binaries (kubectl, skaffold) and `make tools`' helm first, for child tools too.
    env = {
        **os.environ,
        "KUBECONFIG": str(KUBECONFIG),
        "PATH": f"{BIN}:{REPO / '.cache' / 'bin'}:{os.environ.get('PATH', '')}",
    }
    proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, input=input, env=env, cwd=cwd)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def kubectl(*args: str, **kw) -> subprocess.CompletedProcess:
    return run(tool("kubectl"), *args, **kw)


def helm(*args: str, **kw) -> subprocess.CompletedProcess:
    return run(tool("helm"), *args, **kw)


def get(*args: str) -> dict:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def pods(namespace: str, selector: str) -> list[dict]:
    return get("pods", "-n", namespace, "-l", selector)["items"]


def is_ready(pod: dict) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
    return conditions.get("Ready") == "True"


def container_pid(pod: dict, container: str) -> int:
    """The host PID of a running container's main process (from containerd)."""
    (status,) = [s for s in pod["status"]["containerStatuses"] if s["name"] == container]
    container_id = status["containerID"].removeprefix("containerd://")
    out = run("ctr", "--address", str(CONTAINERD_SOCK), "-n", "k8s.io", "tasks", "ls").stdout
    for line in out.splitlines()[1:]:
        task, pid, *_ = line.split()
        if task == container_id:
            return int(pid)
    pytest.fail(f"no containerd task {container_id} for {pod['metadata']['name']}/{container}")
