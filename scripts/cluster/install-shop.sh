#!/usr/bin/env bash
# Install a release of the shop on the local cluster, as a user would: Kafka
# (k8s/local/kafka.yaml) and its topics, then
#   helm upgrade --install pizza-shop oci://localhost:5000/charts/pizza-shop --version VERSION
# with k8s/values-local.yaml and, for the cluster's operators (scripts/cluster/operators.sh),
# helm/pizza-shop/ci/local-cluster-operators-values.yaml, waiting until every pod is Ready.
#
# Usage: bash scripts/cluster/install-shop.sh [VERSION] [helm flags...]
#   VERSION defaults to the last one scripts/cluster/release.sh pushed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VERSION="${1:-$(cat "$RUN/release-version" 2>/dev/null || true)}"
[ -n "$VERSION" ] || die "no release yet: run scripts/cluster/release.sh"
shift || true
NAMESPACE="${NAMESPACE:-pizza}"
export KUBECONFIG="$KUBECONFIG_FILE"
started="$(now_ms)"

kubectl apply -f "$REPO_ROOT/k8s/local/kafka.yaml" >/dev/null
kubectl -n kafka rollout status statefulset/kafka --timeout=300s >/dev/null \
    || die "Kafka not ready: kubectl -n kafka logs kafka-0"
log "Kafka ready ($(since "$started"))"

# The topics, made once by the services' own tool (pizza-create-topics, in every image).
image="$REGISTRY/pizza/status:$VERSION"
kubectl -n kafka delete job pizza-topics --ignore-not-found >/dev/null
sed -e "s|@IMAGE@|$image|" "$REPO_ROOT/k8s/local/topics-job.yaml" | kubectl apply -f - >/dev/null
kubectl -n kafka wait --for=condition=complete job/pizza-topics --timeout=180s >/dev/null \
    || die "creating the topics failed: kubectl -n kafka logs job/pizza-topics"
log "topics ready"

kubectl apply -f "$REPO_ROOT/k8s/local/namespace.yaml" >/dev/null
t="$(now_ms)"
helm upgrade --install pizza-shop "oci://$REGISTRY/charts/pizza-shop" --version "$VERSION" --plain-http \
    -n "$NAMESPACE" -f "$REPO_ROOT/k8s/values-local.yaml" \
    -f "$REPO_ROOT/helm/pizza-shop/ci/local-cluster-operators-values.yaml" --wait --timeout 10m "$@"
log "pizza-shop $VERSION installed and Ready ($(since "$t")); total $(since "$started")"
