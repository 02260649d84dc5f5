#!/usr/bin/env bash
# Build the services' container images with podman: localhost/pizza-<service>:$TAG,
# each from the one Dockerfile at the repository root with --build-arg SERVICE=<service>.
#
# Usage: bash scripts/images/build-images.sh [SERVICE...]    (default: every services/*)
# Environment:
#   TAG            image tag (default dev)
#   IMAGE_PREFIX   image name prefix (default localhost/pizza-)
#   PYTHON_IMAGE   base image for every stage. When unset, python:3.12-slim is
#                  used if it is in local storage; otherwise (no registry) a local
#                  stand-in is built first with build-base-image.sh and used.
#   BASE_IMAGE     the stand-in's tag (default localhost/python-base:bookworm)
#   SOURCE_URL     org.opencontainers.image.source (default: git remote origin)
#   PODMAN_STORAGE_DRIVER, PODMAN_RUNTIME: see lib.sh
#
# Every image installs the versions of uv.lock (uv sync --frozen); uv's download
# cache is a build cache mount shared by the builds, and with nothing changed a
# re-run is only layer-cache hits. pip and uv inside the build trust this
# machine's CA bundle through read-only build-time mounts (the bundle and a
# generated pip.conf), which do not end up in any image.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TAG="${TAG:-dev}"
IMAGE_PREFIX="${IMAGE_PREFIX:-localhost/pizza-}"
DEFAULT_PYTHON_IMAGE="python:3.12-slim"
BASE_IMAGE="${BASE_IMAGE:-localhost/python-base:bookworm}"
export BASE_IMAGE

if [ $# -gt 0 ]; then
    SERVICES=("$@")
else
    SERVICES=()
    for f in "$REPO_ROOT"/services/*/pyproject.toml; do
        [ -f "$f" ] && SERVICES+=("$(basename "$(dirname "$f")")")
    done
fi
[ ${#SERVICES[@]} -gt 0 ] || die "no services/*/pyproject.toml found"
for s in "${SERVICES[@]}"; do
    [ -f "$REPO_ROOT/services/$s/pyproject.toml" ] || die "no such service: $s"
done

ensure_podman
total_start="$(now)"

# --- the base image ---------------------------------------------------------
if [ -n "${PYTHON_IMAGE:-}" ]; then
    log "base image: $PYTHON_IMAGE (from PYTHON_IMAGE)"
elif image_exists "$DEFAULT_PYTHON_IMAGE"; then
    PYTHON_IMAGE="$DEFAULT_PYTHON_IMAGE"
    log "base image: $PYTHON_IMAGE (in local storage)"
else
    log "$DEFAULT_PYTHON_IMAGE is not in local storage and no registry is assumed: using the local stand-in $BASE_IMAGE"
    bash "$IMAGES_LIB_DIR/build-base-image.sh"
    PYTHON_IMAGE="$BASE_IMAGE"
fi

# --- pip's trust and index settings for the build -----------------------------
# Only the host's CA bundle and index settings go in; host-specific paths such as
# PIP_FIND_LINKS do not.
build_tmp="$(mktemp -d)"
log_dir="${BUILD_LOG_DIR:-$build_tmp}"
mkdir -p "$log_dir"
trap 'rm -rf "$build_tmp"' EXIT
mounts=()
ca_bundle="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
python3 - "$ca_bundle" >"$build_tmp/pip.conf" <<'PY'
import configparser, os, sys
host = configparser.ConfigParser()
host.read(["/etc/pip.conf", os.environ.get("PIP_CONFIG_FILE") or "/nonexistent"])
out = {}
for key in ("index-url", "extra-index-url", "trusted-host", "timeout", "retries"):
    value = os.environ.get("PIP_" + key.upper().replace("-", "_")) or host.get("global", key, fallback=None)
    if value:
        out[key] = value
if os.path.isfile(sys.argv[1]):
    out["cert"] = "/etc/ssl/certs/ca-certificates.crt"
print("[global]")
for key, value in out.items():
    print(f"{key} = {value}")
PY
if [ -f "$ca_bundle" ]; then
    mounts+=(-v "$(readlink -f "$ca_bundle"):/etc/ssl/certs/ca-certificates.crt:ro")
fi
mounts+=(-v "$build_tmp/pip.conf:/etc/pip.conf:ro")

if [ -z "${SOURCE_URL:-}" ]; then
    SOURCE_URL="$(git -C "$REPO_ROOT" remote get-url origin 2>/dev/null || true)"
    case "$SOURCE_URL" in
        git@*:*) SOURCE_URL="https://${SOURCE_URL#git@}"; SOURCE_URL="${SOURCE_URL/://}" ;;
    esac
    SOURCE_URL="${SOURCE_URL%.git}"
fi

# --- the images -----------------------------------------------------------------
declare -A seconds
for s in "${SERVICES[@]}"; do
    image="${IMAGE_PREFIX}${s}:${TAG}"
    log "building $image"
    start="$(now)"
    podman_cmd build \
        --layers \
        --pull=missing \
        --network=host \
        --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
        "${mounts[@]}" \
        --build-arg "PYTHON_IMAGE=$PYTHON_IMAGE" \
        --build-arg "SOURCE_URL=$SOURCE_URL" \
        --build-arg "SERVICE=$s" \
        -f "$REPO_ROOT/Dockerfile" \
        -t "$image" \
        "$REPO_ROOT" >"$log_dir/build-$s.log" 2>&1 \
        || { tail -n 40 "$log_dir/build-$s.log" >&2; die "building $image failed"; }
    seconds[$s]="$(elapsed "$start")"
    log "built $image in ${seconds[$s]} s"
done

printf '\n%-36s %10s %12s\n' IMAGE "BUILD (s)" "SIZE (MB)"
for s in "${SERVICES[@]}"; do
    image="${IMAGE_PREFIX}${s}:${TAG}"
    bytes="$(podman_cmd image inspect --format '{{.Size}}' "$image")"
    printf '%-36s %10s %12s\n' "$image" "${seconds[$s]}" "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1000000 }')"
done
printf 'base image: %s; total %s s\n' "$PYTHON_IMAGE" "$(elapsed "$total_start")"
