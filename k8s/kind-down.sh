#!/usr/bin/env bash
# Delete the kind cluster made by k8s/kind-up.sh.
set -euo pipefail
kind delete cluster --name "${CLUSTER_NAME:-pizza}"
