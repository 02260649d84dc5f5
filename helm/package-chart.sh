#!/usr/bin/env bash
# Package the chart for a release: version and appVersion set to VERSION, the
# default images set to <IMAGE_PREFIX><component>:VERSION, so that
#   helm install pizza-shop oci://<registry>/<path>/pizza-shop --version VERSION
# runs the images released with it, with no --set. Used by the release workflow
# (ghcr.io) and by scripts/cluster/release.sh (the local cluster's registry).
#
# Usage: bash helm/package-chart.sh VERSION IMAGE_PREFIX OUTDIR
#   VERSION       SemVer without a leading v (1.2.0, 0.1.0-dev.g1a2b3c4)
#   IMAGE_PREFIX  e.g. ghcr.io/acme/pizza- or localhost:5000/pizza/
# Prints the path of the packaged .tgz.
set -euo pipefail
[ $# -eq 3 ] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
version="$1" prefix="$2" outdir="$3"
[[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$ ]] \
    || { echo "not a SemVer version: $version" >&2; exit 2; }
chart_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/pizza-shop" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp -r "$chart_dir" "$work/pizza-shop"
# The two default image lines of values.yaml (default.image); checked after the edit.
sed -i -e "s|^    repositoryPrefix: .*$|    repositoryPrefix: $prefix|" \
       -e "s|^    tag: .*$|    tag: \"$version\"|" "$work/pizza-shop/values.yaml"
grep -qx "    repositoryPrefix: $prefix" "$work/pizza-shop/values.yaml"
grep -qx "    tag: \"$version\"" "$work/pizza-shop/values.yaml"
mkdir -p "$outdir"
helm package "$work/pizza-shop" --version "$version" --app-version "$version" -d "$outdir" >/dev/null
echo "$(cd "$outdir" && pwd)/pizza-shop-$version.tgz"
