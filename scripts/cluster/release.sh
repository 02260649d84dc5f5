#!/usr/bin/env bash
# Release to the local cluster's registry the way .github/workflows/release.yml
# releases to ghcr.io: the five service images and the chart (an OCI artifact),
# all with one version; plus the local Kafka image the cluster runs.
#
# Usage: bash scripts/cluster/release.sh            (prints the version it released)
# Environment:
#   VERSION      default <chart version>-dev.g<commit> (+ .dirty for uncommitted changes)
#   SKIP_BUILD=1 push the images already in podman's store (localhost/pizza-<svc>:$SOURCE_TAG)
#   SOURCE_TAG   tag of the locally built images (default dev, what `make images` builds)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERVICES=(webapp status assemble bake delivery)
SOURCE_TAG="${SOURCE_TAG:-dev}"
KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$REPO_ROOT/tools/local_kafka/pom.xml")"
if [ -z "${VERSION:-}" ]; then
    chart_version="$(sed -n 's/^version: *//p' "$REPO_ROOT/helm/pizza-shop/Chart.yaml")"
    VERSION="$chart_version-dev.g$(git -C "$REPO_ROOT" rev-parse --short=8 HEAD)"
    git -C "$REPO_ROOT" diff --quiet HEAD -- services libs helm 2>/dev/null || VERSION="$VERSION.dirty"
fi
curl -sf "http://$REGISTRY/v2/" >/dev/null || die "no registry on $REGISTRY: start the cluster first (make cluster)"
started="$(now_ms)"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    TAG="$SOURCE_TAG" bash "$REPO_ROOT/scripts/images/build-images.sh" "${SERVICES[@]}" >&2
fi
for s in "${SERVICES[@]}"; do
    podman tag "localhost/pizza-$s:$SOURCE_TAG" "$REGISTRY/pizza/$s:$VERSION"
    podman push -q --tls-verify=false "$REGISTRY/pizza/$s:$VERSION" >/dev/null
done
log "images pushed: $REGISTRY/pizza/{$(IFS=,; echo "${SERVICES[*]}")}:$VERSION"

kafka_image="$REGISTRY/pizza/kafka:$KAFKA_VERSION"
if ! podman image exists "localhost/pizza-kafka:$KAFKA_VERSION"; then
    bash "$REPO_ROOT/scripts/images/build-kafka-image.sh" >&2
fi
podman tag "localhost/pizza-kafka:$KAFKA_VERSION" "$kafka_image"
podman push -q --tls-verify=false "$kafka_image" >/dev/null
log "Kafka image pushed: $kafka_image"

out="$(mktemp -d)"
package="$(bash "$REPO_ROOT/helm/package-chart.sh" "$VERSION" "$REGISTRY/pizza/" "$out")"
helm push "$package" "oci://$REGISTRY/charts" --plain-http >/dev/null
rm -rf "$out"
log "chart pushed: oci://$REGISTRY/charts/pizza-shop --version $VERSION ($(since "$started"))"
mkdir -p "$RUN" && echo "$VERSION" > "$RUN/release-version"
echo "$VERSION"
