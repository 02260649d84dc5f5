#!/usr/bin/env bash
# Build a local stand-in for the official Python base image, for machines that
# cannot pull from a container registry.
#
# Debian (debootstrap, variant minbase, from the apt mirror this machine uses)
# plus Debian's python3, python3-venv, python3-pip and ca-certificates, made to
# behave like python:3.X-slim where the Dockerfiles rely on it:
#   - `python` and `python3` are on PATH (python-is-python3),
#   - `python -m venv` works and the venv gets pip,
#   - pip may install outside a venv (EXTERNALLY-MANAGED is removed),
#   - CMD ["python3"], LANG=C.UTF-8.
# apt lists, docs, man pages and caches are stripped. The result is imported
# with `podman import` as $BASE_IMAGE (default localhost/python-base:bookworm).
#
# Usage: bash scripts/images/build-base-image.sh [--force]
#   --force            rebuild even when the image exists
# Environment:
#   BASE_IMAGE         tag to build (default localhost/python-base:bookworm)
#   DEBIAN_SUITE       Debian release (default bookworm)
#   DEBIAN_MIRROR      apt mirror (default: the host's configured Debian mirror)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

BASE_IMAGE="${BASE_IMAGE:-localhost/python-base:bookworm}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,/^source/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $arg" ;;
    esac
done

host_debian_mirror() {
    # The first Debian archive URI the host's apt sources use for the main suite.
    local uri=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        uri="$(awk '
            /^[[:space:]]*$/ { if (u != "" && main) { print u; exit } u = ""; main = 0; next }
            /^URIs:/ { u = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /-/) main = 1 }
            END { if (u != "" && main) print u }
        ' /etc/apt/sources.list.d/*.sources | grep -v -- '-security' | head -n1 || true)"
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri="$(awk '$1 == "deb" && $3 !~ /-/ && $2 ~ /debian/ { print $2; exit }' /etc/apt/sources.list || true)"
    fi
    printf '%s' "${uri:-http://deb.debian.org/debian}"
}

ensure_podman
if [ "$FORCE" -eq 0 ] && image_exists "$BASE_IMAGE"; then
    log "$BASE_IMAGE exists ($(image_size "$BASE_IMAGE")); --force rebuilds it"
    exit 0
fi
apt_install debootstrap debian-archive-keyring

DEBIAN_MIRROR="${DEBIAN_MIRROR:-$(host_debian_mirror)}"
start="$(now)"
workdir="$(mktemp -d /var/tmp/python-base.XXXXXX)"
trap 'rm -rf "$workdir"' EXIT
rootfs="$workdir/rootfs"

log "debootstrap $DEBIAN_SUITE (minbase) from $DEBIAN_MIRROR"
debootstrap --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates \
    "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$workdir/debootstrap.log" 2>&1 \
    || { tail -n 30 "$workdir/debootstrap.log" >&2; die "debootstrap failed"; }

log "stripping apt lists, caches and docs"
# Let pip install outside a venv, as in the official image.
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
# Keep the docs and locales out of later package installs too, as Debian's slim images do.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
CFG
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/lintian/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/var/tmp/* "$rootfs"/root/.cache
find "$rootfs" -xdev -name __pycache__ -type d -prune -exec rm -rf {} +
# debootstrap's device nodes: the runtime mounts its own /dev.
rm -rf "${rootfs:?}"/dev/*
printf 'deb %s %s main\n' "$DEBIAN_MIRROR" "$DEBIAN_SUITE" >"$rootfs/etc/apt/sources.list"

python_version="$(chroot "$rootfs" python3 -c 'import platform; print(platform.python_version())')"
log "importing as $BASE_IMAGE (Python $python_version)"
tar --numeric-owner --xattrs -C "$rootfs" -cf - . | podman_cmd import --quiet \
    --change 'CMD ["python3"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV PYTHON_VERSION=$python_version" \
    --change "LABEL org.opencontainers.image.title=python-base org.opencontainers.image.description=\"Local stand-in for python:slim: Debian $DEBIAN_SUITE minbase with Debian's Python $python_version\"" \
    --message "debootstrap $DEBIAN_SUITE minbase + python3" \
    - "$BASE_IMAGE" >/dev/null

log "built $BASE_IMAGE in $(elapsed "$start") s, size $(image_size "$BASE_IMAGE")"
