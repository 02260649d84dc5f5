#!/usr/bin/env bash
# One command for a local Kubernetes with everything the pizza shop needs:
#   k8s/kind-up.sh          then: skaffold dev   (http://127.0.0.1:8000)
#
# Creates the kind cluster "pizza" (k8s/kind-config.yaml), installs the Strimzi
# operator (Helm chart 1.2.0) watching namespace "pizza", a dev Kafka 4.3.1
# (one dual-role KRaft node), and unless switched off kube-prometheus-stack
# (Grafana with dashboard sidecar) and KEDA. Re-runnable: existing parts are
# upgraded in place.
#
# Environment:
#   CLUSTER_NAME=pizza  NAMESPACE=pizza
#   WITH_MONITORING=1   kube-prometheus-stack in namespace monitoring
#   WITH_KEDA=1         KEDA in namespace keda
#   KAFKA=dev           or production (k8s/kafka/production.yaml: 6 nodes, too big for a laptop)
# Needs: docker (or podman with KIND_EXPERIMENTAL_PROVIDER=podman), kind, kubectl, helm.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLUSTER_NAME="${CLUSTER_NAME:-pizza}"
NAMESPACE="${NAMESPACE:-pizza}"
WITH_MONITORING="${WITH_MONITORING:-1}"
WITH_KEDA="${WITH_KEDA:-1}"
KAFKA="${KAFKA:-dev}"
STRIMZI_VERSION="1.2.0"
KPS_VERSION="88.2.0"
KEDA_VERSION="2.20.2"

step() { printf '\n==> %s\n' "$*"; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "kind-up: $1 is required (see k8s/README.md)" >&2; exit 1; }; }
for tool in kind kubectl helm; do need "$tool"; done

step "kind cluster ${CLUSTER_NAME}"
if kind get clusters 2>/dev/null | grep -qx "${CLUSTER_NAME}"; then
  echo "exists"
else
  kind create cluster --name "${CLUSTER_NAME}" --config "${HERE}/kind-config.yaml" --wait 120s
fi
kubectl config use-context "kind-${CLUSTER_NAME}" >/dev/null
KUBECTL=(kubectl --context "kind-${CLUSTER_NAME}")
HELM=(helm --kube-context "kind-${CLUSTER_NAME}")

step "namespace ${NAMESPACE}"
"${KUBECTL[@]}" create namespace "${NAMESPACE}" --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f -

step "Strimzi operator ${STRIMZI_VERSION}"
"${HELM[@]}" upgrade --install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator \
  --version "${STRIMZI_VERSION}" --namespace strimzi --create-namespace \
  -f "${HERE}/strimzi/values.yaml" --set "watchNamespaces={${NAMESPACE}}" --wait --timeout 10m

step "Kafka (${KAFKA}) in ${NAMESPACE}"
"${KUBECTL[@]}" apply -n "${NAMESPACE}" -f "${HERE}/kafka/${KAFKA}.yaml"

if [[ "${WITH_MONITORING}" == 1 ]]; then
  step "kube-prometheus-stack ${KPS_VERSION}"
  "${HELM[@]}" upgrade --install kube-prometheus-stack kube-prometheus-stack \
    --repo https://prometheus-community.github.io/helm-charts --version "${KPS_VERSION}" \
    --namespace monitoring --create-namespace \
    -f "${HERE}/monitoring/kube-prometheus-stack-values.yaml" --wait --timeout 15m
fi

if [[ "${WITH_KEDA}" == 1 ]]; then
  step "KEDA ${KEDA_VERSION}"
  "${HELM[@]}" upgrade --install keda keda --repo https://kedacore.github.io/charts \
    --version "${KEDA_VERSION}" --namespace keda --create-namespace --wait --timeout 10m
fi

step "waiting for Kafka to be ready"
"${KUBECTL[@]}" wait -n "${NAMESPACE}" kafka/pizza-kafka --for=condition=Ready --timeout=15m

cat <<DONE

Ready. Next:
  skaffold dev                    # build, deploy, follow logs; shop on http://127.0.0.1:8000
                                  # (and http://localhost:8080 through the NodePort)
$( [[ "${WITH_MONITORING}" == 1 ]] && echo "  skaffold dev -p monitoring      # the same with ServiceMonitor, alert rules and Grafana dashboards
  kubectl -n monitoring port-forward svc/kube-prometheus-stack-grafana 3000:80   # admin / pizza" )
  helm test pizza-shop -n ${NAMESPACE} --logs   # place an order and wait for its delivery
  k8s/kind-down.sh                # delete the cluster
DONE
