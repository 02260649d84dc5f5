#!/usr/bin/env bash
# podman with the storage driver and runtime that the image scripts use, so that
# tests and people see the same image store: bash scripts/images/podman.sh images
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_podman
podman_global_args
exec podman "${_podman_global_args[@]}" "$@"
