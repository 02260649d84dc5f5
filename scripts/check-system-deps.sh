#!/usr/bin/env bash
# What `make test` needs from the system, checked before any test runs:
# Java and Maven (the local Kafka broker), podman and runc (the images), Chromium
# (the browser test), Go (helm and actionlint, `make tools`), Prometheus and
# promtool (the observability tests).
# Missing ones are installed with scripts/install-system-deps.sh when that may
# happen here (running as root, or CI=true with passwordless sudo); otherwise this
# stops at once and names the one command that installs them.
set -euo pipefail
cd "$(dirname "$0")/.."

# command: the Debian package that provides it (install-system-deps.sh installs them all).
declare -A needed=(
  [java]=openjdk-17-jre-headless [mvn]=maven [podman]=podman [runc]=runc
  [chromium]=chromium [go]=golang-go [prometheus]=prometheus [promtool]=prometheus
)
missing=()
for cmd in java mvn podman runc chromium go prometheus promtool; do
  command -v "$cmd" >/dev/null || missing+=("$cmd (${needed[$cmd]})")
done
((${#missing[@]} == 0)) && exit 0

echo "make test needs: ${missing[*]}" >&2
if [[ $(id -u) -eq 0 ]]; then
  bash scripts/install-system-deps.sh
elif [[ ${CI:-} == true ]] && sudo -n true 2>/dev/null; then
  sudo -n bash scripts/install-system-deps.sh
else
  echo "install them once with:  sudo scripts/install-system-deps.sh" >&2
  exit 1
fi
