#!/usr/bin/env bash
# Installs the system packages `make test` needs on Debian/Ubuntu (run as root):
# Java + Maven for the local Kafka broker, podman/runc/debootstrap for the
# container images and the pod checks, Prometheus for the metrics tests,
# Chromium for the browser test, Go for helm/actionlint (built by `make tools`),
# and for the local Kubernetes cluster (`make cluster`, tests/cluster): etcd,
# containerd, runc, the CNI plugins, iptables and conntrack for kube-proxy
# (the Kubernetes binaries themselves are built from Go modules by
# scripts/cluster/build.sh).
# Already-installed packages are left alone, so a warm machine spends no time here.
set -euo pipefail

packages=(
  openjdk-17-jre-headless maven golang-go
  podman runc debootstrap uidmap fuse-overlayfs slirp4netns
  prometheus chromium kcat curl ca-certificates
  etcd-server containerd containernetworking-plugins iptables conntrack openssl
)
missing=()
for pkg in "${packages[@]}"; do
  # golang-go is optional when a Go toolchain is already on PATH.
  if [[ $pkg == golang-go ]] && command -v go >/dev/null; then continue; fi
  if [[ $pkg == openjdk-17-jre-headless ]] && command -v java >/dev/null; then continue; fi
  if [[ $pkg == maven ]] && command -v mvn >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
  echo "system packages: all present"
  exit 0
fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
