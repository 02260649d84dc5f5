# Shared set-up for the image scripts. Source it; it defines podman_cmd and friends.
#
# Everything here is non-interactive and idempotent: on a fresh Debian machine it
# installs what is missing (podman, runc, debootstrap) with apt-get, and it picks
# the podman storage driver and OCI runtime through command-line flags only, never
# by editing the machine's containers configuration.
#
# Environment knobs:
#   PODMAN_STORAGE_DRIVER  overlay | vfs (default: podman's own default when it
#                          works, else vfs)
#   PODMAN_RUNTIME         path of the OCI runtime (default: runc when installed)

set -euo pipefail

IMAGES_LIB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$IMAGES_LIB_DIR/../.." && pwd)"

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

_apt_updated=0
apt_install() {
    # apt_install PKG...: install the Debian packages that are not installed yet.
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
    log "installing ${missing[*]} with apt-get"
    if [ "$_apt_updated" -eq 0 ]; then
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _apt_updated=1
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_podman() {
    command -v podman >/dev/null && command -v runc >/dev/null && return 0
    apt_install podman runc uidmap fuse-overlayfs slirp4netns
}

_podman_global_args=()
podman_global_args() {
    # Fills _podman_global_args once: OCI runtime and, if needed, storage driver.
    [ "${_podman_args_done:-0}" -eq 1 ] && return 0
    _podman_args_done=1
    local runtime="${PODMAN_RUNTIME:-}"
    if [ -z "$runtime" ]; then
        runtime="$(command -v runc || true)"
        [ -n "$runtime" ] || runtime="$(ls /usr/sbin/runc /usr/bin/runc 2>/dev/null | head -n1 || true)"
    fi
    [ -n "$runtime" ] && _podman_global_args+=("--runtime=$runtime")
    # Podman records the driver a store was created with; naming the default one
    # explicitly on a store made without the flag is an error, so pass a driver
    # only when asked to, or when the default does not work here (then vfs).
    local driver="${PODMAN_STORAGE_DRIVER:-}"
    if [ -z "$driver" ] && ! podman "${_podman_global_args[@]}" info >/dev/null 2>&1; then
        driver=vfs
        log "podman's default storage driver does not work here; using vfs"
    fi
    [ -n "$driver" ] && _podman_global_args+=("--storage-driver=$driver")
    return 0
}

podman_cmd() {
    podman_global_args
    podman "${_podman_global_args[@]}" "$@"
}

image_exists() { podman_cmd image exists "$1"; }

image_size() {
    # Human-readable and byte size of a local image.
    local bytes
    bytes="$(podman_cmd image inspect --format '{{.Size}}' "$1")"
    printf '%s MB (%s bytes)' "$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1000000 }')" "$bytes"
}

now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }
