# Shared settings for the local cluster scripts. Source it.
#
# Everything the cluster needs lives under one cache directory, outside the
# repository, so that a fresh clone (CI clones one per run) reuses the slow Go
# builds of the previous run:
#   PIZZA_CLUSTER_HOME   default $HOME/.cache/pizza-cluster
#     bin/               kube-*, kubelet, coredns, registry, skaffold, the operators
#                        (+ <name>.version stamps)
#     manifests/         the operators' CRDs and install manifests, from their Go modules
#     images/            OCI archives of the node's own images (pause, coredns, busybox)
#     run/               the running cluster: PKI, etcd data, containerd, kubelet, logs, pids
#     registry/          the local OCI registry's storage (survives `down`)
set -euo pipefail

CLUSTER_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CLUSTER_LIB_DIR/../.." && pwd)"

CLUSTER_HOME="${PIZZA_CLUSTER_HOME:-$HOME/.cache/pizza-cluster}"
BIN="$CLUSTER_HOME/bin"
IMG="$CLUSTER_HOME/images"
RUN="$CLUSTER_HOME/run"
PKI="$RUN/pki"
KUBECONFIG_FILE="$PKI/admin.kubeconfig"

# Pinned versions. Kubernetes 1.32 matches Debian's kubectl and still runs on cgroup v1.
K8S_VERSION="${K8S_VERSION:-1.32.13}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.7}"
REGISTRY_VERSION="${REGISTRY_VERSION:-v3.1.2}"
SKAFFOLD_VERSION="${SKAFFOLD_VERSION:-v2.24.0}"
# The operators that act on the chart's monitoring, autoscaling and network policies.
PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.93.1}"
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v0.54.1}"  # the Go module's version of Prometheus 2.54.1
KEDA_VERSION="${KEDA_VERSION:-v2.20.2}"
KUBE_NETWORK_POLICIES_VERSION="${KUBE_NETWORK_POLICIES_VERSION:-v0.8.0}"

# Network layout of the node. The pod bridge's gateway doubles as the node IP
# (the kubelet refuses a loopback node IP).
NODE_IP=10.244.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
DNS_IP=10.96.0.10
BRIDGE=pizzacluster0
APISERVER_PORT=16443
# The local OCI registry: images are pushed to and pulled from localhost:<port>,
# the convention of kind's local registry (containerd and podman both run in the
# host's network namespace and reach it on loopback).
REGISTRY_PORT="${REGISTRY_PORT:-5000}"
REGISTRY="localhost:$REGISTRY_PORT"

registry_has() { # IMAGE: the registry serves this tag
    local ref="${1#"$REGISTRY"/}"
    curl -sf -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
        "http://$REGISTRY/v2/${ref%:*}/manifests/${ref##*:}"
}

REGISTRY_LISTEN="127.0.0.1:$REGISTRY_PORT"

CONTAINERD_SOCK="$RUN/containerd/containerd.sock"

export PATH="$BIN:$PATH:/usr/local/go/bin"
export GOWORK=off GOTOOLCHAIN=local

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
now_ms() { date +%s%3N; }
since() { echo "$(( ($(now_ms) - $1) / 1000 )).$(( ($(now_ms) - $1) % 1000 / 100 ))s"; }

wait_for() { # SECONDS CMD...: retry CMD every 0.25 s until it succeeds or SECONDS pass
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.25
    done
}

kc() { kubectl --kubeconfig="$KUBECONFIG_FILE" "$@"; }
ctr_k8s() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

require_root() {
    [ "$(id -u)" -eq 0 ] || die "$1 needs root (network bridge, iptables, containerd, kubelet)"
}
