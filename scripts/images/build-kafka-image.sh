#!/usr/bin/env bash
# Build the local cluster's Kafka image: localhost/pizza-kafka:<KAFKA_VERSION>.
#
# The broker's runtime jars come from Maven Central through tools/local_kafka/pom.xml
# (the same jars the local test broker runs), the JRE from Debian, on the base image
# of build-base-image.sh (or PYTHON_IMAGE). No container registry is needed.
#
# Usage: bash scripts/images/build-kafka-image.sh
# Environment: KAFKA_IMAGE (default localhost/pizza-kafka:$KAFKA_VERSION), PYTHON_IMAGE, BASE_IMAGE
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$REPO_ROOT/tools/local_kafka/pom.xml")"
KAFKA_IMAGE="${KAFKA_IMAGE:-localhost/pizza-kafka:$KAFKA_VERSION}"
BASE_IMAGE="${BASE_IMAGE:-localhost/python-base:bookworm}"
export BASE_IMAGE

ensure_podman
if [ -z "${PYTHON_IMAGE:-}" ]; then
    bash "$IMAGES_LIB_DIR/build-base-image.sh"
    PYTHON_IMAGE="$BASE_IMAGE"
fi
start="$(now)"
context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka's jars: bash scripts/install-system-deps.sh"
mvn -q -B -f "$REPO_ROOT/tools/local_kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$context/libs" -DincludeScope=runtime
cp "$IMAGES_LIB_DIR/kafka/"* "$context/"
podman_cmd build --layers --network=host \
    --build-arg "BASE_IMAGE=$PYTHON_IMAGE" --build-arg "KAFKA_VERSION=$KAFKA_VERSION" \
    -f "$context/Containerfile" -t "$KAFKA_IMAGE" "$context" >"$context/build.log" 2>&1 \
    || { tail -n 40 "$context/build.log" >&2; die "building $KAFKA_IMAGE failed"; }
log "built $KAFKA_IMAGE in $(elapsed "$start") s ($(image_size "$KAFKA_IMAGE"))"
