#!/usr/bin/env bash
# skaffold's custom builder for the local cluster (profile "local" in skaffold.yaml):
# there is no Docker daemon here, so each image is built with podman
# (scripts/images/build-images.sh) and pushed to the cluster's registry.
# skaffold sets IMAGE (the full reference with its tag) and PUSH_IMAGE.
# Usage (by skaffold): bash scripts/cluster/skaffold-build.sh SERVICE
set -euo pipefail
service="${1:?usage: skaffold-build.sh SERVICE}"
: "${IMAGE:?skaffold sets IMAGE}"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tag="${IMAGE##*:}"
prefix="${IMAGE%:*}"; prefix="${prefix%"$service"}"
TAG="$tag" IMAGE_PREFIX="$prefix" bash "$repo_root/scripts/images/build-images.sh" "$service" >&2
if [ "${PUSH_IMAGE:-false}" = true ]; then
    podman push -q --tls-verify=false "$IMAGE"
fi
